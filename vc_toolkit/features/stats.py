"""Normalisation statistics of the feature streams, accumulated utterance by utterance.

Per side (``src``, ``tgt``): per-bin mean/std of the log-mel, mean/std of log-F0
over *voiced* frames only, mean/std of log energy. Each utterance contributes its
count, mean and sum of squared deviations, merged in float64 with the pairwise
update of Chan, Golub & LeVeque ("Updating formulae and a pairwise algorithm for
computing sample variances", 1979), so no frames are kept and constant offsets
cost no precision. Standard deviations are population ones, floored at
:data:`STD_FLOOR`.

Normalisation is a z-score. Non-continuous log-F0 marks unvoiced frames with
:data:`~vc_toolkit.features.pitch.UNVOICED_LF0` (0.0); those frames stay 0.

Example:
    >>> item = {"src_mel": np.array([[1.0], [3.0]]), "src_lf0": np.array([5.0, 0.0]),
    ...         "src_vuv": np.array([1.0, 0.0]), "src_energy": np.array([2.0, 2.0])}
    >>> st = compute_stats([item], sides=("src",))
    >>> st["src_mel_mean"].tolist(), st["src_mel_std"].tolist(), float(st["src_lf0_mean"])
    ([2.0], [1.0], 5.0)
    >>> normalize(item, st)["src_mel"].tolist()
    [[-1.0], [1.0]]
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vc_toolkit.features.pitch import UNVOICED_LF0
from vc_toolkit.io import atomic_open

STD_FLOOR = 1e-3
"""Smallest standard deviation used to divide (a constant bin must not divide by 0)."""
SIDES = ("src", "tgt")
STATS_STREAMS = ("mel", "lf0", "energy")


class _Moments:
    """Running count, mean and sum of squared deviations of (N, D) data (Chan et al.)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | float = 0.0
        self.m2: np.ndarray | float = 0.0

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        nb = len(x)
        if nb == 0:
            return
        mean_b = x.mean(axis=0)
        m2_b = np.square(x - mean_b).sum(axis=0)
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2_b + np.square(delta) * (self.n * nb / n)
        self.n = n

    def result(self, what: str) -> tuple[np.ndarray, np.ndarray]:
        if self.n == 0:
            raise ValueError(f"no frames to compute {what} statistics from")
        std = np.sqrt(np.asarray(self.m2) / self.n)
        return np.asarray(self.mean, dtype=np.float64), np.maximum(std, STD_FLOOR)


class StatsAccumulator:
    """Streaming statistics over many utterance dicts (as from ``extract_pair``).

    Args:
        sides: Which prefixes to accumulate, e.g. ``("src", "tgt")``.
    """

    def __init__(self, sides: tuple[str, ...] = SIDES):
        self.sides = tuple(sides)
        self._m = {(s, k): _Moments() for s in self.sides for k in STATS_STREAMS}

    def update(self, item: dict) -> None:
        """Add one utterance: ``<side>_mel`` (T, M), ``<side>_lf0``/``_vuv``/``_energy`` (T,)."""
        for side in self.sides:
            voiced = np.asarray(item[f"{side}_vuv"]) > 0.5
            self._m[side, "mel"].update(item[f"{side}_mel"])
            self._m[side, "lf0"].update(np.asarray(item[f"{side}_lf0"])[voiced])
            self._m[side, "energy"].update(item[f"{side}_energy"])

    def result(self) -> dict[str, np.ndarray]:
        """``{<side>_<stream>_mean, <side>_<stream>_std, <side>_frames}`` as float64 arrays."""
        out: dict[str, np.ndarray] = {}
        for (side, stream), moments in self._m.items():
            mean, std = moments.result(f"{side} {stream}")
            out[f"{side}_{stream}_mean"], out[f"{side}_{stream}_std"] = mean, std
        for side in self.sides:
            out[f"{side}_frames"] = np.asarray(self._m[side, "mel"].n, dtype=np.int64)
        return out


def compute_stats(items: Iterable[dict], sides: tuple[str, ...] = SIDES) -> dict[str, np.ndarray]:
    """Statistics of an iterable of utterance dicts (consumed once)."""
    acc = StatsAccumulator(sides)
    for item in items:
        acc.update(item)
    return acc.result()


def save_stats(path: str | Path, stats: dict[str, np.ndarray]) -> None:
    """Write statistics as ``.npz`` (atomically)."""
    with atomic_open(path, "wb") as f:
        np.savez(f, **stats)


