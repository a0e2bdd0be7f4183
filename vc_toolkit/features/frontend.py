"""The audio front-end: a file → trimmed, silence-zeroed speech at the spk's rate.

Every stage that reads recordings goes through here, so stage 1, conversion of
arbitrary files, the threshold explorer and evaluation see the same speech:

1. :func:`read`: load with libsndfile, average to mono, resample with soxr to the
   spk's ``sample_rate`` (:func:`~vc_toolkit.features.audio.load_audio`);
2. :func:`front_end`: cut head/tail silence (:func:`~vc_toolkit.features.trim.trim_silence`),
   find the internal silences and, with ``trim.zero_internal_silence``, zero them;
3. :func:`check_speech`, :func:`num_frames`, :func:`check_voiced`: the spk's
   ``filters`` (nothing left, too short, too few frames, unvoiced).

:func:`load_speech` runs steps 1-3. A file that gives no usable speech raises
:class:`UnusableAudioError` with one of :data:`REASONS` and a one-line detail.

Example:
    >>> import tempfile, pathlib, soundfile as sf
    >>> from vc_toolkit.config.spk import DemoCorpus, SpkConfig
    >>> cfg = SpkConfig(corpus=DemoCorpus(), sample_rate=16000)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "quiet.wav"
    >>> sf.write(path, np.zeros(16000, "f4"), 16000)
    >>> try:
    ...     load_speech(path, cfg)
    ... except UnusableAudioError as err:
    ...     print(err.reason, "|", err.detail)
    silent | nothing left after trimming silence
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vc_toolkit.config.spk import SpkConfig, Trim
from vc_toolkit.errors import UserError
from vc_toolkit.features import spectral, trim
from vc_toolkit.features.audio import AudioError, load_audio

REASONS = ("unreadable", "truncated", "empty", "silent", "too_short", "unvoiced")
"""Why a file gives no usable speech, in the order they are checked."""


class UnusableAudioError(UserError):
    """A file that gives no usable speech.

    Attributes:
        reason (str): one of :data:`REASONS`.
        path (str): the file.
        detail (str): what was wrong, one line.
    """

    def __init__(self, reason: str, path: str | Path, detail: str):
        self.reason = reason
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{path}: {detail}")


@dataclass
class Speech:
    """A recording after the front-end.

    Attributes:
        path (str): where it came from ("" for signals given directly).
        samples (np.ndarray): (N,) float32 speech at ``sample_rate``: head and tail
            silence cut, internal silences zeroed when the spk says so.
        sample_rate (int): Hz.
        head (int): samples cut at the start.
        tail (int): samples cut at the end.
        input_samples (int): samples before trimming.
        silences (list[tuple[int, int]]): internal silences, sample ranges of ``samples``.
    """

    path: str
    samples: np.ndarray
    sample_rate: int
    head: int
    tail: int
    input_samples: int
    silences: list[tuple[int, int]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Speech left after trimming."""
        return len(self.samples) / self.sample_rate

    @property
    def input_seconds(self) -> float:
        """Length of the file."""
        return self.input_samples / self.sample_rate

    @property
    def trimmed_seconds(self) -> float:
        """Head and tail cut."""
        return (self.head + self.tail) / self.sample_rate


def read(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``sample_rate``.

    Raises:
        UnusableAudioError: ``unreadable``, ``truncated`` or ``empty``.
    """
    try:
        return load_audio(path, sample_rate)
    except AudioError as err:
        raise UnusableAudioError(err.reason, path, err.detail) from None


def front_end(x: np.ndarray, sample_rate: int, trim_cfg: Trim, path: str | Path = "") -> Speech:
    """Trim head/tail silence, find the internal silences, zero them when configured.

    Args:
        x: (N,) float samples.
        sample_rate: Their rate, Hz.
        trim_cfg: The spk's ``trim`` block (or a setting being explored).
        path: Recorded in the result, for messages.

    Returns:
        The :class:`Speech` (possibly empty: nothing is checked here).
    """
    y, head, tail = trim.trim_silence(x, sample_rate, trim_cfg)
    silences = trim.internal_silences(y, sample_rate, trim_cfg) if len(y) else []
    if trim_cfg.zero_internal_silence and silences:
        y = trim.zero_internal_silences(y, silences)
    return Speech(str(path), y, sample_rate, head, tail, len(x), silences)


def check_speech(speech: Speech, cfg: SpkConfig) -> None:
    """Refuse speech that is empty after trimming or shorter than ``filters.min_seconds``.

    Raises:
        UnusableAudioError: ``silent`` or ``too_short``.
    """
    if len(speech.samples) == 0:
        raise UnusableAudioError("silent", speech.path, "nothing left after trimming silence")
    if speech.seconds < cfg.filters.min_seconds:
        raise UnusableAudioError(
            "too_short",
            speech.path,
            f"{speech.seconds:.2f} s after trimming < filters.min_seconds "
            f"({cfg.filters.min_seconds} s)",
        )


def num_frames(speech: Speech, cfg: SpkConfig) -> int:
    """Frames every feature stream of ``speech`` gets: the STFT count cut to a multiple of r.

    Raises:
        UnusableAudioError: ``too_short`` when not even ``reduction_factor`` frames fit.
    """
    r = cfg.reduction_factor
    t = spectral.num_frames(len(speech.samples), cfg.feats.mel.hop_length) // r * r
    if t == 0:
        raise UnusableAudioError(
            "too_short", speech.path, f"fewer than reduction_factor ({r}) frames"
        )
    return t


def check_voiced(vuv: np.ndarray, cfg: SpkConfig, path: str | Path) -> float:
    """The voiced fraction of ``vuv`` (T,); refused below ``filters.min_voiced_fraction``.

    Raises:
        UnusableAudioError: ``unvoiced``.
    """
    fraction = float(np.mean(vuv))
    if fraction < cfg.filters.min_voiced_fraction:
        raise UnusableAudioError(
            "unvoiced",
            path,
            f"voiced on {fraction:.1%} of frames < filters.min_voiced_fraction "
            f"({cfg.filters.min_voiced_fraction:.1%})",
        )
    return fraction


def load_speech(path: str | Path, cfg: SpkConfig, check: bool = True) -> Speech:
    """Steps 1-3 of the module docstring for one file.

    Args:
        path: Audio file (any rate, channels, libsndfile format).
        cfg: The spk config (``sample_rate``, ``trim``, ``filters``).
        check: Apply :func:`check_speech` (stage 4 scores references without it).

    Raises:
        UnusableAudioError: unreadable, truncated, empty, silent or too short.
    """
    speech = front_end(read(path, cfg.sample_rate), cfg.sample_rate, cfg.trim, path)
    if check:
        check_speech(speech, cfg)
    return speech
