"""Vocoders (log-mel → waveform), chosen by ``infer.vocoder.type`` from :data:`VOCODERS`.

Pieces for training HiFi-GAN (imported from their modules, not here):
:mod:`~vc_toolkit.vocoder.hifigan_generator` (generator, presets),
:mod:`~vc_toolkit.vocoder.discriminators` (multi-period, multi-scale),
:mod:`~vc_toolkit.vocoder.gan_losses`, :mod:`~vc_toolkit.vocoder.mel` (torch log-mel);
the training data is :mod:`vc_toolkit.data.vocoder`.
"""

from vc_toolkit.vocoder import griffin_lim, hifigan, world
from vc_toolkit.vocoder.base import VOCODERS, Vocoder, build_vocoder
from vc_toolkit.vocoder.griffin_lim import GriffinLim
from vc_toolkit.vocoder.hifigan import HiFiGAN
from vc_toolkit.vocoder.world import World

__all__ = [
    "VOCODERS",
    "GriffinLim",
    "HiFiGAN",
    "Vocoder",
    "World",
    "build_vocoder",
    "griffin_lim",
    "hifigan",
    "world",
]
