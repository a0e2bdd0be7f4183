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

import os
import struct
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf
import soxr


class AudioError(ValueError):
    """A file that yields no usable audio.

    Attributes:
        reason (str): ``"unreadable"`` (missing, not audio, corrupt header, non-finite
            samples), ``"truncated"`` (the header declares more audio than the file
            holds: a copy or download cut short) or ``"empty"`` (decodes to zero samples).
        path (str): the offending file.
    """

    def __init__(
        self, reason: Literal["unreadable", "truncated", "empty"], path: str | Path, detail: str
    ):
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
            NaN/inf samples, ``reason="truncated"`` if it holds less audio than its header
            declares (see :func:`truncation`), ``reason="empty"`` if it holds no samples.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            declared, rate = f.frames, f.samplerate
            data = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as err:
        raise AudioError("unreadable", path, f"cannot decode audio ({_first_line(err)})") from None
    cut = truncation(path, rate)
    if cut is None and len(data) < declared:  # a compressed stream that ends early
        cut = _cut_detail(declared, len(data), rate)
    if cut is not None:
        raise AudioError("truncated", path, cut)
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


def truncation(path: str | Path, sample_rate: int) -> str | None:
    """Why a WAV/AIFF file is cut short, or None when its audio data is complete.

    libsndfile reads a file whose data ends before the length its header declares as
    a shorter file, without complaint. This compares the size of the data chunk
    (``data`` of RIFF/RIFX/RF64 WAV, ``SSND`` of AIFF/AIFC) with the bytes that follow
    it on disk. Sizes left unknown by a streaming writer (0 or 0xFFFFFFFF) and other
    formats are not judged (None).

    Args:
        path: The audio file.
        sample_rate: Its rate, Hz (for the message).

    Returns:
        A one-line detail naming the declared and the present frames, or None.
    """
    try:
        with open(path, "rb") as f:
            found = _data_chunk(f, os.fstat(f.fileno()).st_size)
    except (OSError, struct.error):
        return None
    if found is None:
        return None
    declared, present, block = found
    if declared in _UNKNOWN_SIZES or present // block >= declared // block:
        return None
    return _cut_detail(declared // block, present // block, sample_rate)


_UNKNOWN_SIZES = (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
_CONTAINERS = {b"RIFF": "<", b"RF64": "<", b"BW64": "<", b"RIFX": ">", b"FORM": ">"}


def _data_chunk(f: BinaryIO, size: int) -> tuple[int, int, int] | None:
    """``(declared data bytes, data bytes present, bytes per frame)`` of a WAV/AIFF file."""
    head = f.read(12)
    endian = _CONTAINERS.get(head[:4])
    if endian is None or len(head) < 12:
        return None
    block, data64, pos = 1, None, 12
    while pos + 8 <= size:
        f.seek(pos)
        cid, csize = f.read(4), struct.unpack(endian + "I", f.read(4))[0]
        body = pos + 8
        if cid == b"fmt ":
            f.seek(body + 12)
            block = max(1, struct.unpack(endian + "H", f.read(2))[0])
        elif cid == b"COMM":
            channels, _, bits = struct.unpack(">hIh", f.read(8))
            block = max(1, channels * ((bits + 7) // 8))
        elif cid == b"ds64":
            data64 = struct.unpack("<QQ", f.read(16))[1]
        elif cid == b"data":
            declared = data64 if csize == 0xFFFFFFFF and data64 is not None else csize
            return declared, size - body, block
        elif cid == b"SSND":
            return csize - 8, size - body - 8, block
        pos = body + csize + (csize & 1)
    return None


def _cut_detail(declared: int, present: int, sample_rate: int) -> str:
    return (
        f"truncated: the header declares {declared} frames ({declared / sample_rate:.2f} s) "
        f"but the file holds {present} ({present / sample_rate:.2f} s); it was cut short"
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
