"""FastSpeech2-style voice-conversion model, its predictors and its loss."""

from vc_toolkit.models.fastspeech2vc import FastSpeech2VC, build_model
from vc_toolkit.models.loss import VCLoss

__all__ = ["FastSpeech2VC", "VCLoss", "build_model"]
