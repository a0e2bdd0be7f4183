"""Conformer and Transformer block stacks with padding masks.

A :class:`BlockStack` is the encoder or the decoder, built from a
:class:`~vc_toolkit.config.tag.Stack` config. Padded frames are zeroed after
every block and masked out of every attention, so they never influence real
frames.

Example:
    >>> import torch
    >>> from vc_toolkit.config.tag import Stack
    >>> stack = BlockStack(Stack(layers=1, heads=2, kernel_size=3), dim=8)
    >>> x, lens = torch.randn(2, 5, 8), torch.tensor([5, 3])
    >>> from vc_toolkit.models.frames import lengths_to_mask
    >>> y = stack(x, lengths_to_mask(lens))
    >>> y.shape, bool(y[1, 3:].abs().sum() == 0)
    (torch.Size([2, 5, 8]), True)
"""

from __future__ import annotations

from torch import Tensor, nn

from vc_toolkit.config.tag import Stack
from vc_toolkit.models.layers import (
    ConvModule,
    FeedForward,
    RelPositionAttention,
    SelfAttention,
    absolute_positions,
    relative_positions,
)


def _attention(dim: int, cfg: Stack) -> SelfAttention:
    cls = RelPositionAttention if cfg.pos_enc == "rel" else SelfAttention
    return cls(dim, cfg.heads, cfg.attn_dropout)


class ConformerBlock(nn.Module):
    """Conformer block [Gulati et al., "Conformer", Interspeech 2020].

    ``x + ½FFN → x + MHSA → x + Conv → x + ½FFN → LayerNorm`` (macaron); without macaron,
    the first feed-forward module is dropped and the second gets a full step.

    Args:
        dim (int): model width.
        cfg (Stack): block settings.
    """

    def __init__(self, dim: int, cfg: Stack) -> None:
        super().__init__()
        self.ff_in = FeedForward(dim, cfg.ff_expansion, cfg.dropout) if cfg.macaron else None
        self.ff_scale = 0.5 if cfg.macaron else 1.0
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = _attention(dim, cfg)
        self.conv = ConvModule(dim, cfg.kernel_size, cfg.dropout)
        self.ff_out = FeedForward(dim, cfg.ff_expansion, cfg.dropout)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor, pos: Tensor | None) -> Tensor:
        """(B, T, dim), mask (B, T), relative positions or None → (B, T, dim)."""
        if self.ff_in is not None:
            x = x + self.ff_scale * self.ff_in(x)
        x = x + self.dropout(self.attn(self.attn_norm(x), mask, pos))
        x = x + self.conv(x, mask)
        x = x + self.ff_scale * self.ff_out(x)
        return self.norm(x)


class TransformerBlock(nn.Module):
    """Pre-LN Transformer block: ``x + MHSA(LN x)`` then ``x + FFN(LN x)``.

    Args:
        dim (int): model width.
        cfg (Stack): block settings.
    """

    def __init__(self, dim: int, cfg: Stack) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = _attention(dim, cfg)
        self.ff = FeedForward(dim, cfg.ff_expansion, cfg.dropout, activation="relu")
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor, pos: Tensor | None) -> Tensor:
        """(B, T, dim), mask (B, T), relative positions or None → (B, T, dim)."""
        x = x + self.dropout(self.attn(self.attn_norm(x), mask, pos))
        return x + self.ff(x)


class BlockStack(nn.Module):
    """Encoder or decoder: positions, then ``cfg.layers`` blocks.

    Absolute positions are sinusoids added to the input; relative positions are
    handed to every attention. A pre-LN Transformer stack ends with a LayerNorm
    (every Conformer block already ends with one).

    Args:
        cfg (Stack): stack settings.
        dim (int): model width.
    """

    def __init__(self, cfg: Stack, dim: int) -> None:
        super().__init__()
        self.dim, self.pos_enc = dim, cfg.pos_enc
        block = ConformerBlock if cfg.type == "conformer" else TransformerBlock
        self.blocks = nn.ModuleList(block(dim, cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(dim) if cfg.type == "transformer" else nn.Identity()
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Run the blocks.

        Args:
            x (Tensor): input, (B, T, dim).
            mask (Tensor): real frames, (B, T) bool.

        Returns:
            Tensor: output, (B, T, dim), zero on padding.
        """
        t, pos = x.shape[1], None
        if self.pos_enc == "abs":
            x = x + absolute_positions(t, self.dim, x.device).to(x.dtype)
        else:
            pos = relative_positions(t, self.dim, x.device).to(x.dtype)
        x = self.dropout(x)
        keep = mask[..., None]
        for block in self.blocks:
            x = block(x, mask, pos).masked_fill(~keep, 0.0)
        return self.final_norm(x).masked_fill(~keep, 0.0)
