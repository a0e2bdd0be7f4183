"""Vocoders (log-mel → waveform), chosen by ``infer.vocoder.type`` from :data:`VOCODERS`."""

from vc_toolkit.vocoder import griffin_lim, hifigan
from vc_toolkit.vocoder.base import VOCODERS, Vocoder, build_vocoder
from vc_toolkit.vocoder.griffin_lim import GriffinLim
from vc_toolkit.vocoder.hifigan import HiFiGAN

__all__ = [
    "VOCODERS",
    "GriffinLim",
    "HiFiGAN",
    "Vocoder",
    "build_vocoder",
    "griffin_lim",
    "hifigan",
]
