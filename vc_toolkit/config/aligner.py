"""Schema of the learned aligner block (``model.aligner`` of a text-input tag).

The aligner learns a soft text-to-mel alignment with the forward-sum loss and turns it
into integer durations with monotonic alignment search (Badlani et al., "One TTS Alignment
To Rule Them All", ICASSP 2022); see :mod:`vc_toolkit.models.aligner`.

Example:
    >>> from vc_toolkit.config.core import build
    >>> cfg = build(Aligner, {"hidden": 64, "bin_start_steps": 100})
    >>> cfg.type, cfg.hidden, cfg.prior
    ('conv', 64, True)
    >>> cfg.bin_scale(99), cfg.bin_scale(100), cfg.bin_scale(100 + cfg.bin_warmup_steps)
    (0.0, 0.005, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vc_toolkit.config.core import opt


@dataclass(kw_only=True)
class Aligner:
    """Learned text-to-mel aligner: conv encoders, forward-sum loss, hard durations by MAS.

    The soft alignment of frame t over the tokens is
    ``softmax_n(-temperature * |mel_enc(t) - text_enc(n)|^2 + log prior(t, n))``.
    """

    type: Literal["conv"] = opt(
        "conv", "aligner choice: conv (conv text and mel encoders, L2 distance attention)"
    )
    hidden: int = opt(128, "width of the text and mel encoders (the attention space)", min=1)
    text_kernel: int = opt(3, "conv kernel of the text encoder (odd)", min=1)
    mel_kernel: int = opt(3, "conv kernel of the mel encoder (odd)", min=1)
    temperature: float = opt(
        0.0005, "attention logits = -temperature * squared L2 distance (> 0)", min=0
    )
    prior: bool = opt(True, "add the beta-binomial alignment prior (favours the diagonal)")
    prior_scaling: float = opt(
        1.0, "beta-binomial prior omega: larger is narrower (alpha = omega t, beta = omega (T-t+1))"
    )
    blank_logprob: float = opt(
        -1.0, "log-score of the blank symbol in the forward-sum (CTC) loss", max=0
    )
    bin_start_steps: int = opt(300, "training step at which the binarisation loss starts", min=0)
    bin_warmup_steps: int = opt(
        200, "steps over which the binarisation loss weight ramps from 0 to 1 (0: at once)", min=0
    )

    def validate(self) -> None:
        for key in ("text_kernel", "mel_kernel"):
            value = getattr(self, key)
            if value % 2 == 0:
                raise ValueError(
                    f"model.aligner.{key} must be odd ('same' padding), got {value}; "
                    f"use {value + 1}"
                )
        if not self.temperature > 0:
            raise ValueError(
                f"model.aligner.temperature must be > 0, got {self.temperature}; try 0.0005"
            )
        if not self.prior_scaling > 0:
            raise ValueError(
                f"model.aligner.prior_scaling must be > 0, got {self.prior_scaling}; try 1.0"
            )

    def bin_scale(self, step: int) -> float:
        """Factor on the binarisation loss at training step ``step``, in [0, 1].

        0 before ``bin_start_steps``, then a linear ramp reaching 1 after
        ``bin_warmup_steps`` more steps (at once when ``bin_warmup_steps`` is 0).
        """
        if step < self.bin_start_steps:
            return 0.0
        if self.bin_warmup_steps == 0:
            return 1.0
        return min(1.0, (step - self.bin_start_steps + 1) / self.bin_warmup_steps)
