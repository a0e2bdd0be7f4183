"""FastSpeech2-style models (voice conversion and text-to-speech), their parts and loss.

Importing the package imports every module in it, so each registered choice of
the model's interchangeable parts (the ``@PITCH_PREDICTORS.register``,
``@PROSODY.register`` and ``@CONDITIONING.register`` decorators,
:mod:`vc_toolkit.models.registry`) is known
without a list to keep: a new predictor module needs no import line.
"""

import importlib
import pkgutil

from vc_toolkit.models.fastspeech2vc import FastSpeech2VC, build_model
from vc_toolkit.models.loss import (
    VCLoss,
    all_loss_names,
    all_loss_terms,
    describe,
    loss_names,
    loss_slots,
    loss_sources,
    loss_terms,
)
from vc_toolkit.models.registry import (
    CONDITIONING,
    MODEL_FAMILIES,
    PITCH_PREDICTORS,
    PROSODY,
    LossTerm,
    Registry,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
del _module

__all__ = [
    "CONDITIONING",
    "MODEL_FAMILIES",
    "PITCH_PREDICTORS",
    "PROSODY",
    "FastSpeech2VC",
    "LossTerm",
    "Registry",
    "VCLoss",
    "all_loss_names",
    "all_loss_terms",
    "build_model",
    "describe",
    "loss_names",
    "loss_slots",
    "loss_sources",
    "loss_terms",
]
