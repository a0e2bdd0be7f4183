"""Pretrain → fine-tune chains: resolve ancestors, check compatibility, load weights, lineage.

A tag with ``pretrain: {tag: A, checkpoint: epoch100, ...}`` starts from A's
weights (and, with ``reset_optimizer: false``, A's optimizer and schedule).
Chains may be long (A → B → C); a cycle is an error. What was loaded, skipped
or missing is printed as a report, and the whole ancestry (tag, checkpoint,
epoch/step, spk fingerprint) is written to ``exp/<TAG>/lineage.json``, with the tag's
speakers and the parent rows that seeded its new ones. Speaker/emotion embedding tables
are matched by name (:mod:`vc_toolkit.train.speakers`), not by row.

The parent may be of the other model family (``model.type``): a VC tag may start from a
TTS tag (as vc_tts_template's VC decoders started from "FastSpeech2 for VC"). Then the
parts both families build alike load — decoder, variance adaptor (duration, pitch and
energy predictors and embeddings, segment prosody), ``mel_proj``, postnet, conditioning
(:data:`~vc_toolkit.models.fs2base.SHARED_PARTS`) — and each side's input parts are
excluded (:func:`family_exclusions`): the parent's (a TTS model's token embedding, text
encoder and aligner) because this model reads another input, this model's own because
they have nothing to load from. The load report says so.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from vc_toolkit import checkpoint, log
from vc_toolkit.config import ConfigError, TagConfig, load_tag
from vc_toolkit.config.pin import read_fingerprint
from vc_toolkit.config.resolve import flatten, read_yaml
from vc_toolkit.config.tag import ModelConfig, Pretrain
from vc_toolkit.data.labels import SpeakerTable
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout
from vc_toolkit.train.speakers import map_rows

logger = log.get("pretrain")
#: spk keys that must agree for weights to transfer
COMPATIBLE_KEYS = (
    "sample_rate",
    "reduction_factor",
    "feats.mel.n_fft",
    "feats.mel.win_length",
    "feats.mel.hop_length",
    "feats.mel.n_mels",
    "feats.mel.fmin",
    "feats.mel.fmax",
    "feats.mel.log_base",
)


class PretrainError(UserError):
    """The pretrain chain cannot be used as configured."""


def load_parent(child: str, parent: str, layout: Layout) -> TagConfig:
    """The config of ``parent``, named by ``pretrain.tag`` of tag ``child``.

    Raises:
        PretrainError: the parent has no (valid) config; the message says it came from
            ``pretrain.tag`` of ``child``.
    """
    try:
        return load_tag(parent, layout.root)
    except ConfigError as err:
        conf = layout.shown(layout.tag_conf(child))
        raise PretrainError(f"pretrain.tag of tag '{child}' ({conf}): {err}") from None


def chain(tag: str, layout: Layout) -> list[str]:
    """Ancestors of ``tag`` through ``pretrain.tag``, oldest first (``tag`` excluded).

    Raises:
        PretrainError: the chain has a cycle.
    """
    seen = [tag]
    cfg = load_tag(tag, layout.root)
    while cfg.pretrain is not None:
        parent = cfg.pretrain.tag
        if parent in seen:
            raise PretrainError(f"pretrain chain has a cycle: {' -> '.join([*seen, parent])}")
        cfg = load_parent(seen[-1], parent, layout)
        seen.append(parent)
    return list(reversed(seen[1:]))


def is_trained(tag: str, layout: Layout, name: str) -> bool:
    folder = layout.checkpoints(tag)
    try:
        checkpoint.resolve(folder, name)
    except checkpoint.CheckpointError:
        return False
    return True


def _prefix_match(name: str, prefixes: list[str]) -> bool:
    return any(
        name == p or name.startswith(p.rstrip(".") + ".") or fnmatch.fnmatch(name, p)
        for p in prefixes
    )


def matches(name: str, prefixes: list[str]) -> bool:
    """Whether parameter ``name`` falls under one of ``prefixes`` (a prefix or a glob)."""
    return _prefix_match(name, prefixes)


def check_compatible(spk: str, parent_spk: str, layout: Layout) -> None:
    """Refuse a pretrain whose spk features differ in a way weights cannot bridge."""
    if spk == parent_spk:
        return
    ours = flatten(read_yaml(layout.dump(spk) / "config.yaml"))
    theirs_path = layout.dump(parent_spk) / "config.yaml"
    if not theirs_path.is_file():
        raise PretrainError(
            f"the pretrain tag's spk '{parent_spk}' has no frozen config ({theirs_path}); "
            f"run ./run.sh --stage 0 --stop_stage 1 --spk {parent_spk}"
        )
    theirs = flatten(read_yaml(theirs_path))
    diffs = [
        f"{k}: {theirs.get(k)!r} (pretrain) vs {ours.get(k)!r}"
        for k in COMPATIBLE_KEYS
        if ours.get(k) != theirs.get(k)
    ]
    if diffs:
        raise PretrainError(
            f"pretrain spk '{parent_spk}' and spk '{spk}' have incompatible features: "
            + "; ".join(diffs)
        )


@dataclass
class LoadReport:
    """What happened to each parameter when loading pretrained weights."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    grown: list[str] = field(default_factory=list)
    seeded_rows: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    family_excluded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for name in ("loaded", "missing", "unexpected", "mismatched", "excluded", "frozen"):
            items = getattr(self, name)
            shown = ", ".join(items[:8]) + (
                f", ... ({len(items) - 8} more)" if len(items) > 8 else ""
            )
            out.append(
                f"{name:>10}: {len(items):4d}"
                + (f"  {shown}" if items and name != "loaded" else "")
            )
        return out + self.tables + self.notes


