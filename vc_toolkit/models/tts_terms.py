"""Loss terms of the text-input family (``model.type: fastspeech2tts``).

As the VC terms (:mod:`vc_toolkit.models.terms`), every term is a mean over real
elements; the targets a TTS model learns from come from its own outputs, since the
durations are the aligner's:

- ``mel``, ``post_mel``: as VC (L1 before/after the postnet);
- ``duration``: MSE of the predicted ``log(d + 1)`` per token against the aligner's
  durations (MAS, or the fixed durations of the batch), which are integers and carry no
  gradient [Ren et al., "FastSpeech 2", ICLR 2021];
- ``pitch``, ``energy``: MSE against ``pitch_target``/``energy_target`` over
  ``variance_mask``: the frame targets (as VC) with ``model.variance_level: frame``, the
  token averages with ``token`` (tokens with no frame are left out);
- ``gmm``, ``global_gmm``: the prosody module's (:mod:`vc_toolkit.models.prosody`);
- ``forward_sum``: the aligner's forward-sum (CTC) loss, and ``bin``: the binarisation
  loss times its ramp (0 before ``model.aligner.bin_start_steps``) [Badlani et al., "One
  TTS Alignment To Rule Them All", ICASSP 2022]; both computed by the model's forward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vc_toolkit.models.registry import LossTerm
from vc_toolkit.models.terms import CORE_LOSS_TERMS, masked_mse


def _duration_loss(outputs: dict[str, Tensor], batch) -> Tensor:
    target = torch.log1p(outputs["duration_target"].to(outputs["log_duration"].dtype))
    return masked_mse(outputs["log_duration"], target, outputs["src_mask"])


def _pitch_loss(outputs: dict[str, Tensor], batch) -> Tensor:
    return masked_mse(outputs["pitch"], outputs["pitch_target"], outputs["variance_mask"])


def _energy_loss(outputs: dict[str, Tensor], batch) -> Tensor:
    return masked_mse(outputs["energy"], outputs["energy_target"], outputs["variance_mask"])


def _forward_sum_loss(outputs: dict[str, Tensor], batch) -> Tensor:
    return outputs["forward_sum"]


def _bin_loss(outputs: dict[str, Tensor], batch) -> Tensor:
    return outputs["bin"]


_MEL, _POST_MEL, _, _ = CORE_LOSS_TERMS
TTS_DURATION = LossTerm("duration", "duration", _duration_loss, header="dev dur")
TTS_PITCH = LossTerm("pitch", "pitch", _pitch_loss, header="dev pitch")
TTS_ENERGY = LossTerm("energy", "energy", _energy_loss, header="dev energy")
FORWARD_SUM = LossTerm("forward_sum", "forward_sum", _forward_sum_loss)
BIN = LossTerm("bin", "bin", _bin_loss)
ALIGNER_TERMS = (FORWARD_SUM, BIN)
"""The terms only the text-input family has (declared beside no registered part)."""


def tts_terms(prosody: tuple[LossTerm, ...]) -> tuple[LossTerm, ...]:
    """The terms of a TTS model whose prosody module declares ``prosody``, in order:
    ``mel``, ``post_mel``, ``duration``, ``pitch``, ``energy``, prosody, ``forward_sum``,
    ``bin``."""
    return (_MEL, _POST_MEL, TTS_DURATION, TTS_PITCH, TTS_ENERGY, *prosody, *ALIGNER_TERMS)
