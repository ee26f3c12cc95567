"""Backbone and tokenizer: a hub id, a local directory, or (model=tiny, model=qwen2.5-tiny) built
from scratch.

The tiny backbone is a Qwen2-architecture model from a config, with a byte-level BPE tokenizer
trained on the run's own text and a ChatML template; qwen2.5-tiny takes Qwen2.5's real tokenizer and
chat template instead (qwen_vocab.py). Both are written with save_pretrained, so every
later step loads them through the same from_pretrained path a real backbone takes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from libra_train.config_groups import Dtype
from libra_train.errors import CheckpointError
from libra_train.typed import check_value

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts, vocab_size: int):
    """A byte-level BPE (as Qwen's), so any text round-trips, trained on the given texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    # max_token_length 9 (three CJK characters in byte-level form): without a cap, phrases repeated in
    # templated data become single tokens, and the model cannot share what it learns across wordings.
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        max_token_length=9,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    roles = ["system\n", "user\n", "assistant\n"] * 50  # the ChatML role lines the template adds
    core.train_from_iterator(list(texts) + roles, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:2],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny(texts, out_dir: str | Path, model_cfg) -> Path:
    """Make the tokenizer (trained on `texts`, or Qwen2.5's own for build=qwen2.5-tiny), build the
    model from config, save both; reused if already there."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists() and (out_dir / "tokenizer.json").exists():
        return out_dir
    if model_cfg.build == "qwen2.5-tiny":
        from libra_train.qwen_vocab import qwen25_tokenizer, trimmed_qwen25_tokenizer

        tokenizer = trimmed_qwen25_tokenizer(texts) if model_cfg.trim_vocab else qwen25_tokenizer()
    else:
        tokenizer = train_tokenizer(texts, int(model_cfg.vocab_size))
    torch.manual_seed(int(model_cfg.init_seed))
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=model_cfg.hidden_size,
        intermediate_size=model_cfg.intermediate_size,
        num_hidden_layers=model_cfg.num_layers,
        num_attention_heads=model_cfg.num_heads,
        num_key_value_heads=model_cfg.num_kv_heads,
        max_position_embeddings=model_cfg.max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out_dir)  # a killed build leaves only the .partial folder, never a half backbone
    log.info("built tiny backbone (%.2fM parameters) at %s", model.num_parameters() / 1e6, out_dir)
    return out_dir


def _check_local_checkpoint(path: Path) -> None:
    if not path.is_dir():
        raise CheckpointError(f"model path {path} is not a directory")
    from libra_train.ensemble import is_ensemble

    config = path / "config.json"
    adapter = path / "adapter_config.json"
    if is_ensemble(path):  # several checkpoints as one guard, each checked when it is loaded
        return
    if not config.exists() and not adapter.exists():
        raise CheckpointError(
            f"{path} is not a checkpoint: it has no config.json, adapter_config.json or ensemble.json"
        )
    for meta in (config, adapter):
        if meta.exists():
            try:
                json.loads(meta.read_text())
            except json.JSONDecodeError as err:
                raise CheckpointError(f"{meta} is corrupt ({err.msg})") from None


def looks_local(name_or_path: str) -> bool:
    return (
        name_or_path.startswith((".", "/", "~"))
        or Path(name_or_path).exists()
        or name_or_path.count("/") != 1
    )


def _checked_source(name_or_path) -> str:
    """A hub id as given, or a local checkpoint folder checked first (for a clear one-line error)."""
    name_or_path = str(name_or_path)
    if not looks_local(name_or_path):
        return name_or_path
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise CheckpointError(f"model path {path} does not exist")
    _check_local_checkpoint(path)
    return str(path)


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    """The tokenizer alone (no weights are read): what `libra-infer mode=prompts` renders with."""
    from libra_train.ensemble import is_ensemble, member_paths

    name_or_path = _checked_source(name_or_path)
    if is_ensemble(name_or_path):  # the members share one tokenizer (checked when they are loaded)
        return load_tokenizer(str(member_paths(name_or_path)[0]), trust_remote_code)
    return _tokenizer_at(name_or_path, trust_remote_code)


def _tokenizer_at(name_or_path: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot load the tokenizer of {name_or_path}: {err}") from None
    if tokenizer.pad_token is None:  # e.g. Llama-style tokenizers: padding reuses the end token
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(
    name_or_path: str,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    attn_implementation: str | None = None,
    device_map: str | None = None,
    trainable_adapter: bool = False,
):
    """The one loader, for training, evaluation, serving and synthesis: from_pretrained for a local
    directory (checked first, for a clear error) or a hub id, in `dtype`, with `attn_implementation`, and a
    pad token where the tokenizer has none. A directory holding a LoRA adapter loads its base model and
    applies the adapter: merged for scoring, or kept trainable (`trainable_adapter`) for a later stage to
    continue. One holding ensemble.json loads each member this way and returns them as one GuardEnsemble."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    from libra_train.ensemble import is_ensemble, load_ensemble

    name_or_path = _checked_source(name_or_path)
    _refuse_classifier(name_or_path)
    if is_ensemble(name_or_path):
        return load_ensemble(
            name_or_path,
            lambda member: load_model_and_tokenizer(
                member, trust_remote_code, dtype, attn_implementation, device_map
            ),
        )
    check_value(dtype, Dtype, "model.dtype")  # the configs' own check, for callers without a config
    torch_dtype = {"auto": "auto", "bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[
        dtype
    ]
    # use_kernels=False: transformers (5.2x) otherwise swaps layers for hub kernels on a GPU, which fetches
    # code from the hub at load and train time (and refuses an unverified publisher): an offline or
    # air-gapped node then cannot load a model at all, and the weights' numerics would depend on the hub.
    kwargs = {"trust_remote_code": trust_remote_code, "dtype": torch_dtype, "use_kernels": False}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if device_map:  # e.g. auto: spread over the GPUs present (accelerate)
        kwargs["device_map"] = device_map
    try:
        adapter_dir = Path(name_or_path) / "adapter_config.json"
        if adapter_dir.exists():
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(
                name_or_path, is_trainable=trainable_adapter, **kwargs
            )
            model = model if trainable_adapter else model.merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError, SafetensorError) as err:  # missing files, bad configs, truncated weights
        raise CheckpointError(f"cannot load model {name_or_path}: {err}") from None
    return model, _tokenizer_at(name_or_path, trust_remote_code)


