"""What a study found: best trials, states with reasons, parameter importances, plots.

:func:`summarize` returns the text ``vc-tune summary`` prints and writes PNG
plots (matplotlib) to ``exp/optuna/<STUDY>/``:

* ``history.png``: objective per trial (pruned trials at their last reported
  value) and the best value so far.
* ``intermediate.png``: objective per epoch of every trial, coloured by state.
* ``importances.png``: fANOVA parameter importances (Hutter et al., "An
  Efficient Approach for Assessing Hyperparameter Importance", ICML 2014).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import optuna
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial, TrialState

from vc_toolkit.paths import Layout
from vc_toolkit.tune.storage import redacted
from vc_toolkit.tune.study import (
    StudyConfig,
    interrupted,
    load_study,
    open_study,
    storage_target,
    study_dir,
)

_COLORS = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange", "FAIL": "tab:red", "RUNNING": "tab:gray"}


def ranked(trials: list[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """Complete trials best first, then pruned ones (by last value), then the rest by number."""
    sign = 1.0 if direction == "minimize" else -1.0

    def key(t: FrozenTrial) -> tuple:
        group = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1}.get(t.state, 2)
        value = sign * t.value if t.value is not None and group < 2 else float("inf")
        return group, value, t.number

    return sorted(trials, key=key)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_table(trials: list[FrozenTrial], objective: str, keys: list[str]) -> list[str]:
    """Rows of ``trial, state, objective, epochs reported, one column per parameter``."""
    header = ["trial", "state", objective, "epochs", *keys]
    rows = [header]
    for t in trials:
        value = _fmt(t.value) if t.value is not None else "-"
        cells = [str(t.number), t.state.name, value, str(len(t.intermediate_values))]
        rows.append(cells + [_fmt(t.params[k]) if k in t.params else "-" for k in keys])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def importances(study: optuna.Study) -> tuple[dict[str, float], str | None]:
    """fANOVA importances, or ``({}, why not)`` when there are too few complete trials."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < 2:
        return {}, f"importances need at least 2 complete trials (have {len(done)})"
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        return optuna.importance.get_param_importances(study, evaluator=evaluator), None
    except (RuntimeError, ValueError, ZeroDivisionError) as err:
        return {}, f"importances not available: {err}"


def dashboard_hint(cfg: StudyConfig, layout: Layout, name: str) -> str:
    """The command that opens optuna-dashboard on the study's storage."""
    target = storage_target(cfg, layout, name)
    target = redacted(target) if "://" in target else _shown(Path(target))
    return f"pip install optuna-dashboard && optuna-dashboard {target}"


def write_plots(
    trials: list[FrozenTrial], scores: dict[str, float], cfg: StudyConfig, folder: Path
) -> list[Path]:
    """``history.png``, ``intermediate.png`` and (with scores) ``importances.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    name, direction = cfg.objective.name, cfg.objective.direction
    out = [folder / "history.png", folder / "intermediate.png"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for state in ("COMPLETE", "PRUNED"):
        points = [
            (t.number, t.value) for t in trials if t.state.name == state and t.value is not None
        ]
        if points:
            xs, ys = zip(*points)
            ax.scatter(
                xs,
                ys,
                label=state.lower(),
                color=_COLORS[state],
                marker="o" if state == "COMPLETE" else "x",
            )
    done = sorted((t.number, t.value) for t in trials if t.state == TrialState.COMPLETE)
    if done:
        pick = min if direction == "minimize" else max
        best, xs, ys = None, [], []
        for number, value in done:
            best = value if best is None else pick(best, value)
            xs.append(number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="black", label="best so far")
    ax.set(xlabel="trial", ylabel=f"dev {name}", title=f"optimisation history ({direction})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    fig.tight_layout()
    fig.savefig(out[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    for t in trials:
        if t.intermediate_values:
            steps = sorted(t.intermediate_values)
            color = _COLORS.get(t.state.name, "tab:gray")
            ax.plot(
                steps, [t.intermediate_values[s] for s in steps], marker=".", color=color, alpha=0.7
            )
    present = {t.state.name for t in trials if t.intermediate_values}
    handles = [
        plt.Line2D([], [], color=c, label=s.lower()) for s, c in _COLORS.items() if s in present
    ]
    ax.legend(handles=handles)
    ax.set(xlabel="epoch", ylabel=f"dev {name}", title="objective per epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(out[1], dpi=100)
    plt.close(fig)

    if scores:
        out.append(folder / "importances.png")
        fig, ax = plt.subplots(figsize=(7, 1 + 0.4 * len(scores)))
        keys = list(scores)[::-1]
        ax.barh(keys, [scores[k] for k in keys])
        ax.set(xlabel="importance (fANOVA)", title=f"parameter importances for dev {name}")
        fig.tight_layout()
        fig.savefig(out[2], dpi=100)
        plt.close(fig)
    return out


def summarize(name: str, layout: Layout, top: int = 10, plots: bool = True) -> str:
    """The summary text of study ``name`` (and its plots, unless ``plots`` is false)."""
    cfg, space = load_study(name, layout)
    study = open_study(cfg, name, layout, create=False)
    trials = study.get_trials(deepcopy=False)
    obj = cfg.objective
    counts = Counter(t.state.name for t in trials)
    lines = [
        f"study {name}: base tag {cfg.base_tag}, objective dev {obj.name} ({obj.value} "
        f"evaluation, {obj.direction})",
        f"{len(trials)} trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed, {counts['RUNNING']} running" + _replaced(trials),
    ]
    reasons = [t for t in trials if t.user_attrs.get("fail_reason")]
    for t in reasons[:20]:
        lines.append(f"  trial {t.number} {t.state.name}: {t.user_attrs['fail_reason']}")
    if len(reasons) > 20:
        lines.append(f"  ... and {len(reasons) - 20} more")
    keys = list(space) + sorted({k for t in trials for k in t.params} - set(space))
    best = ranked(trials, obj.direction)[:top]
    lines += ["", f"top {len(best)} trials:"] + [
        "  " + r for r in trial_table(best, obj.name, keys)
    ]
    scores, why_not = importances(study)
    lines += ["", "parameter importances (fANOVA):" if scores else why_not]
    lines += [f"  {k:<{max(map(len, scores))}}  {v:.3f}" for k, v in scores.items()]
    if plots and trials:
        written = write_plots(trials, scores, cfg, study_dir(layout, name))
        lines += ["", "plots: " + ", ".join(_shown(p) for p in written)]
    lines += ["", f"dashboard: {dashboard_hint(cfg, layout, name)}"]
    return "\n".join(lines)


def _replaced(trials: list[FrozenTrial]) -> str:
    """``; N of the failed ... interrupted and replaced`` (empty when none was)."""
    n = sum(interrupted(t) for t in trials)
    if not n:
        return ""
    return f"; {n} of the failed {'was' if n == 1 else 'were'} interrupted and replaced"


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
