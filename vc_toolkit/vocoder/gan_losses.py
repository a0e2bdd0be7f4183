"""HiFi-GAN training losses [Kong et al., "HiFi-GAN: Generative adversarial networks for
efficient and high fidelity speech synthesis", NeurIPS 2020, Sec. 2.3].

With ``x`` the real waveform, ``s`` its mel, ``G(s)`` the generated waveform and ``D_k``
the ``K`` sub-discriminators (:mod:`vc_toolkit.vocoder.discriminators`):

* least-squares GAN [Mao et al., ICCV 2017], discriminator:
  ``sum_k mean((D_k(x) - 1)^2) + mean(D_k(G(s))^2)``  (:func:`discriminator_loss`);
* least-squares GAN, generator: ``sum_k mean((D_k(G(s)) - 1)^2)``
  (:func:`generator_adversarial_loss`);
* feature matching [Larsen et al., ICML 2016]: ``sum_k sum_l mean|F_kl(x) - F_kl(G(s))|``
  over every intermediate feature map ``l`` of every sub-discriminator
  (:func:`feature_matching_loss`);
* mel-spectrogram L1: ``mean|phi(x) - phi(G(s))|`` with ``phi`` the log-mel
  (:func:`mel_l1_loss`; compute both with :class:`vc_toolkit.vocoder.mel.LogMel`).

The paper's generator objective is ``L_adv + LAMBDA_FM * L_fm + LAMBDA_MEL * L_mel``
(:data:`LAMBDA_FM` = 2, :data:`LAMBDA_MEL` = 45, natural-log mel); the single losses
leave the weighting to the caller, :func:`generator_loss` applies it.

Example:
    >>> import torch
    >>> float(discriminator_loss([torch.ones(2, 3)], [torch.zeros(2, 3)]))
    0.0
    >>> float(generator_adversarial_loss([torch.zeros(2, 3), torch.ones(1, 4)]))
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

LAMBDA_FM = 2.0
"""The paper's weight of the feature-matching loss."""
LAMBDA_MEL = 45.0
"""The paper's weight of the mel L1 loss (natural-log mel)."""


def _check_pairs(real: Sequence, fake: Sequence, what: str) -> None:
    if len(real) != len(fake) or not real:
        raise ValueError(
            f"{what}: {len(real)} real and {len(fake)} generated entries (need the same, >= 1)"
        )


def discriminator_loss(real_logits: Sequence[Tensor], fake_logits: Sequence[Tensor]) -> Tensor:
    """Least-squares discriminator loss, summed over sub-discriminators.

    Args:
        real_logits: Per sub-discriminator ``D_k(x)``, any shape (e.g. (B, L_k)).
        fake_logits: Per sub-discriminator ``D_k(G(s))`` (detach ``G(s)`` first), same shapes.

    Returns:
        ``sum_k mean((D_k(x) - 1)^2) + mean(D_k(G(s))^2)``, a scalar.
    """
    _check_pairs(real_logits, fake_logits, "discriminator_loss")
    terms = [torch.mean((r - 1) ** 2) + torch.mean(f**2) for r, f in zip(real_logits, fake_logits)]
    return torch.stack(terms).sum()


def generator_adversarial_loss(fake_logits: Sequence[Tensor]) -> Tensor:
    """Least-squares generator loss, summed over sub-discriminators.

    Args:
        fake_logits: Per sub-discriminator ``D_k(G(s))``, any shape.

    Returns:
        ``sum_k mean((D_k(G(s)) - 1)^2)``, a scalar.
    """
    if not fake_logits:
        raise ValueError("generator_adversarial_loss: no logits")
    return torch.stack([torch.mean((f - 1) ** 2) for f in fake_logits]).sum()


def feature_matching_loss(
    real_feats: Sequence[Sequence[Tensor]], fake_feats: Sequence[Sequence[Tensor]]
) -> Tensor:
    """L1 distance of discriminator feature maps, summed over maps and sub-discriminators.

    The real maps are targets: they are detached, so no gradient reaches the
    discriminator through this loss.

    Args:
        real_feats: Per sub-discriminator, its feature maps ``F_kl(x)``.
        fake_feats: The same for ``G(s)``, same shapes.

    Returns:
        ``sum_k sum_l mean|F_kl(x) - F_kl(G(s))|``, a scalar (unweighted).
    """
    _check_pairs(real_feats, fake_feats, "feature_matching_loss")
    terms = []
    for real, fake in zip(real_feats, fake_feats):
        _check_pairs(real, fake, "feature_matching_loss feature maps")
        terms += [torch.mean(torch.abs(r.detach() - f)) for r, f in zip(real, fake)]
    return torch.stack(terms).sum()


def mel_l1_loss(target: Tensor, generated: Tensor) -> Tensor:
    """Mean absolute difference of two log-mels of the same shape.

    Args:
        target: Log-mel of the real waveform, e.g. (B, T, n_mels).
        generated: Log-mel of the generated waveform, same shape.

    Returns:
        ``mean|target - generated|``, a scalar.
    """
    if target.shape != generated.shape:
        raise ValueError(
            f"mel_l1_loss: target {tuple(target.shape)} and generated "
            f"{tuple(generated.shape)} differ"
        )
    return F.l1_loss(generated, target.detach())


def generator_loss(
    fake_logits: Sequence[Tensor],
    real_feats: Sequence[Sequence[Tensor]],
    fake_feats: Sequence[Sequence[Tensor]],
    mel_target: Tensor,
    mel_generated: Tensor,
    lambda_fm: float = LAMBDA_FM,
    lambda_mel: float = LAMBDA_MEL,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The paper's generator objective ``L_adv + lambda_fm L_fm + lambda_mel L_mel``.

    Args:
        fake_logits: ``D_k(G(s))`` per sub-discriminator.
        real_feats: Feature maps of ``D_k(x)``.
        fake_feats: Feature maps of ``D_k(G(s))``.
        mel_target: Log-mel of ``x``, (B, T, n_mels).
        mel_generated: Log-mel of ``G(s)``, same shape.
        lambda_fm: Feature-matching weight.
        lambda_mel: Mel weight (45 for a natural-log mel; scale it for another base).

    Returns:
        The total, a scalar, and the unweighted terms ``{"adv", "fm", "mel"}`` (scalars,
        for logging).
    """
    terms = {
        "adv": generator_adversarial_loss(fake_logits),
        "fm": feature_matching_loss(real_feats, fake_feats),
        "mel": mel_l1_loss(mel_target, mel_generated),
    }
    total = terms["adv"] + lambda_fm * terms["fm"] + lambda_mel * terms["mel"]
    return total, terms
