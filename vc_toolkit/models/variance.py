"""Variance adaptor parts: predictors, value embeddings and the length regulator.

Following FastSpeech 2 [Ren et al., "FastSpeech 2: Fast and high-quality
end-to-end text to speech", ICLR 2021]: a conv-stack predictor per variance
(log-duration, pitch, energy), embeddings that add the values back into the
hidden sequence, and a length regulator that repeats each reduced source
frame by its duration. The conv pitch predictor is the registered choice
``model.pitch_predictor.type: conv`` (:class:`ConvPitchPredictor`); pitch can
instead be predicted autoregressively (``ar``, ``arnar``: see
:mod:`vc_toolkit.models.ar_pitch` and :mod:`vc_toolkit.models.arnar_pitch`).

Example:
    >>> import torch
    >>> x = torch.tensor([[[1.0], [2.0], [3.0]]])
    >>> out, lens = regulate_length(x, torch.tensor([[2, 0, 1]]))
    >>> out[0, :, 0].tolist(), lens.tolist()
    ([1.0, 1.0, 3.0], [3])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vc_toolkit.config.tag import PitchPredictor, Predictor
from vc_toolkit.models.interfaces import PitchPredictorBase
from vc_toolkit.models.layers import ConvStack, MaskedConv
from vc_toolkit.models.registry import PITCH_PREDICTORS


class VariancePredictor(nn.Module):
    """FastSpeech2 variance predictor: conv stack → linear, ``out_dim`` values per frame.

    Args:
        in_dim (int): input width (model hidden).
        cfg (Predictor): layers, channels, kernel, dropout and ``stop_gradient``
            (detach the input so the predictor's loss does not train the encoder).
        out_dim (int): values per frame (1 for duration, ``r`` for pitch/energy).
    """

    def __init__(self, in_dim: int, cfg: Predictor, out_dim: int) -> None:
        super().__init__()
        self.stop_gradient = cfg.stop_gradient
        self.convs = ConvStack(in_dim, cfg.channels, cfg.layers, cfg.kernel_size, cfg.dropout)
        self.proj = nn.Linear(cfg.channels, out_dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Predict.

        Args:
            x (Tensor): hidden sequence, (B, T, in_dim).
            mask (Tensor): real frames, (B, T) bool.

        Returns:
            Tensor: predictions, (B, T, out_dim), zero on padding.
        """
        if self.stop_gradient:
            x = x.detach()
        return self.proj(self.convs(x, mask)).masked_fill(~mask[..., None], 0.0)


@PITCH_PREDICTORS.register("conv")
class ConvPitchPredictor(PitchPredictorBase, VariancePredictor):
    """FastSpeech2 conv pitch predictor: a :class:`VariancePredictor` with ``r`` outputs.

    Parameters as :class:`VariancePredictor` (``convs``, ``proj``); no target, no segments.

    Args:
        in_dim (int): input width (model hidden).
        cfg (PitchPredictor): conv settings.
        r (int): reduction factor (pitch values per reduced frame).
    """

    def __init__(self, in_dim: int, cfg: PitchPredictor, r: int) -> None:
        VariancePredictor.__init__(self, in_dim, cfg, r)

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        target: Tensor | None = None,
        seg_ids: Tensor | None = None,
    ) -> Tensor:
        """(B, L, in_dim), mask (B, L) → pitch (B, L, r), zero on padding (target ignored)."""
        return VariancePredictor.forward(self, x, mask)

    def infer(self, x: Tensor, mask: Tensor, seg_ids: Tensor | None = None) -> Tensor:
        """As :meth:`forward`."""
        return VariancePredictor.forward(self, x, mask)


class ValueEmbedding(nn.Module):
    """Embed ``r`` values per reduced frame (pitch or energy) into the hidden size by a conv.

    Args:
        r (int): values per reduced frame (the reduction factor).
        dim (int): model hidden size.
        kernel_size (int): conv kernel (odd).
    """

    def __init__(self, r: int, dim: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = MaskedConv(r, dim, kernel_size)

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:
        """(B, T, r) values, mask (B, T) → (B, T, dim) embedding, zero on padding."""
        return self.conv(values, mask).masked_fill(~mask[..., None], 0.0)


def regulate_length(
    x: Tensor, durations: Tensor, max_len: int | None = None
) -> tuple[Tensor, Tensor]:
    """Repeat every frame of ``x`` by its duration [Ren et al. 2019, FastSpeech].

    Vectorised: output frame ``t`` copies the source frame ``i`` with
    ``cumsum(d)[i-1] <= t < cumsum(d)[i]`` (a ``searchsorted`` over the cumulative
    durations), so zero durations drop their frame.

    Args:
        x (Tensor): hidden sequence, (B, T, D).
        durations (Tensor): non-negative repeats, (B, T) long; padded frames must be 0.
        max_len (int | None): output length; ``None`` uses the longest total duration.
            Longer totals are cut, shorter ones zero-padded.

    Returns:
        tuple[Tensor, Tensor]: expanded sequence (B, max_len, D), zero beyond each
        total, and the totals clipped to ``max_len``, (B,) long.
    """
    if bool((durations < 0).any()):
        raise ValueError("durations must be >= 0; clamp predicted durations before expanding")
    ends = durations.long().cumsum(dim=1)
    totals = ends[:, -1] if ends.shape[1] else ends.new_zeros(len(ends))
    if max_len is None:
        max_len = int(totals.max()) if len(totals) else 0
    steps = torch.arange(max_len, device=x.device).expand(len(x), max_len).contiguous()
    index = torch.searchsorted(ends.contiguous(), steps, right=True).clamp(max=x.shape[1] - 1)
    out = torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))
    lengths = totals.clamp(max=max_len)
    return out.masked_fill((steps >= lengths[:, None])[..., None], 0.0), lengths
