"""Vocoders: log-mel frames → waveform, behind one small interface.

Every vocoder takes a log-mel spectrogram of the spk's analysis (magnitude
STFT, hann window of ``win_length``, ``n_fft``, ``hop_length``, centred
frames with reflect padding, Slaney mel basis from ``fmin`` to ``fmax``,
``log(max(mel, clip))`` in base e or 10) as a ``(T, n_mels)`` array and
returns ``T * hop_length`` float32 samples.

Vocoders are chosen by ``infer.vocoder.type`` from :data:`VOCODERS`
(:mod:`vc_toolkit.vocoder.griffin_lim`, :mod:`vc_toolkit.vocoder.hifigan`); each
class builds itself from the config (:meth:`Vocoder.from_config`) and names the
files a pack must carry (:meth:`Vocoder.export`). :func:`locate` points a config at
its files: a vocoder trained by ``vc-train-vocoder`` by name (``voc:``), other paths
against the recipe root.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.paths import Layout
from vc_toolkit.registry import Registry

VOCODERS: Registry = Registry("infer.vocoder")
"""Vocoder classes by ``infer.vocoder.type``."""


class Vocoder(ABC):
    """Log-mel → waveform.

    Attributes:
        sample_rate (int): Output sample rate, Hz.
        hop_length (int): Output samples per input frame.
        n_mels (int): Mel bins of the input.
    """

    sample_rate: int
    hop_length: int
    n_mels: int
    required: ClassVar[dict[str, str]] = {}
    """``infer.vocoder`` keys this vocoder cannot do without, with what they hold."""

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """log_mel (ndarray): (T, n_mels) → waveform, (T * hop_length,) float32."""
        return self.batch([log_mel])[0]

    def batch(self, log_mels: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Synthesise several utterances at once; each (T_i, n_mels) → (T_i * hop_length,).

        Shorter utterances are padded to the longest, so a waveform can differ slightly
        from a single call: HiFi-GAN near its end (receptive field), Griffin-Lim throughout
        (the iterations spread the changed boundary). Each result is still deterministic.
        """
        mels = [self._check(m) for m in log_mels]
        if not mels:
            return []
        return [np.ascontiguousarray(w, dtype=np.float32) for w in self._synthesize(mels)]

    def _check(self, log_mel: np.ndarray) -> np.ndarray:
        x = np.asarray(log_mel, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_mels or x.shape[0] == 0:
            raise ValueError(
                f"vocoder input must be a log-mel of shape (T, {self.n_mels}) with T >= 1, "
                f"got {x.shape}"
                + (" (transposed?)" if x.ndim == 2 and x.shape[0] == self.n_mels else "")
            )
        if not np.isfinite(x).all():
            raise ValueError("vocoder input has NaN or inf values; check the model output")
        return x

    @classmethod
    @abstractmethod
    def from_config(
        cls, cfg: VocoderConfig, spk: SpkConfig, device: str | torch.device = "cpu"
    ) -> Vocoder:
        """Build the vocoder ``cfg`` (``infer.vocoder``) describes for the spk's features."""

    @classmethod
    def export(cls, cfg: VocoderConfig, folder: Path, copy: bool = True) -> dict[str, str]:
        """Put what this vocoder loads into ``folder`` (a pack's ``vocoder/``).

        Args:
            cfg: The (located) ``infer.vocoder`` block.
            folder: Where its files go (created when there are files).
            copy: False: reference the files where they are (absolute paths) instead.

        Returns:
            The ``infer.vocoder`` keys to change, paths relative to ``folder``'s parent.
            Default: nothing (the vocoder needs no file).
        """
        return {}

    @abstractmethod
    def _synthesize(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """Checked (T_i, n_mels) float32 log-mels → (T_i * hop_length,) waveforms."""


def pad_stack(mels: list[np.ndarray], value: float) -> np.ndarray:
    """(T_i, D) arrays → (B, max T, D), padded with ``value``."""
    t_max = max(len(m) for m in mels)
    out = np.full((len(mels), t_max, mels[0].shape[1]), value, dtype=np.float32)
    for i, m in enumerate(mels):
        out[i, : len(m)] = m
    return out


FILE_KEYS = ("checkpoint", "config")
"""Keys of ``infer.vocoder`` that name files (resolved against the recipe root or a pack)."""


def resolve_files(cfg: VocoderConfig, resolve: Callable[[str], Path]) -> None:
    """Replace every set file key of ``cfg`` (:data:`FILE_KEYS`) by ``str(resolve(value))``."""
    for key in FILE_KEYS:
        value = getattr(cfg, key)
        if value:
            setattr(cfg, key, str(resolve(value)))


def locate(cfg: VocoderConfig, layout: Layout) -> None:
    """Point ``cfg`` at its files, in place: a named ``voc`` at its generator file
    (``exp/voc/<voc>/generator/<checkpoint or best>.pt``, whose ``config.json`` lies
    beside it), relative paths at the recipe root.

    Example:
        >>> cfg = VocoderConfig(type="hifigan", voc="v1demo")
        >>> locate(cfg, Layout(Path("/r")))
        >>> cfg.checkpoint, cfg.voc
        ('/r/exp/voc/v1demo/generator/best.pt', None)
    """
    if cfg.voc:
        name = cfg.checkpoint or "best"
        cfg.checkpoint = str(layout.voc_exp(cfg.voc) / "generator" / f"{name}.pt")
        cfg.config, cfg.voc = None, None
    resolve_files(cfg, layout.resolve)


def build_vocoder(
    cfg: VocoderConfig, spk: SpkConfig, device: str | torch.device = "cpu"
) -> Vocoder:
    """The vocoder ``infer.vocoder`` asks for, matched to the spk's features.

    Args:
        cfg: ``infer.vocoder`` of the tag config.
        spk: The dataset version whose log-mels are vocoded.
        device: Where it runs.

    Raises:
        ConfigError: unknown ``infer.vocoder.type``.
        UserError: the vocoder's files are missing or do not fit the spk.
    """
    return VOCODERS.get(cfg.type).from_config(cfg, spk, device)
