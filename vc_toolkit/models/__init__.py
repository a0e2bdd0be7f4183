"""FastSpeech2-style voice-conversion model, its predictors and its loss.

Importing the package registers every choice of the model's interchangeable
parts (:mod:`vc_toolkit.models.registry`), in the order of the config's choices.
"""

# isort: split
from vc_toolkit.models import variance  # noqa: F401  (registers conv)

# isort: split
from vc_toolkit.models import ar_pitch, arnar_pitch  # noqa: F401  (registers ar, arnar)

# isort: split
from vc_toolkit.models import prosody  # noqa: F401  (registers none, gmm)

# isort: split
from vc_toolkit.models.fastspeech2vc import FastSpeech2VC, build_model
from vc_toolkit.models.loss import VCLoss
from vc_toolkit.models.registry import (
    PITCH_PREDICTORS,
    PROSODY,
    LossTerm,
    Registry,
    all_loss_names,
    describe,
    loss_names,
    loss_sources,
    loss_terms,
)

__all__ = [
    "PITCH_PREDICTORS",
    "PROSODY",
    "FastSpeech2VC",
    "LossTerm",
    "Registry",
    "VCLoss",
    "all_loss_names",
    "build_model",
    "describe",
    "loss_names",
    "loss_sources",
    "loss_terms",
]
