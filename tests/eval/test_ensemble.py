"""An ensemble folder loads as one guard: p(unsafe) is the members' mixture, computed by hand here;
generation decodes greedily from the mixture; identical members give the single guard's answers; a
member with another tokenizer and a malformed ensemble.json are refused by name."""

import json
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from libra_train.data.formats import TARGET_OPENING, FormatConfig, render_prompt
from libra_train.ensemble import GuardEnsemble, write_ensemble
from libra_train.errors import CheckpointError
from libra_train.eval.scoring import generate_labels, label_query, score_labels
from libra_train.model import load_model_and_tokenizer, load_tokenizer
from tests.conftest import sample


@pytest.fixture(scope="module")
def members(tiny_backbone, tmp_path_factory):
    """The tiny backbone and a copy with other random weights (same tokenizer), saved as checkpoints."""
    root = tmp_path_factory.mktemp("members")
    shutil.copytree(tiny_backbone, root / "a")
    shutil.copytree(tiny_backbone, root / "b")
    other = AutoModelForCausalLM.from_pretrained(root / "b")
    torch.manual_seed(1)
    with torch.no_grad():
        for p in other.parameters():
            p.normal_(0, 0.5)
    other.save_pretrained(root / "b")
    return root / "a", root / "b"


def _records(n=7):
    return [
        {**sample(i), "question": "问题" * (1 + i % 3), "response": "" if i % 2 else "回答"} for i in range(n)
    ]


def _mixture_p_unsafe(models, tok, record) -> float:
    """p(unsafe | one of the two labels) under the mean of the members' full next-token distributions."""
    context, safe_id, unsafe_id = label_query(render_prompt(record, tok, FormatConfig()), tok, TARGET_OPENING)
    with torch.no_grad():
        probs = torch.stack([m(torch.tensor([context])).logits[0, -1].softmax(-1) for m in models]).mean(0)
    return (probs[unsafe_id] / (probs[safe_id] + probs[unsafe_id])).item()


def test_p_unsafe_is_the_mixture_of_the_members(members, tmp_path):
    folder = write_ensemble(tmp_path / "ens", list(members))
    ensemble, tok = load_model_and_tokenizer(str(folder))
    assert isinstance(ensemble, GuardEnsemble) and len(ensemble.members) == 2
    singles = [AutoModelForCausalLM.from_pretrained(m).eval() for m in members]
    records = _records()
    for share_prefix in (True, False):
        scored = score_labels(ensemble, tok, records, FormatConfig(), batch_size=3, share_prefix=share_prefix)
        expected = [_mixture_p_unsafe(singles, tok, r) for r in records]
        assert [s["p_unsafe"] for s in scored] == pytest.approx(expected, abs=1e-5)
    # the mixture is not either member: a test of the sum, not of one member read twice
    alone = [s["p_unsafe"] for s in score_labels(singles[0], tok, records, FormatConfig())]
    assert max(abs(a - e) for a, e in zip(alone, expected)) > 1e-3


def test_identical_members_answer_as_the_single_guard(members, tmp_path):
    folder = write_ensemble(tmp_path / "same", [members[0], members[0]])
    ensemble, tok = load_model_and_tokenizer(str(folder))
    single = AutoModelForCausalLM.from_pretrained(members[0]).eval()
    records = _records()
    fmt = FormatConfig()
    ens_scores = score_labels(ensemble, tok, records, fmt, batch_size=4)
    one_scores = score_labels(single, tok, records, fmt, batch_size=4)
    assert [s["p_unsafe"] for s in ens_scores] == pytest.approx([s["p_unsafe"] for s in one_scores], abs=1e-5)
    # greedy decoding through the members' caches equals transformers' own generate on the single model
    ens_text = generate_labels(ensemble, tok, records, fmt, batch_size=3, max_new_tokens=12)
    one_text = generate_labels(single, tok, records, fmt, batch_size=3, max_new_tokens=12)
    assert [r["critic"] for r in ens_text] == [r["critic"] for r in one_text]


def test_generation_follows_the_mixture_token_by_token(members, tmp_path):
    ensemble, tok = load_model_and_tokenizer(str(write_ensemble(tmp_path / "ens", list(members))))
    singles = [AutoModelForCausalLM.from_pretrained(m).eval() for m in members]
    prompts = [
        tok(render_prompt(r, tok, FormatConfig()), add_special_tokens=False)["input_ids"] for r in _records(3)
    ]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    out = ensemble.generate(
        ids, mask, max_new_tokens=12, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id
    )
    for row, prompt in zip(out, prompts):  # by hand: full forward passes, no cache, no padding
        seq = list(prompt)
        for _ in range(12):
            with torch.no_grad():
                probs = torch.stack([m(torch.tensor([seq])).logits[0, -1].softmax(-1) for m in singles])
            seq.append(int(probs.mean(0).argmax()))
            if seq[-1] == tok.eos_token_id:
                break
        assert row[width : width + len(seq) - len(prompt)].tolist() == seq[len(prompt) :]


def test_a_member_with_another_tokenizer_is_refused(members, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(members[1], odd)
    tok = AutoTokenizer.from_pretrained(odd)
    tok.add_tokens(["没见过的词"])
    tok.save_pretrained(odd)
    with pytest.raises(CheckpointError, match="odd has another tokenizer"):
        load_model_and_tokenizer(str(write_ensemble(tmp_path / "ens", [members[0], odd])))


def test_ensemble_file_errors_name_the_file(members, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "ensemble.json").write_text(json.dumps({"members": []}))
    with pytest.raises(CheckpointError, match="bad/ensemble.json: `members` must be a non-empty list"):
        load_model_and_tokenizer(str(folder))
    (folder / "ensemble.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="bad/ensemble.json is not an ensemble file"):
        load_tokenizer(str(folder))
    (folder / "ensemble.json").write_text(json.dumps({"members": ["../nowhere"]}))
    with pytest.raises(CheckpointError, match="nowhere does not exist"):
        load_model_and_tokenizer(str(folder))
