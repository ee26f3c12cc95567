"""The typed configs of libra-infer, libra-serve, libra-mine and libra-eval, beside libra-train's RunConfig
(config.py) and built by the same mechanism: `from_hydra` resolves Hydra's config once and
`config.build` checks every value, naming its key. Each command then reads these objects only.

The values several commands share are checked by one definition each (THRESHOLD, DTYPE, BATCH_SIZE…),
so `threshold=2` is refused the same way by libra-infer and libra-serve. What a command records (W&B's
config) is derived from the typed object (`resolved`), not carried beside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from omegaconf import DictConfig, OmegaConf

from libra_train.config_checks import check_mode
from libra_train.config_groups import Controversial, Dtype, LoggerConfig, SelectionConfig
from libra_train.data.formats import FormatConfig
from libra_train.errors import ConfigError
from libra_train.typed import (
    build,
    defaults_node,
    fraction,
    non_negative,
    opt,
    positive,
    register_defaults,
    resolve_container,
)


def _probability(value) -> str | None:
    return None if 0 <= value <= 1 else f"must be a number in [0, 1] or null (the saved one), got {value!r}"


def check_machine(rank: int, num: int) -> None:
    if num < 1 or not 0 <= rank < num:
        raise ConfigError("machine_rank", f"needs 0 ≤ machine_rank < machine_num, got {rank} of {num}")


# One definition per value that several commands share: the same default, help and check everywhere.
def THRESHOLD():  # noqa: N802 (a field factory, named as the key it defines)
    return opt(
        None,
        "unsafe when p_unsafe > threshold; null: the one saved beside the checkpoint by its run, else 0.5",
        _probability,
    )


def DTYPE():  # noqa: N802
    return opt("auto", "weights' dtype when loading")


def ATTN():  # noqa: N802
    return opt(None, "sdpa, eager or flash_attention_2 (null: transformers' choice)")


def TRUST():  # noqa: N802
    return opt(False, "run a hub repo's own modelling code (off unless you trust it)")


def BATCH_SIZE(default: int):  # noqa: N802
    return opt(default, "samples per forward pass", positive)


def _selection_option(name: str):
    """libra-mine's top-level selection keys: SelectionConfig's own default, help and check."""
    option = SelectionConfig.__dataclass_fields__[name]
    return dataclasses.field(default=option.default, metadata=option.metadata)


def _format_overrides() -> tuple[bool, list[str]]:
    """What the command line says of the format: whether it picks a format group (format=NAME), and the
    format keys it sets (format.KEY=…). Outside a command line the config is taken as given, as if picked."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return True, []
    names = [o.lstrip("+~").split("=")[0] for o in HydraConfig.get().overrides.task]
    return "format" in names, [n.split(".")[1] for n in names if n.startswith("format.")]


def _recorded_format(model, given: dict | None) -> dict | None:
    """The format recorded in a local checkpoint (data/recorded_format.py), with the keys the command line
    sets (format.KEY=…) on top; None where there is no record or the command line picks a format group
    (format=NAME replaces the record). A trained checkpoint or an export is read as it was trained."""
    from libra_train.data.recorded_format import recorded_format

    group, keys = _format_overrides()
    if not isinstance(model, str) or not Path(model).expanduser().is_dir() or group:
        return None
    record = recorded_format(Path(model).expanduser())
    if record is None:
        return None
    return {**record, **{k: (given or {})[k] for k in keys if k in (given or {})}}


