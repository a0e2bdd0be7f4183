"""Building blocks of the encoder and decoder stacks.

Sinusoidal position tables [Vaswani et al., "Attention is all you need", NeurIPS
2017], multi-head self-attention with absolute or relative positions
[Dai et al., "Transformer-XL", ACL 2019], and the Conformer convolution and
feed-forward modules [Gulati et al., "Conformer", Interspeech 2020]. Every
module takes channel-last input (B, T, D) and a padding mask (B, T) with
``True`` on real frames.

Example:
    >>> import torch
    >>> attn = RelPositionAttention(8, heads=2, dropout=0.0)
    >>> x, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    >>> attn(x, mask, relative_positions(5, 8)).shape
    torch.Size([2, 5, 8])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoid(positions: Tensor, dim: int) -> Tensor:
    """Sinusoidal encodings of (possibly negative) positions [Vaswani et al. 2017].

    ``PE(p, 2i) = sin(p / 10000^(2i/dim))`` and ``PE(p, 2i+1) = cos(p / 10000^(2i/dim))``.

    Args:
        positions (Tensor): positions, (N,) float.
        dim (int): encoding size.

    Returns:
        Tensor: encodings, (N, dim).

    Example:
        >>> [round(v, 4) for v in sinusoid(torch.tensor([0.0, 1.0]), 2)[1].tolist()]
        [0.8415, 0.5403]
    """
    half = (dim + 1) // 2
    freqs = torch.exp(
        torch.arange(half, device=positions.device, dtype=torch.float32)
        * (-2.0 * math.log(10000.0) / dim)
    )
    angles = positions.float()[:, None] * freqs[None, :]
    table = torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(len(positions), 2 * half)
    return table[:, :dim]


def absolute_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Encodings of positions ``0 .. length-1``, (length, dim)."""
    return sinusoid(torch.arange(length, device=device, dtype=torch.float32), dim)


def relative_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Encodings of relative distances ``length-1, ..., 0, ..., -(length-1)``, (2*length-1, dim)."""
    return sinusoid(torch.arange(length - 1, -length, -1, device=device, dtype=torch.float32), dim)


def rel_shift(scores: Tensor) -> Tensor:
    """Re-index position scores from relative-distance slots to key positions.

    Args:
        scores (Tensor): scores against the distances of :func:`relative_positions`,
            (B, H, T, 2T-1); slot ``c`` holds distance ``T-1-c``.

    Returns:
        Tensor: ``out[..., i, j] = scores[..., i, T-1-i+j]``, i.e. the score of distance
        ``i - j``, (B, H, T, T).
    """
    b, h, t, n = scores.shape
    padded = F.pad(scores, (1, 0))  # (B, H, T, 2T)
    padded = padded.view(b, h, n + 1, t)[:, :, 1:]
    return padded.reshape(b, h, t, n)[..., :t]


_FUSED = True
"""Whether attention runs through SDPA (see :func:`fused_attention`)."""


@contextmanager
def fused_attention(enabled: bool) -> Iterator[None]:
    """Run attention through the fused SDPA path (True) or the explicit reference path (False).

    Both paths have the same parameters and give the same outputs within float tolerance;
    the reference path (scores, masked softmax, dropout, weighted sum, written out) is kept
    for tests and for the benchmark's side-by-side rows.

    Example:
        >>> with fused_attention(False):
        ...     pass
    """
    global _FUSED
    before, _FUSED = _FUSED, enabled
    try:
        yield
    finally:
        _FUSED = before


def shifted_positions(scores: Tensor) -> Tensor:
    """:func:`rel_shift` as views of the scores: nothing is copied.

    In the flattened row-major scores, ``out[..., i, j]`` sits at ``i*(2T-1) + T-1-i+j =
    (T-1) + i*(2T-2) + j``: a slice from ``T-1`` viewed as rows of ``2T-2``, cut to ``T``.

    Args:
        scores (Tensor): scores against the distances of :func:`relative_positions`,
            (B, H, T, 2T-1).

    Returns:
        Tensor: ``out[..., i, j] = scores[..., i, T-1-i+j]``, (B, H, T, T).
    """
    b, h, t, n = scores.shape
    if t == 1:
        return scores
    flat = scores.contiguous().view(b, h, t * n)[..., t - 1 : t - 1 + t * (n - 1)]
    return flat.view(b, h, t, n - 1)[..., :t]


def _key_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Additive key mask: 0 on real frames, -inf on padding, (B, 1, 1, T)."""
    zeros = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return zeros.masked_fill(~mask, float("-inf"))[:, None, None, :]


