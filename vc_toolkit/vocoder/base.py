"""Vocoders: log-mel frames → waveform, behind one small interface.

Every vocoder takes a log-mel spectrogram of the spk's analysis (magnitude
STFT, hann window of ``win_length``, ``n_fft``, ``hop_length``, centred
frames with reflect padding, Slaney mel basis from ``fmin`` to ``fmax``,
``log(max(mel, clip))`` in base e or 10) as a ``(T, n_mels)`` array and
returns ``T * hop_length`` float32 samples.

A vocoder may also take the F0 to synthesise (``uses_f0``: WORLD): per utterance a
``(T,)`` float array in Hz on the same frames, 0 on unvoiced frames. Vocoders that
do not use it (Griffin-Lim, HiFi-GAN) ignore it; one that does refuses to run without it.

Vocoders are chosen by ``infer.vocoder.type`` from :data:`VOCODERS`
(:mod:`vc_toolkit.vocoder.griffin_lim`, :mod:`vc_toolkit.vocoder.hifigan`,
:mod:`vc_toolkit.vocoder.world`); each class builds itself from the config
(:meth:`Vocoder.from_config`) and names the files a pack must carry
(:meth:`Vocoder.export`). :func:`locate` points a config at its files: a vocoder
trained by ``vc-train-vocoder`` by name (``voc:``), other paths against the recipe
root.
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
    uses_f0: ClassVar[bool] = False
    """True when the vocoder synthesises the F0 it is given (and needs it)."""

    def __call__(self, log_mel: np.ndarray, f0: np.ndarray | None = None) -> np.ndarray:
        """Synthesise one utterance.

        Args:
            log_mel (ndarray): (T, n_mels) log-mel.
            f0 (ndarray | None): (T,) F0 in Hz, 0 on unvoiced frames; needed when
                :attr:`uses_f0`, ignored otherwise.

        Returns:
            ndarray: (T * hop_length,) float32 waveform.
        """
        return self.batch([log_mel], None if f0 is None else [f0])[0]

    def batch(
        self, log_mels: Sequence[np.ndarray], f0s: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Synthesise several utterances at once; each (T_i, n_mels) → (T_i * hop_length,).

        Shorter utterances are padded to the longest, so a waveform can differ slightly
        from a single call: HiFi-GAN near its end (receptive field), Griffin-Lim throughout
        (the iterations spread the changed boundary). Each result is still deterministic.

        Args:
            log_mels: (T_i, n_mels) log-mels.
            f0s: (T_i,) F0 contours in Hz (0: unvoiced), one per log-mel; needed when
                :attr:`uses_f0`, ignored otherwise.

        Raises:
            ValueError: a malformed log-mel or F0, or no F0 for a vocoder that needs it.
        """
        mels = [self._check(m) for m in log_mels]
        contours = self._check_f0(mels, f0s) if self.uses_f0 else None
        if not mels:
            return []
        return [np.ascontiguousarray(w, dtype=np.float32) for w in self._synthesize(mels, contours)]

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

    def _check_f0(
        self, mels: list[np.ndarray], f0s: Sequence[np.ndarray] | None
    ) -> list[np.ndarray]:
        name = getattr(self, "registry_name", type(self).__name__)
        if f0s is None:
            raise ValueError(
                f"the {name} vocoder synthesises a given F0 and got none: pass f0, (T,) Hz "
                "with 0 on unvoiced frames"
            )
        if len(f0s) != len(mels):
            raise ValueError(f"{len(f0s)} F0 contours for {len(mels)} log-mels")
        out = []
        for mel, f0 in zip(mels, f0s, strict=True):
            f = np.asarray(f0, dtype=np.float64)
            if f.shape != (len(mel),):
                raise ValueError(f"F0 must have shape ({len(mel)},) like its mel, got {f.shape}")
            if not np.isfinite(f).all() or (f < 0).any():
                raise ValueError("F0 must be finite and >= 0 Hz (0 on unvoiced frames)")
            out.append(f)
        return out

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
    def _synthesize(
        self, mels: list[np.ndarray], f0s: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Checked (T_i, n_mels) float32 log-mels → (T_i * hop_length,) waveforms.

        ``f0s``: checked (T_i,) float64 F0 contours in Hz when :attr:`uses_f0`, else None.
        """


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