def is_classifier(path) -> bool:
    """Whether a local checkpoint folder holds a sequence classifier (libra-export classifier=true)."""
    config = Path(str(path)) / "config.json"
    if not config.is_file():
        return False
    architectures = json.loads(config.read_text()).get("architectures") or []
    return any(a.endswith("ForSequenceClassification") for a in architectures)


def _refuse_classifier(name_or_path: str) -> None:
    if looks_local(name_or_path) and is_classifier(name_or_path):
        raise CheckpointError(
            f"{name_or_path} is a sequence-classifier export: serve it with vLLM's classify task, TEI or "
            "transformers' text-classification pipeline (libra-infer mode=prompts writes its inputs); "
            "libra-train's tools read the merged export (libra-export without classifier=true)"
        )


def load_configured(name_or_path: str, opts=None, **kwargs):
    """load_model_and_tokenizer with the loading options of a config: libra-train's `model` group, or a
    libra-infer / libra-serve / libra-mine config (trust_remote_code, dtype, attn_implementation); None
    takes the defaults."""
    if opts is None:
        return load_model_and_tokenizer(name_or_path, **kwargs)
    return load_model_and_tokenizer(
        name_or_path, opts.trust_remote_code, opts.dtype, opts.attn_implementation, **kwargs
    )


def default_device(choice: str = "auto") -> str:
    """`auto`: the GPU where there is one, else the CPU; any other value is used as given."""
    import torch

    if choice != "auto":
        return choice
    return "cuda" if torch.cuda.is_available() else "cpu"


def weights_fingerprint(named_tensors) -> str:
    """A short hash of a model's weights (LoRA tensors only, when there are any), comparable between a
    model in memory and a saved checkpoint. Eight tensors spread over the sorted names keep it cheap
    for 14B models while any real training step still changes it."""
    import hashlib

    tensors = {name.replace(".default", ""): t for name, t in named_tensors}
    lora = {n: t for n, t in tensors.items() if "lora_" in n}
    chosen = lora or tensors
    names = sorted(chosen)
    step = max(1, len(names) // 8)
    digest = hashlib.sha256()
    for name in names[::step]:
        digest.update(chosen[name].detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