def load_stats(path: str | Path) -> dict[str, np.ndarray]:
    """Read statistics written by :func:`save_stats`.

    Raises:
        FileNotFoundError: no statistics file (stage 1 has not finished).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run stage 1 first to compute statistics")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _z(x: Any, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32)


def normalize(item: dict, stats: dict[str, np.ndarray]) -> dict:
    """Z-score the mel, log-F0 and energy streams of every side present in ``stats``.

    Args:
        item: Utterance dict; keys other than the normalised streams pass through.
        stats: From :func:`compute_stats`.

    Returns:
        A new dict with float32 normalised streams; unvoiced frames whose log-F0 is
        :data:`UNVOICED_LF0` (non-continuous F0) are 0.
    """
    out = dict(item)
    for side in SIDES:
        if f"{side}_mel_mean" not in stats or f"{side}_mel" not in item:
            continue
        for stream in STATS_STREAMS:
            key = f"{side}_{stream}"
            out[key] = _z(item[key], stats[f"{key}_mean"], stats[f"{key}_std"])
        unvoiced = np.asarray(item[f"{side}_vuv"]) <= 0.5
        gap = unvoiced & (np.asarray(item[f"{side}_lf0"]) == UNVOICED_LF0)
        out[f"{side}_lf0"][gap] = 0.0
    return out


def _denorm(x: Any, mean: np.ndarray, std: np.ndarray) -> Any:
    """``x * std + mean`` for numpy arrays or torch tensors (on the tensor's device)."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return (np.asarray(x, dtype=np.float64) * std + mean).astype(np.float32)
    import torch

    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    return x * std_t + mean_t


def denormalize_mel(mel: Any, stats: dict[str, np.ndarray], side: str = "tgt") -> Any:
    """Normalised log-mel (..., n_mels) → log-mel; numpy array or tensor."""
    return _denorm(mel, stats[f"{side}_mel_mean"], stats[f"{side}_mel_std"])


def denormalize_lf0(lf0: Any, stats: dict[str, np.ndarray], side: str = "tgt") -> Any:
    """Normalised log-F0 (...) → log-F0 (apply the voiced mask afterwards if needed)."""
    return _denorm(lf0, stats[f"{side}_lf0_mean"], stats[f"{side}_lf0_std"])


def denormalize_energy(energy: Any, stats: dict[str, np.ndarray], side: str = "tgt") -> Any:
    """Normalised log energy (...) → log energy; numpy array or tensor."""
    return _denorm(energy, stats[f"{side}_energy_mean"], stats[f"{side}_energy_std"])


SPEAKER_PREFIX = "speaker:"
"""Per-speaker statistics are stored as ``speaker:<name>:<stream>_<mean|std>`` keys."""


def _speaker_key(name: str, key: str) -> str:
    return f"{SPEAKER_PREFIX}{name}:{key}"


def compute_speaker_stats(sides: Iterable[tuple[str, str, dict]]) -> dict[str, np.ndarray]:
    """Statistics per speaker, from both sides of the utterances they speak.

    Args:
        sides: ``(speaker, side, item)`` triples: ``item`` holds ``<side>_mel`` (T, M) and
            ``<side>_lf0``/``_vuv``/``_energy`` (T,); each triple adds that side's frames to
            ``speaker``. The caller passes each recording once (a source utterance shared by
            several pairs must not count twice).

    Returns:
        ``speaker:<name>:<stream>_mean``/``_std`` and ``speaker:<name>:frames`` arrays, to be
        merged into the global statistics (see :func:`pair_stats`).

    Example:
        >>> a = {"src_mel": np.array([[1.0], [3.0]]), "src_lf0": np.array([5.0, 7.0]),
        ...      "src_vuv": np.ones(2), "src_energy": np.zeros(2)}
        >>> b = {"tgt_mel": np.array([[5.0]]), "tgt_lf0": np.array([7.0]),
        ...      "tgt_vuv": np.ones(1), "tgt_energy": np.zeros(1)}
        >>> st = compute_speaker_stats([("x", "src", a), ("x", "tgt", b)])
        >>> st["speaker:x:mel_mean"].tolist(), int(st["speaker:x:frames"])
        ([3.0], 3)
    """
    accs: dict[str, StatsAccumulator] = {}
    for speaker, side, item in sides:
        acc = accs.setdefault(speaker, StatsAccumulator(("x",)))
        acc.update({f"x_{s}": item[f"{side}_{s}"] for s in (*STATS_STREAMS, "vuv")})
    out: dict[str, np.ndarray] = {}
    for speaker, acc in sorted(accs.items()):
        for key, value in acc.result().items():
            out[_speaker_key(speaker, key.removeprefix("x_"))] = value
    return out


def stats_speakers(stats: dict[str, np.ndarray]) -> list[str]:
    """Speakers with their own statistics (empty for ``stats: global``)."""
    names = {
        k[len(SPEAKER_PREFIX) :].rsplit(":", 1)[0] for k in stats if k.startswith(SPEAKER_PREFIX)
    }
    return sorted(names)


def pair_stats(stats: dict[str, np.ndarray], src_speaker: str, tgt_speaker: str) -> dict:
    """The ``src_*``/``tgt_*`` statistics that normalise one pair of speakers.

    A speaker with its own statistics (``stats: per_speaker``) uses them on either side;
    otherwise the side's global statistics apply. The result works with
    :func:`normalize` and the ``denormalize_*`` functions.

    Example:
        >>> st = {"src_mel_mean": np.zeros(1), "tgt_mel_mean": np.ones(1),
        ...       "speaker:b:mel_mean": np.full(1, 7.0)}
        >>> p = pair_stats(st, "a", "b")
        >>> p["src_mel_mean"].tolist(), p["tgt_mel_mean"].tolist()
        ([0.0], [7.0])
    """
    out = {k: v for k, v in stats.items() if not k.startswith(SPEAKER_PREFIX)}
    for side, name in (("src", src_speaker), ("tgt", tgt_speaker)):
        prefix = _speaker_key(name, "")
        for key, value in stats.items():
            if key.startswith(prefix):
                out[f"{side}_{key[len(prefix) :]}"] = value
    return out
