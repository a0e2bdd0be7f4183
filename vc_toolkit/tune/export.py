"""Write a finished trial as a new tag: ``conf/tag/<TAG>.yaml``.

The exported tag is ``base: <base_tag>``, a ``note`` naming the study, trial
and objective value, and exactly the trial's sampled parameters as a nested
mapping. The per-trial keys of the study (``TRIAL_ONLY_KEYS``: ``train.epochs``,
``train.max_steps``, ``train.eval_interval``, ``train.dev_images``,
``train.num_threads``) are *not* written, so the tag trains with the base tag's
budget; ``epochs`` writes ``train.epochs`` (``"trial"``: the study's
``epochs_per_trial``). Hence ``load_tag(<TAG>)`` equals the trial's
``config.yaml`` except ``note`` and those keys, as long as the base tag is
unchanged since the study started (a change is logged as a warning).
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from vc_toolkit import log
from vc_toolkit.config import load_tag, to_dict
from vc_toolkit.config.core import ConfigError
from vc_toolkit.config.resolve import diff_configs
from vc_toolkit.errors import UserError
from vc_toolkit.io import atomic_write_text
from vc_toolkit.paths import Layout
from vc_toolkit.tune.study import StudyConfig, load_study, open_study
from vc_toolkit.tune.trial import set_dotted

logger = log.get("tune")
_TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def pick_trial(study: optuna.Study, which: str | int) -> FrozenTrial:
    """Trial ``which`` (a number, or ``best``) of ``study``; it must be COMPLETE.

    Raises:
        UserError: no such trial, no complete trial, or the trial did not complete.
    """
    trials = study.get_trials(deepcopy=False)
    if str(which) == "best":
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if not done:
            raise UserError(
                f"study '{study.study_name}' has no complete trial yet ({len(trials)} trials); "
                "run more trials or pick one with --trial N"
            )
        return study.best_trial
    try:
        number = int(which)
    except ValueError:
        raise UserError(f"--trial must be a trial number or 'best', got {which!r}") from None
    found = [t for t in trials if t.number == number]
    if not found:
        raise UserError(
            f"study '{study.study_name}' has no trial {number} (trials 0-{len(trials) - 1})"
        )
    trial = found[0]
    if trial.state != TrialState.COMPLETE:
        why = trial.user_attrs.get("fail_reason") or "no reason recorded"
        raise UserError(
            f"trial {number} is {trial.state.name} ({why}); export a complete trial "
            "(vc-tune summary lists them)"
        )
    return trial


def tag_data(cfg: StudyConfig, name: str, trial: FrozenTrial, epochs: int | None) -> dict:
    """The exported tag as a dict: ``base``, ``note``, then the nested parameters."""
    data: dict = {"base": cfg.base_tag}
    data["note"] = (
        f"optuna study {name}, trial {trial.number}: {cfg.objective.name} "
        f"({cfg.objective.value}, {cfg.objective.direction}) = {trial.value:.6g}"
    )
    for key, value in trial.params.items():
        set_dotted(data, key, value)
    if epochs is not None:
        set_dotted(data, "train.epochs", epochs)
    return data


def export_trial(
    name: str,
    layout: Layout,
    which: str | int,
    tag: str,
    force: bool = False,
    epochs: int | str | None = None,
) -> tuple[Path, FrozenTrial]:
    """Write trial ``which`` of study ``name`` as ``conf/tag/<tag>.yaml``.

    Args:
        name: Study name.
        layout: Recipe root.
        which: Trial number or ``best``.
        tag: Name of the new tag.
        force: Overwrite an existing tag file.
        epochs: ``None`` (base tag's epochs), a number, or ``"trial"`` (the study's).

    Returns:
        ``(path, trial)``.

    Raises:
        UserError: bad tag name, existing file without ``force``, no such trial.
    """
    cfg, _ = load_study(name, layout)
    if not _TAG_NAME.match(tag):
        raise UserError(f"--tag {tag!r} is not a usable name (letters, digits, _ . -)")
    if tag == cfg.base_tag:
        raise UserError(f"--tag {tag} is the study's base tag; pick a new name")
    path = layout.tag_conf(tag)
    if path.exists() and not force:
        raise UserError(
            f"{path} already exists; pick another --tag or pass --force to overwrite it"
        )
    if epochs == "trial":
        if cfg.epochs_per_trial is None:
            raise UserError(f"study '{name}' budgets trials in steps; give --epochs N")
        epochs = cfg.epochs_per_trial
    study = open_study(cfg, name, layout, create=False)
    trial = pick_trial(study, which)
    _warn_if_base_changed(study, cfg, layout)
    header = (
        f'# Experiment "{tag}": trial {trial.number} of Optuna study "{name}" '
        f"(conf/optuna/{name}.yaml), written by vc-tune export.\n"
        f"# The keys below are the trial's parameters; everything else comes from {cfg.base_tag}.\n"
    )
    text = header + yaml.safe_dump(
        tag_data(cfg, name, trial, epochs), sort_keys=False, default_flow_style=False
    )
    old = path.read_text(encoding="utf-8") if path.exists() else None
    atomic_write_text(path, text)
    try:
        load_tag(tag, layout.root)
    except ConfigError:
        if old is None:
            path.unlink()
        else:
            atomic_write_text(path, old)
        raise
    return path, trial


def _warn_if_base_changed(study: optuna.Study, cfg: StudyConfig, layout: Layout) -> None:
    then = study.user_attrs.get("pinned", {}).get("base_config")
    if then is None:
        return
    now = {k: v for k, v in to_dict(load_tag(cfg.base_tag, layout.root)).items() if k != "note"}
    lines = diff_configs(then, now)
    if lines:
        logger.warning(
            "base tag '%s' changed since the study started; the exported tag differs from the "
            "trial in: %s",
            cfg.base_tag,
            "; ".join(lines),
        )
