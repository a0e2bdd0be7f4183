"""Reading audio files: any WAV (or other libsndfile format) → mono float32 at one rate.

Integer PCM is scaled by its full-scale value (16-bit: 1 / 32768), so sample
values mean the same as pydub's ``max_possible_amplitude`` convention and dBFS
thresholds carry over. Multi-channel audio is averaged to mono; a different
sample rate is converted with soxr (``quality="HQ"``).

Example:
    >>> import tempfile, pathlib, soundfile as sf
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.wav"
    >>> sf.write(path, np.full((800, 2), 0.5, "float32"), 8000, subtype="PCM_16")
    >>> x = load_audio(path, 16000)
    >>> x.dtype, x.shape, round(float(x[800]), 3)
    (dtype('float32'), (1600,), 0.5)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr


class AudioError(ValueError):
    """A file that yields no usable audio.

    Attributes:
        reason (str): ``"unreadable"`` (missing, not audio, corrupt header, non-finite
            samples) or ``"empty"`` (decodes to zero samples).
        path (str): the offending file.
    """

    def __init__(self, reason: Literal["unreadable", "empty"], path: str | Path, detail: str):
        self.reason = reason
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{path}: {detail}")


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read an audio file as mono float32 in [-1, 1] at ``sample_rate``.

    Args:
        path: Audio file (16/24/32-bit integer or float WAV, FLAC, ...; any rate/channels).
        sample_rate: Output rate, Hz.

    Returns:
        (N,) float32 samples. Float files are clipped to [-1, 1].

    Raises:
        AudioError: ``reason="unreadable"`` if the file cannot be decoded or holds
            NaN/inf samples, ``reason="empty"`` if it holds no samples.
    """
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as err:
        raise AudioError("unreadable", path, f"cannot decode audio ({_first_line(err)})") from None
    if data.size == 0:
        raise AudioError("empty", path, "file holds no audio samples")
    x = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    if not np.isfinite(x).all():
        raise AudioError("unreadable", path, "audio contains NaN or infinite samples")
    if rate != sample_rate:
        x = soxr.resample(x, rate, sample_rate, quality="HQ")
        if x.size == 0:
            raise AudioError("empty", path, f"no samples left after resampling to {sample_rate} Hz")
    x = np.clip(x, -1.0, 1.0, out=np.ascontiguousarray(x, dtype=np.float32))
    return x


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
