"""Waveform / log-mel pairs for training a vocoder, and hop-exact random segments.

A *pair* is a dict of float32 arrays ``audio`` (N,) and ``mel`` (T, n_mels), where mel
frame ``t`` is centred on sample ``t * hop`` (:mod:`vc_toolkit.features.spectral`), so
frames ``[s, s + L)`` go with samples ``[s * hop, (s + L) * hop)``. Pairs come from:

* :func:`make_pair`: a recording through the audio front-end and the stage-1 log-mel,
  i.e. the (denormalised) features the acoustic model learns to predict;
* :func:`gt_aligned_pair`: a teacher-forced mel from the acoustic model with its target
  audio, to fine-tune the vocoder on predicted features [Kong et al., "HiFi-GAN",
  NeurIPS 2020, Sec. 4.4].

Both fit the audio to exactly ``T * hop`` samples (:func:`fit_audio`). Cached one per
utterance as ``.npz`` (:func:`save_pair`), they are read by :class:`VocoderPairs`, which
cuts one random segment per item: hop-exact, and a pure function of ``(seed, epoch,
index)``, so a resumed run sees the same segments. :func:`collate_segments` stacks
them into a :class:`VocoderBatch`.

Example:
    >>> hop = 4
    >>> pair = gt_aligned_pair(np.zeros((5, 2)), np.arange(18.0), hop)
    >>> pair["mel"].shape, pair["audio"].shape, pair["audio"][-3:].tolist()
    ((5, 2), (20,), [17.0, 0.0, 0.0])
    >>> mel, audio = segment(pair["mel"], pair["audio"], hop, start=1, frames=2)
    >>> mel.shape, audio.tolist()
    ((2, 2), [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vc_toolkit.config.spk import Mel, SpkConfig
from vc_toolkit.features import extract, frontend, spectral

MAX_EXTRA_FRAMES = 8
"""Audio may exceed ``T * hop`` by this many frames (frames cut to a multiple of the
reduction factor); more, or less than ``(T - 1) * hop`` samples, means it does not
belong to the mel (wrong hop or wrong file)."""


def fit_audio(audio: np.ndarray, n_frames: int, hop: int) -> np.ndarray:
    """Cut or zero-pad ``audio`` to exactly ``n_frames * hop`` samples.

    Args:
        audio: (N,) samples.
        n_frames: Mel frames T.
        hop: Samples per frame.

    Returns:
        (T * hop,) float32.

    Raises:
        ValueError: ``audio`` has fewer than ``(T - 1) * hop`` or more than
            ``(T + MAX_EXTRA_FRAMES) * hop`` samples (it cannot be this mel's audio).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (N,), got shape {audio.shape}")
    n, want = len(audio), n_frames * hop
    if n < want - hop or n > want + MAX_EXTRA_FRAMES * hop:
        raise ValueError(
            f"audio of {n} samples does not fit {n_frames} frames of hop {hop} "
            f"(expected about {want}); wrong hop or mismatched files?"
        )
    if n >= want:
        return np.ascontiguousarray(audio[:want])
    return np.concatenate([audio, np.zeros(want - n, np.float32)])


def _check_mel(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or len(mel) == 0:
        raise ValueError(f"mel must be (T, n_mels) with T >= 1, got shape {mel.shape}")
    return mel


def make_pair(path: str | Path, spk_cfg: SpkConfig, reduction_cut: bool = False) -> dict:
    """One training pair from a recording, as the acoustic-model features are made.

    The recording goes through :func:`vc_toolkit.features.frontend.load_speech` (load,
    resample, trim, zero internal silences when configured, length checks), then
    :func:`vc_toolkit.features.extract.mel_energy` on ``T`` frames.

    Args:
        path: Audio file.
        spk_cfg: The spk config (sample rate, trim, filters, ``feats.mel``).
        reduction_cut: Cut ``T`` to a multiple of ``reduction_factor`` as stage 1 does;
            False: every STFT frame, ``T = 1 + N // hop``.

    Returns:
        ``{"audio": (T * hop,) float32, "mel": (T, n_mels) float32}`` (raw log-mel, not
        normalised).

    Raises:
        UnusableAudioError: the file gives no usable speech.
    """
    speech = frontend.load_speech(path, spk_cfg)
    hop = spk_cfg.feats.mel.hop_length
    if reduction_cut:
        n_frames = frontend.num_frames(speech, spk_cfg)
    else:
        n_frames = spectral.num_frames(len(speech.samples), hop)
    mel, _ = extract.mel_energy(speech, spk_cfg, n_frames)
    return {"audio": fit_audio(speech.samples, n_frames, hop), "mel": _check_mel(mel)}


def gt_aligned_pair(mel: np.ndarray, audio: np.ndarray, hop: int) -> dict:
    """A teacher-forced mel (the fine-tuning input) with its target audio.

    Args:
        mel: Log-mel the acoustic model predicted with ground-truth durations/targets,
            (T, n_mels), denormalised (the spk's raw log-mel scale).
        audio: The target utterance's front-end samples, (N,).
        hop: Samples per frame.

    Returns:
        ``{"audio": (T * hop,) float32, "mel": (T, n_mels) float32}``, the audio cut or
        zero-padded (:func:`fit_audio`).
    """
    mel = _check_mel(mel)
    return {"audio": fit_audio(audio, len(mel), hop), "mel": mel}


def save_pair(path: str | Path, pair: dict) -> None:
    """Write a pair (and any extra entries) as an uncompressed ``.npz``, atomically."""
    _check_mel(pair["mel"])
    extract.save_raw(path, pair)


def load_pair(path: str | Path) -> dict:
    """Read a pair written by :func:`save_pair`: ``audio`` (N,) and ``mel`` (T, n_mels).

    Raises:
        ValueError: unreadable file, or no ``audio`` / ``mel`` in it.
    """
    raw = extract.load_raw(path)
    missing = [k for k in ("audio", "mel") if k not in raw]
    if missing:
        raise ValueError(f"{path}: not a vocoder pair, lacks {missing}")
    return {"audio": np.asarray(raw["audio"], np.float32), "mel": _check_mel(raw["mel"])}


def mel_floor(mel_cfg: Mel) -> float:
    """The log-mel of silence, ``log(max(clip, tiny))``: padding that means "no sound"."""
    return float(spectral.to_log(np.float32(0.0), mel_cfg))


def segment(
    mel: np.ndarray,
    audio: np.ndarray,
    hop: int,
    start: int,
    frames: int,
    mel_pad: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mel frames ``[start, start + frames)`` and their samples ``[start * hop, (start +
    frames) * hop)``.

    The audio is first fitted to ``T * hop`` (:func:`fit_audio`); past the end, the mel
    is padded with ``mel_pad`` and the audio with zeros.

    Args:
        mel: (T, n_mels).
        audio: (N,), about ``T * hop`` samples.
        hop: Samples per frame.
        start: First frame, >= 0.
        frames: Segment length L in frames.
        mel_pad: Mel padding value; None: the utterance's minimum.

    Returns:
        Mel (L, n_mels) and audio (L * hop,), float32.
    """
    mel = _check_mel(mel)
    audio = fit_audio(audio, len(mel), hop)
    if start < 0 or frames < 1:
        raise ValueError(f"segment start {start} must be >= 0 and frames {frames} >= 1")
    mel_seg = mel[start : start + frames]
    audio_seg = audio[start * hop : (start + frames) * hop]
    short = frames - len(mel_seg)
    if short:
        pad = float(mel.min()) if mel_pad is None else float(mel_pad)
        mel_seg = np.concatenate([mel_seg, np.full((short, mel.shape[1]), pad, np.float32)])
        audio_seg = np.concatenate([audio_seg, np.zeros(frames * hop - len(audio_seg), "f4")])
    return np.ascontiguousarray(mel_seg), np.ascontiguousarray(audio_seg)


class VocoderPairs(Dataset):
    """Cached pairs (``.npz`` with ``audio`` and ``mel``), one random segment per item.

    Item ``i`` of epoch ``e`` takes frames ``[s, s + L)`` with ``s`` uniform in
    ``[0, T - L]`` drawn from ``np.random.default_rng([seed, e, i])``: the same segment
    whatever the worker, batch order or resume point. Call :meth:`set_epoch` before each
    epoch's data loader is iterated (workers copy the dataset when iteration starts).

    Args:
        paths: Pair files, one per utterance (the stem is the utterance id).
        hop_length: Samples per frame.
        segment_frames: Segment length L in frames; None: whole utterances (validation).
        seed: Base seed.
        mel_pad: Mel value padding utterances shorter than L (e.g. :func:`mel_floor`);
            None: each utterance's minimum.
        preload: Read every file once, up front, and keep the pairs in memory.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        hop_length: int,
        segment_frames: int | None,
        seed: int = 0,
        mel_pad: float | None = None,
        preload: bool = False,
    ) -> None:
        if segment_frames is not None and segment_frames < 1:
            raise ValueError(f"segment_frames must be >= 1 or None, got {segment_frames}")
        self.paths = [Path(p) for p in paths]
        self.hop_length = hop_length
        self.segment_frames = segment_frames
        self.seed = seed
        self.mel_pad = mel_pad
        self.epoch = 0
        self._cache = [load_pair(p) for p in self.paths] if preload else None

    def set_epoch(self, epoch: int) -> None:
        """Draw the segments of ``epoch`` from now on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def start(self, index: int, n_frames: int) -> int:
        """First frame of item ``index`` (with T = ``n_frames``) in the current epoch."""
        if self.segment_frames is None or n_frames <= self.segment_frames:
            return 0
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(0, n_frames - self.segment_frames + 1))

    def __getitem__(self, index: int) -> dict:
        """``{"utt_id": str, "mel": (L, n_mels), "audio": (L * hop,), "start": int}``."""
        pair = self._cache[index] if self._cache is not None else load_pair(self.paths[index])
        mel, audio = pair["mel"], pair["audio"]
        frames = self.segment_frames or len(mel)
        start = self.start(index, len(mel))
        mel, audio = segment(mel, audio, self.hop_length, start, frames, self.mel_pad)
        return {"utt_id": self.paths[index].stem, "mel": mel, "audio": audio, "start": start}


@dataclass
class VocoderBatch:
    """Segments stacked for the vocoder.

    Attributes:
        utt_ids (list[str]): Utterance ids, length B.
        mel (Tensor): Log-mel segments, (B, L, n_mels) (the generator takes
            ``mel.transpose(1, 2)``).
        audio (Tensor): Their samples, (B, L * hop).
        starts (Tensor): First frame of each segment, (B,) long.
    """

    utt_ids: list[str]
    mel: Tensor
    audio: Tensor
    starts: Tensor

    def to(self, device: torch.device | str) -> VocoderBatch:
        """Move the tensors to ``device``."""
        return VocoderBatch(
            self.utt_ids,
            self.mel.to(device, non_blocking=True),
            self.audio.to(device, non_blocking=True),
            self.starts.to(device, non_blocking=True),
        )

    def __len__(self) -> int:
        return len(self.utt_ids)


def collate_segments(items: list[dict]) -> VocoderBatch:
    """Stack :class:`VocoderPairs` items of one segment length into a :class:`VocoderBatch`.

    Raises:
        ValueError: the items differ in length (whole utterances: use batch size 1).
    """
    shapes = {it["mel"].shape for it in items}
    if len(shapes) != 1:
        raise ValueError(
            f"segments differ in shape {sorted(shapes)}; whole-utterance items need batch size 1"
        )
    return VocoderBatch(
        utt_ids=[it["utt_id"] for it in items],
        mel=torch.from_numpy(np.stack([it["mel"] for it in items])),
        audio=torch.from_numpy(np.stack([it["audio"] for it in items])),
        starts=torch.tensor([it["start"] for it in items], dtype=torch.long),
    )
