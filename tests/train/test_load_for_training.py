"""A later LoRA stage continues the previous stage's adapter through the one loader, so it loads as every
other path loads: model.dtype, model.attn_implementation and the pad-token rule all apply."""

from types import SimpleNamespace

import pytest
import torch

from libra_train.train.stage import load_for_training


def _run(dtype="bf16", attn="eager"):
    model = SimpleNamespace(trust_remote_code=False, dtype=dtype, attn_implementation=attn)
    peft = SimpleNamespace(method="lora", r=4, alpha=8, dropout=0.0, target_modules=("q_proj", "v_proj"))
    return SimpleNamespace(model=model, peft=peft)


@pytest.fixture(scope="module")
def adapter_dir(tiny_backbone, tmp_path_factory):
    """A saved LoRA adapter over the tiny backbone, as stage 1 of a peft=lora run leaves it, with a
    tokenizer that has no pad token (as Llama-style tokenizers ship)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("adapter") / "checkpoint"
    base = AutoModelForCausalLM.from_pretrained(tiny_backbone, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(out)
    assert AutoTokenizer.from_pretrained(out).pad_token is None
    return out


@pytest.mark.parametrize("dtype,expected", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_a_continued_adapter_loads_in_the_configured_dtype(adapter_dir, dtype, expected):
    model, _, peft_config = load_for_training(str(adapter_dir), _run(dtype=dtype))
    assert peft_config is None  # the adapter is continued, not wrapped in a new one
    base_weights = [p for n, p in model.named_parameters() if "lora_" not in n]
    assert {p.dtype for p in base_weights} == {expected}


def test_a_continued_adapter_keeps_attention_and_pad_token_and_stays_trainable(adapter_dir):
    model, tokenizer, _ = load_for_training(str(adapter_dir), _run(attn="eager"))
    assert model.config._attn_implementation == "eager"
    assert tokenizer.pad_token == tokenizer.eos_token
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_a_full_checkpoint_gets_a_new_adapter_in_the_configured_dtype(tiny_backbone):
    model, _, peft_config = load_for_training(str(tiny_backbone), _run(dtype="bf16", attn="sdpa"))
    assert peft_config is not None and peft_config.r == 4
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.config._attn_implementation == "sdpa"


def test_models_load_without_hub_kernels_so_an_offline_gpu_node_can_load_them(tiny_backbone, monkeypatch):
    """transformers swaps layers for hub kernels by default on a GPU, fetching code from the hub at load
    and at train(): the one loader turns that off, for plain checkpoints and adapters alike."""
    from transformers import AutoModelForCausalLM

    from libra_train.model import load_model_and_tokenizer

    seen = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("use_kernels"))
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    model, _ = load_model_and_tokenizer(str(tiny_backbone))
    assert seen == [False] and not model.use_kernels