class SelfAttention(nn.Module):
    """Multi-head self-attention with absolute positions (added to the input elsewhere).

    Runs ``F.scaled_dot_product_attention`` (fused kernels where the device has them);
    inside ``fused_attention(False)`` the explicit reference path instead.

    Args:
        dim (int): model width.
        heads (int): number of heads (must divide ``dim``).
        dropout (float): dropout on the attention weights.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention heads ({heads}) must divide the width ({dim})")
        self.heads, self.d_k = heads, dim // heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: Tensor) -> Tensor:
        """(B, T, dim) → (B, H, T, d_k)."""
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.d_k).transpose(1, 2)

    def _merge(self, ctx: Tensor) -> Tensor:
        """(B, H, T, d_k) → output projection, (B, T, dim)."""
        ctx = ctx.transpose(1, 2)
        return self.out(ctx.reshape(ctx.shape[0], ctx.shape[1], -1))

    def _attend(self, scores: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Reference path: masked softmax of scaled scores (B, H, T, T), dropout, values."""
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(scores.dtype).min)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return self._merge(weights @ v)

    def _sdpa(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        """Fused path: ``softmax(q·k / sqrt(d_k) + bias)·v``; bias (B, 1|H, 1|T, T)."""
        p = self.dropout.p if self.training else 0.0
        return self._merge(F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p))

    def forward(self, x: Tensor, mask: Tensor, pos: Tensor | None = None) -> Tensor:
        """Attend over the real frames.

        Args:
            x (Tensor): input, (B, T, dim).
            mask (Tensor): real frames, (B, T) bool.
            pos (Tensor | None): unused (absolute positions are added to the input).

        Returns:
            Tensor: output, (B, T, dim).
        """
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        if _FUSED:
            return self._sdpa(q, k, v, _key_mask(mask, q.dtype))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)
        return self._attend(scores, v, mask)


class RelPositionAttention(SelfAttention):
    """Self-attention with relative positions [Dai et al., Transformer-XL, ACL 2019].

    ``score(i, j) = ((q_i + u)·k_j + (q_i + v)·W_r r_{i-j}) / sqrt(d_k)`` with learned
    biases ``u``, ``v`` per head and sinusoidal ``r`` (as used in the Conformer).

    The fused path hands ``q + u``, ``k``, ``v`` to ``F.scaled_dot_product_attention`` and the
    position term as its additive float mask: ``((q + v) / sqrt(d_k))·(W_r r)`` against the
    2T-1 distances (one matmul), re-indexed to key positions by views of it
    (:func:`shifted_positions`, no copy), with the padding folded in as ``-inf``: the only
    (B, H, T, T) tensor it materialises.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__(dim, heads, dropout)
        self.pos = nn.Linear(dim, dim, bias=False)
        self.bias_u = nn.Parameter(torch.zeros(heads, self.d_k))
        self.bias_v = nn.Parameter(torch.zeros(heads, self.d_k))
        nn.init.xavier_uniform_(self.bias_u)
        nn.init.xavier_uniform_(self.bias_v)

    def position_bias(self, q: Tensor, pos: Tensor, mask: Tensor) -> Tensor:
        """The position term plus the padding mask, ready for SDPA.

        Args:
            q (Tensor): queries, (B, H, T, d_k).
            pos (Tensor): :func:`relative_positions` for ``T``, (2T-1, dim).
            mask (Tensor): real frames, (B, T) bool.

        Returns:
            Tensor: ``((q_i + v)·W_r r_{i-j}) / sqrt(d_k)``, ``-inf`` on padded keys,
            (B, H, T, T).
        """
        p = self.pos(pos).view(-1, self.heads, self.d_k).transpose(0, 1)  # (H, 2T-1, d_k)
        qv = (q + self.bias_v[:, None]) * (1.0 / math.sqrt(self.d_k))
        position = shifted_positions(qv @ p.transpose(-2, -1))
        return position.masked_fill(~mask[:, None, None, :], float("-inf"))

    def forward(self, x: Tensor, mask: Tensor, pos: Tensor | None = None) -> Tensor:
        """Attend over the real frames.

        Args:
            x (Tensor): input, (B, T, dim).
            mask (Tensor): real frames, (B, T) bool.
            pos (Tensor): :func:`relative_positions` for ``T``, (2T-1, dim).

        Returns:
            Tensor: output, (B, T, dim).
        """
        if pos is None:
            raise ValueError("relative-position attention needs the relative position table")
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        if _FUSED:
            return self._sdpa(q + self.bias_u[:, None], k, v, self.position_bias(q, pos, mask))
        p = self.pos(pos).view(-1, self.heads, self.d_k).transpose(0, 1)  # (H, 2T-1, d_k)
        content = (q + self.bias_u[:, None]) @ k.transpose(-2, -1)
        position = rel_shift((q + self.bias_v[:, None]) @ p.transpose(-2, -1))
        return self._attend((content + position) / math.sqrt(self.d_k), v, mask)


class FeedForward(nn.Module):
    """Pre-norm position-wise feed-forward module: LN → linear → act → dropout → linear → dropout.

    Args:
        dim (int): model width.
        expansion (int): inner width = ``dim * expansion``.
        dropout (float): dropout rate.
        activation (str): ``swish`` (Conformer) or ``relu`` (Transformer).
    """

    def __init__(self, dim: int, expansion: int, dropout: float, activation: str = "swish"):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, dim * expansion),
            nn.SiLU() if activation == "swish" else nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dim * expansion, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, dim) → (B, T, dim)."""
        return self.net(x)