def family_exclusions(parent: ModelConfig, child: ModelConfig) -> tuple[list[str], list[str]]:
    """What is not loaded when the pretrain tag is of another model family, and why.

    Args:
        parent: The pretrain tag's ``model`` block.
        child: This tag's ``model`` block.

    Returns:
        tuple[list[str], list[str]]: state-dict prefixes to exclude (the parent's input
        side, then this model's), and report lines; both empty for the same family.

    Example:
        >>> prefixes, notes = family_exclusions(ModelConfig(type="fastspeech2tts"), ModelConfig())
        >>> prefixes
        ['token_embed', 'encoder', 'aligner', 'input_proj', 'src_pitch_embed', 'src_energy_embed']
    """
    from vc_toolkit.models import MODEL_FAMILIES
    from vc_toolkit.models.fs2base import SHARED_PARTS

    if parent.type == child.type:
        return [], []
    theirs, ours = MODEL_FAMILIES.get(parent.type), MODEL_FAMILIES.get(child.type)
    prefixes = list(dict.fromkeys([*theirs.input_parts, *ours.input_parts]))
    notes = [
        f"     model: the pretrain tag is {parent.type} ({theirs.input_kind} input), this tag "
        f"{child.type} ({ours.input_kind} input): its {theirs.input_kind} side "
        f"({', '.join(theirs.input_parts)}) is excluded, this model's "
        f"{ours.input_kind} side ({', '.join(ours.input_parts)}) starts fresh; "
        f"{', '.join(SHARED_PARTS)} load",
    ]
    if "token" in (parent.variance_level, child.variance_level) and (
        parent.variance_level != child.variance_level
    ):
        notes.append(
            "            pitch/energy are per token on one side and per frame on the other: "
            "their output and embedding layers differ in shape (see mismatched)"
        )
    return prefixes, notes


def _map_tables(
    model: nn.Module,
    weights: dict,
    exclude: list[str],
    speakers: tuple[SpeakerTable, SpeakerTable],
    report: LoadReport,
) -> dict[str, torch.Tensor]:
    """The model's embedding tables filled by name from the parent's (report updated)."""
    tables = model.embedding_tables() if hasattr(model, "embedding_tables") else {}
    own, mapped, listed = model.state_dict(), {}, set()
    fresh = [n for n in tables if n not in weights and not _prefix_match(n, exclude)]
    if fresh:
        has_any = any(k.startswith("conditioning.") for k in weights)
        why = "other conditioning tables (share/emotion differ)" if has_any else "no conditioning"
        report.tables.append(
            f"speaker tables: the parent has {why}; {', '.join(fresh)} stay freshly initialised"
        )
    for name, kind in tables.items():
        tensor = weights.get(name)
        if _prefix_match(name, exclude) or tensor is None:
            continue
        if tensor.ndim != 2 or tensor.shape[1] != own[name].shape[1]:
            continue  # another embedding size: reported as mismatched
        rows, lines, seeds = map_rows(tensor, kind, *speakers)
        mapped[name] = rows
        if tuple(rows.shape) != tuple(tensor.shape):
            report.grown.append(f"{name} {tuple(tensor.shape)}->{tuple(rows.shape)}")
        if kind not in listed:
            listed.add(kind)
            report.tables += lines
            report.seeded_rows[kind] = seeds
    return mapped


def load_weights(
    model: nn.Module,
    weights: dict,
    strict: bool,
    exclude: list[str],
    freeze: list[str],
    speakers: tuple[SpeakerTable, SpeakerTable] | None = None,
) -> LoadReport:
    """Copy matching tensors of ``weights`` into ``model``.

    Args:
        model: The model being initialised.
        weights: A state dict (from a checkpoint's ``model`` entry).
        strict: Any missing, unexpected or shape-mismatched name is an error.
        exclude: Name prefixes (or globs) not loaded.
        freeze: Name prefixes (or globs) whose parameters get ``requires_grad = False``.
        speakers: ``(parent table, child table)``: the model's embedding tables are filled
            by name (:func:`~vc_toolkit.train.speakers.map_rows`) instead of by shape.

    Returns:
        The :class:`LoadReport`.

    Raises:
        PretrainError: ``strict`` and the state dicts differ.
    """
    own = model.state_dict()
    report = LoadReport()
    to_load = {}
    if speakers is not None:
        to_load = _map_tables(model, weights, exclude, speakers, report)
        report.loaded += list(to_load)
    for name, tensor in weights.items():
        if name in to_load:
            continue
        if _prefix_match(name, exclude):
            report.excluded.append(name)
        elif name not in own:
            report.unexpected.append(name)
        elif own[name].shape != tensor.shape:
            report.mismatched.append(f"{name} {tuple(tensor.shape)}->{tuple(own[name].shape)}")
        else:
            to_load[name] = tensor
            report.loaded.append(name)
    report.missing = [n for n in own if n not in weights and not _prefix_match(n, exclude)]
    if strict and (report.missing or report.unexpected or report.mismatched):
        first = (report.missing + report.unexpected + report.mismatched)[0]
        raise PretrainError(
            f"pretrain.strict is true but the weights differ ({len(report.missing)} missing, "
            f"{len(report.unexpected)} unexpected, {len(report.mismatched)} mismatched; first: "
            f"{first}); set strict: false to skip them, or exclude them"
        )
    with torch.no_grad():
        for name, tensor in to_load.items():
            own[name].copy_(tensor.to(own[name].device, own[name].dtype))
    for name, param in model.named_parameters():
        if _prefix_match(name, freeze):
            param.requires_grad_(False)
            report.frozen.append(name)
    return report


