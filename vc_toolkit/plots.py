"""Figures a person would rather look at than read (matplotlib, no display needed).

* :func:`mel_figure`: log-mels stacked vertically (source / target / converted).
* :func:`f0_figure`: F0 contours on one time axis.
* :func:`loss_curves_figure`: train and dev losses of one or more tags per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def mel_figure(panels: Sequence[tuple[str, np.ndarray]], title: str = ""):
    """One row per ``(label, mel (T, n_mels))`` panel, shared colour scale."""
    mels = [np.asarray(m, dtype=np.float32) for _, m in panels]
    lo = min(float(m.min()) for m in mels)
    hi = max(float(m.max()) for m in mels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), squeeze=False)
    for ax, (label, _), mel in zip(axes[:, 0], panels, mels, strict=True):
        ax.imshow(mel.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, interpolation="none")
        ax.set_ylabel("mel bin")
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("frame")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def f0_figure(curves: Sequence[tuple[str, np.ndarray]], frame_seconds: float, title: str = ""):
    """F0 contours in Hz (unvoiced frames as NaN or 0 are not drawn)."""
    fig, ax = plt.subplots(figsize=(10, 3))
    for label, f0 in curves:
        f0 = np.asarray(f0, dtype=np.float64).copy()
        f0[~(f0 > 0)] = np.nan
        ax.plot(np.arange(len(f0)) * frame_seconds, f0, label=label, linewidth=1.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("F0 (Hz)")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def loss_curves_figure(histories: dict[str, list[dict]], losses: Sequence[str] = ("post_mel",)):
    """Per-epoch train (dashed) and dev (solid) losses of several tags.

    An axis whose values are all positive is logarithmic, so the late epochs that
    separate experiments are not flattened by the first ones.
    """
    fig, axes = plt.subplots(1, len(losses), figsize=(5 * len(losses), 3.5), squeeze=False)
    for ax, name in zip(axes[0], losses, strict=True):
        values: list[float] = []
        for k, (tag, rows) in enumerate(histories.items()):
            color = f"C{k % 10}"
            tr = [
                (r["epoch"], r["train"].get(name))
                for r in rows
                if r.get("train", {}).get(name) is not None
            ]
            dv = [
                (r["epoch"], r["dev"].get(name))
                for r in rows
                if r.get("dev", {}).get(name) is not None
            ]
            values += [v for _, v in tr + dv]
            if tr:
                ax.plot(*zip(*tr, strict=True), "--", color=color, alpha=0.6, label=f"{tag} train")
            if dv:
                ax.plot(*zip(*dv, strict=True), "o-", color=color, label=f"{tag} dev")
        if values and min(values) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save(fig, path: Path) -> Path:
    """Write a figure as PNG and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