class ConvModule(nn.Module):
    """Conformer convolution module [Gulati et al. 2020].

    LN → pointwise (2·dim) → GLU → depthwise conv → LayerNorm → swish → pointwise → dropout.
    The norm after the depthwise conv is a LayerNorm over channels (not BatchNorm), so
    padded frames never enter any statistic; padded frames are zeroed before the conv.

    Args:
        dim (int): model width.
        kernel_size (int): depthwise kernel (odd).
        dropout (float): dropout rate.
    """

    def __init__(self, dim: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"conformer kernel_size must be odd, got {kernel_size}")
        self.norm_in = nn.LayerNorm(dim)
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, T, dim), mask (B, T) → (B, T, dim)."""
        y = F.glu(self.pointwise_in(self.norm_in(x)), dim=-1)
        y = y.masked_fill(~mask[..., None], 0.0)
        y = self.depthwise(y.transpose(1, 2)).transpose(1, 2)
        y = F.silu(self.norm(y))
        return self.dropout(self.pointwise_out(y))


class MaskedConv(nn.Module):
    """Channel-last 1-D convolution that zeroes padded frames first.

    Args:
        in_dim (int): input channels.
        out_dim (int): output channels.
        kernel_size (int): kernel (odd, 'same' padding).
    """

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"conv kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, T, in_dim), mask (B, T) → (B, T, out_dim)."""
        x = x.masked_fill(~mask[..., None], 0.0)
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class ConvStack(nn.Module):
    """Masked conv layers, each conv → activation → LayerNorm → dropout (FastSpeech2 style).

    Args:
        in_dim (int): input channels.
        channels (int): channels of every layer.
        layers (int): number of conv layers (>= 1).
        kernel_size (int): kernel (odd).
        dropout (float): dropout rate.
        activation (str): ``relu`` or ``tanh``.
    """

    def __init__(
        self,
        in_dim: int,
        channels: int,
        layers: int,
        kernel_size: int,
        dropout: float,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        dims = [in_dim] + [channels] * layers
        self.convs = nn.ModuleList(MaskedConv(a, b, kernel_size) for a, b in zip(dims, dims[1:]))
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(layers))
        self.activation = nn.ReLU() if activation == "relu" else nn.Tanh()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, T, in_dim), mask (B, T) → (B, T, channels), zero on padding."""
        for conv, norm in zip(self.convs, self.norms):
            x = self.dropout(norm(self.activation(conv(x, mask))))
        return x.masked_fill(~mask[..., None], 0.0)