class CommandConfig:
    """What every command config shares: built once from Hydra's config, and recorded from itself."""

    @classmethod
    def from_hydra(cls, cfg):
        """Resolve and check the whole config; raises ConfigError naming the first bad key."""
        raw = resolve_container(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
        known = {f.name for f in fields(cls)}
        recorded = _recorded_format(raw.get("model"), raw.get("format")) if "format" in known else None
        if recorded is not None:
            raw["format"] = recorded
        if "format" in known and "format" not in raw:
            raw["format"] = FormatConfig()
        config = build(cls, raw, "")  # a field typed as a config of its own (format, logger) is built as one
        config.check()
        return config

    def check(self) -> None:
        """Checks that span keys; each error names the key to change."""

    @property
    def resolved(self) -> dict:
        """The config as the command ran it: what W&B records (secrets masked there)."""
        return OmegaConf.to_container(OmegaConf.create(dataclasses.asdict(self)))


@dataclass(frozen=True)
class EndpointConfig:
    """A guard behind an OpenAI-compatible chat endpoint (model=openai:NAME): libra-infer's `openai.*`,
    and a compared guard's `openai:` mapping."""

    base_url: str | None = opt(
        None, "e.g. https://api.openai.com/v1, or http://127.0.0.1:8000/v1 for vLLM / SGLang"
    )
    api_key_env: str = opt("OPENAI_API_KEY", "the key is read from this environment variable only")
    concurrency: int = opt(8, "requests in flight at once", positive)
    max_retries: int = opt(5, "retries of a failed request", non_negative)
    timeout: float = opt(60.0, "seconds a request may take", positive)
    top_logprobs: int = opt(0, "> 0: ask for log-probabilities and read p(unsafe) at the label", non_negative)


@dataclass(frozen=True)
class InferConfig(CommandConfig):
    model: str = opt(
        help="the guard: a hub id or a local checkpoint folder (full weights, adapter, ensemble)"
    )
    data: str = opt(help="a guard-schema file or folder (labels optional)")
    output_dir: str = opt(help="writes {machine_rank}-of-{machine_num}.jsonl (mode=prompts: prompts.jsonl)")
    mode: Literal["auto", "label", "generate", "prompts"] = opt(
        "auto",
        "auto: label when the format puts the label first; prompts: the exact model inputs, no weights",
    )
    threshold: float | None = THRESHOLD()
    batch_size: int = BATCH_SIZE(16)
    max_new_tokens: int = opt(256, "generate mode: tokens to decode at most", positive)
    controversial_as: Controversial = opt("unsafe", "a guard's third verdict counts as unsafe or as safe")
    machine_rank: int = opt(0, "this machine's shard", non_negative)
    machine_num: int = opt(1, "how many machines share the data", positive)
    trust_remote_code: bool = TRUST()
    dtype: Dtype = DTYPE()
    attn_implementation: str | None = ATTN()
    device: str = opt("auto", "auto: cuda if available, else cpu")
    format: FormatConfig = opt(None, "the prompt and target format the guard was trained with")
    logger: LoggerConfig = opt(None, "logger=wandb: one W&B run per output folder")
    openai: EndpointConfig = opt(help="model=openai:NAME: the endpoint", factory=EndpointConfig)

    def check(self) -> None:
        check_machine(self.machine_rank, self.machine_num)
        check_mode(self.mode, self.format, "mode")
        if self.model.startswith("openai:"):
            if not self.openai.base_url:
                raise ConfigError("openai.base_url", f"model={self.model} needs the endpoint's URL")
            if self.mode == "label":
                raise ConfigError("mode", "an endpoint answers in text: mode=generate (or auto)")
        elif self.openai.base_url:
            raise ConfigError("openai.base_url", f"is ignored here: model={self.model} is not openai:NAME")


@dataclass(frozen=True)
class ServeConfig(CommandConfig):
    model: str = opt(
        help="the guard: a hub id or a local checkpoint folder (full weights, adapter, ensemble)"
    )
    host: str = opt("127.0.0.1", "loopback only unless told otherwise (0.0.0.0 serves every interface)")
    port: int = opt(8000, "the port", lambda v: None if 1 <= v <= 65535 else f"must be in 1..65535, got {v}")
    threshold: float | None = THRESHOLD()
    max_batch_size: int = opt(32, "records per forward pass; 1 turns dynamic batching off", positive)
    max_wait_ms: float = opt(5, "how long an open batch waits for more records", non_negative)
    max_length: int = opt(
        2048, "tokens of prompt + label; longer input is cut by the training rule", positive
    )
    max_request_bytes: int = opt(1_000_000, "the largest request body", positive)
    max_inputs: int = opt(64, "texts in one /v1/moderations request", positive)
    api_key_env: str = opt(
        "LIBRA_SERVE_API_KEY", "when this variable is set, /v1/* need it as a bearer token"
    )
    category_tokens: int = opt(32, "with format.with_category: tokens generated to name categories", positive)
    controversial_as: Controversial = opt("unsafe", "a guard's third verdict counts as unsafe or as safe")
    graceful_timeout_s: float = opt(
        30, "on SIGTERM/SIGINT: how long requests in flight may finish", non_negative
    )
    trust_remote_code: bool = TRUST()
    dtype: Dtype = DTYPE()
    attn_implementation: str | None = ATTN()
    device: str = opt("auto", "auto: cuda if available, else cpu")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = opt("info", "uvicorn's")
    format: FormatConfig = opt(None, "the prompt format the guard was trained with")
    stream_max_sessions: int = opt(64, "streaming sessions open at once (each keeps a KV cache)", positive)
    stream_ttl_s: float = opt(300, "a streaming session expires this long after its last chunk", positive)
    stream_max_tokens: int = opt(4096, "response tokens one streaming session may hold", positive)
    stream_threshold: float | None = opt(
        None,
        "the stop rule: a token counts when its p(unsafe) is above this (null: the rule the stream stage "
        "saved with the head, else 0.5)",
        fraction,
    )
    stream_k: int | None = opt(
        None,
        "the stop rule: k consecutive such tokens stop the response (null: the saved rule's, else 2)",
        positive,
    )


@dataclass(frozen=True)
class MineConfig(CommandConfig):
    pool: str = opt(help="a labelled guard-schema file or folder to choose from")
    model: str | tuple = opt(help="a guard (hub id or local path), or a list of guards")
    output: str = opt(help="the chosen samples (.jsonl or .parquet); each guard's scores in OUTPUT.scores/")
    budget: int | None = _selection_option("budget")
    easy_share: float = _selection_option("easy_share")
    margin: float = _selection_option("margin")
    criteria: tuple = _selection_option("criteria")
    noise_margin: float | None = _selection_option("noise_margin")
    seed: int = _selection_option("seed")
    batch_size: int = BATCH_SIZE(32)
    trust_remote_code: bool = TRUST()
    dtype: Dtype = DTYPE()
    attn_implementation: str | None = ATTN()
    format: FormatConfig = opt(None, "the format the guards were trained with (label first)")
    logger: LoggerConfig = opt(None, "logger=wandb: one W&B run per output folder")

    @property
    def selection(self) -> SelectionConfig:
        """The selection options, checked as a libra-train stage's `select: hard` options are."""
        keys = [f.name for f in fields(SelectionConfig) if f.name != "strategy"]  # libra-mine mines hard ones
        return build(SelectionConfig, {k: getattr(self, k) for k in keys}, "")

    @property
    def guards(self) -> list[str]:
        guards = [self.model] if isinstance(self.model, str) else [str(m) for m in self.model]
        if not guards:
            raise ConfigError("model", "name at least one guard")
        return guards

    def check(self) -> None:
        self.selection  # noqa: B018 (checked at start-up, not when the pool is scored)
        self.guards  # noqa: B018


@dataclass(frozen=True)
class ReportConfig(CommandConfig):
    """libra-report's options (argparse, not Hydra: its one argument is a folder), typed like the others
    so that its W&B run records them."""

    sweep_dir: str = opt(help="a multirun directory (its numbered subfolders are the points)")
    baseline: str | None = opt(None, "AXIS=VALUE[,AXIS=VALUE]: the arm every other is compared with")
    stage: str | None = opt(None, "a stage's name: report its evaluation instead of each point's last")
    logger: LoggerConfig = opt(None, "--wandb: the intervals and charts in the sweep's W&B group")


@dataclass(frozen=True)
class EvalCommandConfig(CommandConfig):
    """libra-eval's config (the run's `eval` group is config_groups.EvalConfig)."""

    predictions: str = opt(help="a predictions file or folder (libra-infer's output)")
    labels: str = opt(help="the labelled data the predictions were made on")
    output_dir: str | None = opt(None, "writes metrics.json and confusion.png here")
    task: Literal["response", "prompt", "both"] = opt("response", "the format.task libra-infer ran with")
    logger: LoggerConfig = opt(None, "logger=wandb: one W&B run per output folder")


@dataclass(frozen=True)
class GuardSpec:
    """One guard libra-compare runs (guards.NAME): the libra-infer keys a guard may set. An unset one is
    compare's own (batch_size, max_new_tokens, controversial_as) or libra-infer's default."""

    model: str = opt(help="a checkpoint, run directory or export; openai:NAME for an endpoint")
    format: str | dict = opt(
        "rear", "a format group's name (conf/format/NAME.yaml) or a mapping of format keys"
    )
    mode: Literal["auto", "label", "generate"] = opt(
        "auto", "auto: label when the format puts the label first"
    )
    threshold: float | None = THRESHOLD()
    controversial_as: Controversial | None = opt(
        None, "a third verdict's side; null: compare's controversial_as"
    )
    max_new_tokens: int | None = opt(None, "generate mode's token budget; null: compare's", positive)
    batch_size: int | None = opt(None, "samples per forward pass; null: compare's", positive)
    trust_remote_code: bool = TRUST()
    dtype: Dtype = DTYPE()
    attn_implementation: str | None = ATTN()
    openai: EndpointConfig | None = opt(None, "model=openai:NAME: the endpoint (base_url, api_key_env, …)")


def guard_spec(name: str, raw) -> GuardSpec:
    """guards.NAME built and checked; an unknown or mistyped key is named as guards.NAME.KEY."""
    key = f"guards.{name}"
    if not isinstance(raw, dict) or not raw.get("model"):
        raise ConfigError(f"{key}.model", "each guard needs a model (a path or openai:NAME)")
    return build(GuardSpec, raw, key)


@dataclass(frozen=True)
class CompareConfig(CommandConfig):
    guards: dict | str = opt(
        help="name → {model, format, mode, threshold, controversial_as, openai, max_new_tokens, …} "
        "(GuardSpec), or a YAML file of that mapping"
    )
    output_dir: str = opt(help="leaderboard.md, leaderboard.json, pr_<set>.png; each guard's outputs")
    data: dict = opt(help="name → a labelled guard-schema file or folder (+data.NAME=PATH)", factory=dict)
    batch_size: int = BATCH_SIZE(16)
    max_new_tokens: int = opt(256, "generate mode: tokens to decode at most", positive)
    controversial_as: Controversial = opt("unsafe", "a guard's third verdict, unless the guard says")
    logger: LoggerConfig = opt(None, "logger=wandb: the leaderboard as a W&B table")

    @property
    def guard_specs(self) -> dict[str, GuardSpec]:
        """The guards, each checked (read from their YAML file when `guards` names one)."""
        specs = self._raw_guards()
        if not isinstance(specs, dict) or not specs:
            raise ConfigError("guards", "name at least one guard: name → {model: …, format: …}")
        return {name: guard_spec(name, spec) for name, spec in specs.items()}

    def _raw_guards(self):
        if isinstance(self.guards, dict):
            return self.guards
        from omegaconf import OmegaConf

        if not Path(self.guards).is_file():
            raise ConfigError("guards", f"no such file: {self.guards}")
        try:
            return OmegaConf.to_container(OmegaConf.load(self.guards), resolve=True)  # ${oc.env:RUN} etc.
        except Exception as err:  # noqa: BLE001 (a YAML or interpolation error: said in one line)
            where = f" at {err.full_key}" if getattr(err, "full_key", None) else ""
            reason = str(err).splitlines()[0]
            raise ConfigError("guards", f"{self.guards}{where}: {reason}") from None

    def check(self) -> None:
        self.guard_specs  # noqa: B018 (every guard checked at start-up, before any guard runs)
        if not self.data:
            raise ConfigError("data", "name at least one data set: +data.NAME=PATH")
        from libra_train.data.io import HUB_PREFIX

        for name, path in self.data.items():  # once here, not once per guard
            if not str(path).startswith(HUB_PREFIX) and not Path(str(path)).exists():
                raise ConfigError(f"data.{name}", f"no such file or folder: {path}")


@dataclass(frozen=True)
class ExportConfig(CommandConfig):
    checkpoint: str = opt(help="a run directory (its final guard), a stage checkpoint or an ensemble folder")
    output_dir: str = opt(help="the release folder: new or empty")
    classifier: bool = opt(False, "the guard as a sequence classifier (its label-mode p(unsafe) as a head)")
    threshold: float | None = THRESHOLD()
    hub_repo: str | None = opt(None, "upload the release to this Hub repo (needs a token: HF_TOKEN)")
    model_name: str | None = opt(None, "the card's title and model-index name (null: the folder's name)")
    license: str = opt("other", "the card's licence: the backbone's and the data's terms decide it")
    trust_remote_code: bool = TRUST()
    dtype: Dtype = DTYPE()
    format: FormatConfig = opt(None, "only to override what the checkpoint or its run recorded")

    @property
    def named_format(self) -> FormatConfig | None:
        """The format, where the command line picked one (format=NAME); else None (the checkpoint's record
        is read, with format_keys on top)."""
        return self.format if _format_overrides()[0] else None

    @property
    def format_keys(self) -> dict:
        """The format keys the command line sets (format.KEY=…), laid over the recorded format."""
        return {k: getattr(self.format, k) for k in _format_overrides()[1]}


# Each command's defaults are its dataclass's, handed to Hydra as conf/cli/NAME.yaml's first default.
for _name, _config in {
    "infer": InferConfig,
    "serve": ServeConfig,
    "mine": MineConfig,
    "export": ExportConfig,
    "compare": CompareConfig,
    "eval": EvalCommandConfig,
}.items():
    register_defaults(_name, defaults_node(_config))
