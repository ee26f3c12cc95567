"""`libra-export`: a trained guard as a self-contained release folder.

The source is a run directory (its final guard), a stage checkpoint or an ensemble folder. The release
holds merged weights (a LoRA adapter merged into its base), the tokenizer, the saved threshold, the
format the guard was trained with (data/recorded_format.py) and a model card (card.py); with
`classifier=true`, the same guard as a sequence classifier instead (classifier.py). It is written into a
hidden sibling folder and renamed into place when complete, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from libra_train.data.formats import FormatConfig
from libra_train.data.io import current_umask
from libra_train.data.recorded_format import recorded_format, save_format
from libra_train.ensemble import is_ensemble, member_paths, write_ensemble
from libra_train.errors import CheckpointError, ConfigError
from libra_train.eval.decision import Decision, command_decision, save_decision, saved_decision

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


@dataclass
class Source:
    checkpoint: Path  # weights, an adapter, or an ensemble folder
    run_dir: Path | None  # the run that trained it, where one is found (its manifest and config)
    stage: dict  # the run's manifest entry for the checkpoint ({} when there is no run)


def resolve_source(path: str) -> Source:
    given = Path(path).expanduser()
    if not given.exists():
        raise CheckpointError(f"checkpoint {given} does not exist")
    if (given / MANIFEST).is_file():
        entry = _final_stage(given)
        return Source(given / entry["checkpoint"], given, entry)
    if not (
        is_ensemble(given) or (given / "config.json").is_file() or (given / "adapter_config.json").is_file()
    ):
        raise CheckpointError(
            f"{given} is neither a run directory (manifest.json) nor a checkpoint (config.json, "
            "adapter_config.json or ensemble.json)"
        )
    for run_dir in given.resolve().parents[:3]:  # RUN/STAGE/checkpoint, RUN/member/STAGE/checkpoint
        if (run_dir / MANIFEST).is_file():
            return Source(given, run_dir, _stage_of(run_dir, given))
    return Source(given, None, {})


def _manifest(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / MANIFEST).read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{run_dir / MANIFEST} is corrupt ({err.msg})") from None


def _final_stage(run_dir: Path) -> dict:
    done = [
        s for s in _manifest(run_dir).get("stages", []) if s.get("status") == "done" and s.get("checkpoint")
    ]
    if not done:
        raise CheckpointError(f"{run_dir} has no finished stage to export: its manifest lists none done")
    return done[-1]


def _stage_of(run_dir: Path, checkpoint: Path) -> dict:
    for entry in _manifest(run_dir).get("stages", []):
        if entry.get("checkpoint") and (run_dir / entry["checkpoint"]).resolve() == checkpoint.resolve():
            return entry
    return {}


def source_format(source: Source, given: FormatConfig | None, keys: dict | None = None) -> FormatConfig:
    """The command line's format if it picked one; else the one recorded beside the checkpoint, else the
    run's config.yaml, with the command line's format keys on top; else an error (a release must say how
    to prompt its guard)."""
    from libra_train.config import format_config

    if given is not None:
        return given.load_files()
    folder = member_paths(source.checkpoint)[0] if is_ensemble(source.checkpoint) else source.checkpoint
    record = recorded_format(source.checkpoint) or recorded_format(folder)
    if record is None and source.run_dir and (source.run_dir / "config.yaml").is_file():
        from omegaconf import OmegaConf

        record = OmegaConf.to_container(OmegaConf.load(source.run_dir / "config.yaml")).get("format")
    if record is None:
        raise ConfigError(
            "format", f"{source.checkpoint} records no format and no run is found: give format="
        )
    return format_config({**record, **(keys or {})}).load_files()


def export_release(cfg) -> Path:
    """Write the release (cfg: command_config.ExportConfig); returns its folder."""
    out = Path(cfg.output_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError("output_dir", f"{out} exists and is not empty: name a new folder")
    source = resolve_source(cfg.checkpoint)
    fmt = source_format(source, cfg.named_format, cfg.format_keys)
    if cfg.classifier and is_ensemble(source.checkpoint):
        members = ", ".join(str(p) for p in member_paths(source.checkpoint))
        raise ConfigError(
            "classifier",
            f"an ensemble averages its members' distributions, which no single classifier head holds: "
            f"export each member instead ({members})",
        )
    decision = command_decision(cfg.threshold, source.checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(source, fmt, decision, staging, cfg)
        give_plain_permissions(staging)
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s to %s", source.checkpoint, out)
    return out


def give_plain_permissions(folder: Path) -> None:
    """The modes a plain mkdir and open() would give under the user's umask (usually 755 and 644): the
    staging folder comes from mkdtemp (700), and some writers create their files 600, which would make
    a release meant to be served or shared readable by its owner only."""
    umask = current_umask()
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def _write(source: Source, fmt: FormatConfig, decision: Decision, folder: Path, cfg) -> None:
    from libra_train.export.card import write_card

    if is_ensemble(source.checkpoint):
        members = []
        for i, member in enumerate(member_paths(source.checkpoint)):
            members.append(folder / "members" / f"member{i}")
            label_ids = _write_weights(
                member, fmt, saved_decision(member) or decision, members[-1], cfg, False
            )
        write_ensemble(folder, members)
        exported = f"exported from {source.checkpoint.resolve()}"
        save_decision(folder, Decision(decision.threshold, decision.temperature, exported))  # the ensemble's
        save_format(folder, fmt)
    else:  # _write_weights wrote the threshold and the format beside the weights
        label_ids = _write_weights(source.checkpoint, fmt, decision, folder, cfg, cfg.classifier)
    write_card(folder, source, fmt, decision, cfg, label_ids)


def _write_weights(checkpoint: Path, fmt, decision: Decision, folder: Path, cfg, classifier: bool):
    """Merged weights (or the classifier), the tokenizer with the `guard` chat template where the
    format reads its label at a fixed position, the threshold and the format; returns the label
    token ids (None without a fixed position)."""
    from libra_train.export import classifier as cls
    from libra_train.model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(checkpoint), cfg.trust_remote_code, cfg.dtype)
    label_ids = None
    try:
        cls.check_classifiable(fmt, tokenizer)
    except ConfigError:
        if classifier:
            raise
    else:
        label_ids = cls.label_token_ids(tokenizer, fmt)
        templates = {"guard": cls.classifier_template(tokenizer, fmt)}
    if classifier:
        model = cls.to_sequence_classifier(model, tokenizer, fmt, decision)
    if label_ids is not None:  # set last: the rendering above uses the backbone's own template
        if tokenizer.chat_template:
            templates["default"] = tokenizer.chat_template
        tokenizer.chat_template = templates
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    save_decision(
        folder, Decision(decision.threshold, decision.temperature, f"exported from {checkpoint.resolve()}")
    )
    save_format(folder, fmt)
    return label_ids


def upload_release(folder: Path, repo: str) -> str:
    """Upload the release with huggingface_hub when a token is set; else say in one line that none is."""
    from huggingface_hub import HfApi, get_token

    if not get_token():
        return f"not uploaded to {repo}: no Hugging Face token is set (HF_TOKEN, or huggingface-cli login)"
    api = HfApi()
    api.create_repo(repo, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message="libra-export release")
    return f"uploaded to {commit.commit_url if hasattr(commit, 'commit_url') else repo}"