def check_optimizer_transfer(pcfg: Pretrain, report: LoadReport) -> None:
    """``pretrain.reset_optimizer: false`` needs the same trainable parameters, same shapes.

    Args:
        pcfg: The tag's ``pretrain`` block.
        report: What :func:`load_weights` did.

    Raises:
        PretrainError: naming what differs (shapes, missing or extra parameters, exclude,
            freeze) and what to change.
    """

    def some(names: list[str]) -> str:
        return ", ".join(names[:3]) + (f", ... ({len(names) - 3} more)" if len(names) > 3 else "")

    causes = [
        f"{len(names)} {what} ({some(names)})"
        for names, what in (
            (report.mismatched, "parameters have another shape"),
            (report.grown, "embedding tables have new rows (new speakers)"),
            (report.missing, "parameters are not in the pretrain checkpoint"),
            (report.unexpected, "pretrain parameters are not in this model"),
        )
        if names
    ]
    if report.family_excluded:
        causes.append(
            f"the pretrain tag is another model family ({len(report.family_excluded)} input "
            "parameters not loaded)"
        )
    if pcfg.exclude:
        causes.append(f"pretrain.exclude leaves {len(report.excluded)} parameters out")
    if pcfg.freeze:
        causes.append(f"pretrain.freeze takes {len(report.frozen)} parameters out of training")
    if not causes:
        return
    fixes = ["set reset_optimizer: true"]
    if report.mismatched or report.missing or report.unexpected or report.grown:
        fixes.append("give the model the pretrain tag's sizes")
    if pcfg.exclude or pcfg.freeze:
        fixes.append("drop " + "/".join(k for k in ("exclude", "freeze") if getattr(pcfg, k)))
    raise PretrainError(
        "pretrain.reset_optimizer: false restores the pretrain tag's optimizer, which needs the "
        f"same trainable parameters with the same shapes, but {'; '.join(causes)}; "
        + ", or ".join(fixes)
    )


def apply_freeze(model: nn.Module, freeze: list[str]) -> None:
    """Re-apply ``freeze`` (after a resume, where weights come from the tag's own checkpoint)."""
    for name, param in model.named_parameters():
        if _prefix_match(name, freeze):
            param.requires_grad_(False)


def lineage_entry(tag: str, layout: Layout, ckpt_path: Path, state: dict, cfg: TagConfig) -> dict:
    fp = read_fingerprint(layout.dump(cfg.spk)) or {}
    return {
        "tag": tag,
        "spk": cfg.spk,
        "spk_fingerprint": fp.get("fingerprint"),
        "checkpoint": str(ckpt_path),
        "epoch": state.get("epoch"),
        "step": state.get("step"),
    }


def write_lineage(
    exp_dir: Path,
    tag: str,
    cfg: TagConfig,
    parent: dict | None,
    layout: Layout,
    speakers: SpeakerTable | None = None,
    seeded_rows: dict[str, dict[str, list[int]]] | None = None,
) -> list[dict]:
    """Write ``lineage.json``: this tag, then its ancestors (nearest first).

    The tag's row also holds its ``speakers`` table (names, ``seeded_from``) and
    ``seeded_rows``: ``{"speakers"|"emotions": {new name: parent rows it was seeded from}}``.
    """
    fp = read_fingerprint(layout.dump(cfg.spk)) or {}
    me = {"tag": tag, "spk": cfg.spk, "spk_fingerprint": fp.get("fingerprint")}
    if speakers is not None:
        me["speakers"] = speakers.as_dict()
        me["seeded_rows"] = seeded_rows or {}
    chain_rows = [me]
    if parent is not None:
        parent_lineage = layout.exp(parent["tag"]) / "lineage.json"
        ancestors = json.loads(parent_lineage.read_text())[1:] if parent_lineage.is_file() else []
        chain_rows += [parent, *ancestors]
    from vc_toolkit.io import atomic_write_text

    atomic_write_text(exp_dir / "lineage.json", json.dumps(chain_rows, indent=2) + "\n")
    return chain_rows
