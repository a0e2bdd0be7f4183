"""Layers, block stacks, frame stacking and the length regulator against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vc_toolkit.config.tag import Stack
from vc_toolkit.models.blocks import BlockStack
from vc_toolkit.models.frames import lengths_to_mask, masked_mean, stack_frames, unstack_frames
from vc_toolkit.models.layers import (
    ConvModule,
    RelPositionAttention,
    SelfAttention,
    rel_shift,
    relative_positions,
    sinusoid,
)
from vc_toolkit.models.variance import regulate_length


def test_sinusoid_matches_formula():
    pos = np.array([-3.0, 0.0, 2.0, 7.0])
    dim = 6
    want = np.zeros((4, dim))
    for i in range(dim // 2):
        want[:, 2 * i] = np.sin(pos / 10000 ** (2 * i / dim))
        want[:, 2 * i + 1] = np.cos(pos / 10000 ** (2 * i / dim))
    got = sinusoid(torch.tensor(pos), dim).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert sinusoid(torch.tensor(pos), 5).shape == (4, 5)


def test_relative_positions_run_from_t_minus_one_down():
    table = relative_positions(3, 4)
    np.testing.assert_allclose(table.numpy(), sinusoid(torch.tensor([2.0, 1, 0, -1, -2]), 4))


def test_rel_shift_picks_distance_slots():
    b, h, t = 2, 3, 5
    scores = torch.randn(b, h, t, 2 * t - 1)
    got = rel_shift(scores)
    for i in range(t):
        for j in range(t):
            torch.testing.assert_close(got[..., i, j], scores[..., i, t - 1 - i + j])


def _naive_rel_attention(attn: RelPositionAttention, x: torch.Tensor, mask: torch.Tensor):
    """Loop-over-pairs reference of Transformer-XL attention scores, one utterance."""
    t, dim = x.shape
    h, dk = attn.heads, attn.d_k
    q = attn.query(x).view(t, h, dk)
    k = attn.key(x).view(t, h, dk)
    v = attn.value(x).view(t, h, dk)
    out = torch.zeros(t, h, dk)
    for head in range(h):
        for i in range(t):
            scores = torch.full((t,), -math.inf)
            for j in range(t):
                if not mask[j]:
                    continue
                r = attn.pos(sinusoid(torch.tensor([float(i - j)]), dim))[0].view(h, dk)[head]
                content = (q[i, head] + attn.bias_u[head]) @ k[j, head]
                position = (q[i, head] + attn.bias_v[head]) @ r
                scores[j] = (content + position) / math.sqrt(dk)
            out[i, head] = torch.softmax(scores, 0) @ v[:, head]
    return attn.out(out.reshape(t, dim))


def test_relative_attention_matches_pairwise_reference():
    torch.manual_seed(0)
    attn = RelPositionAttention(8, heads=2, dropout=0.0)
    x = torch.randn(1, 5, 8)
    mask = torch.tensor([[True, True, True, True, False]])
    got = attn(x, mask, relative_positions(5, 8))
    want = _naive_rel_attention(attn, x[0], mask[0])
    torch.testing.assert_close(got[0], want, atol=1e-5, rtol=1e-4)


def test_absolute_attention_matches_torch_sdpa():
    torch.manual_seed(0)
    attn = SelfAttention(8, heads=2, dropout=0.0)
    x, mask = torch.randn(2, 6, 8), lengths_to_mask(torch.tensor([6, 3]))
    q, k, v = (attn._split(f(x)) for f in (attn.query, attn.key, attn.value))
    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
    want = attn.out(ctx.transpose(1, 2).reshape(2, 6, 8))
    torch.testing.assert_close(attn(x, mask), want, atol=1e-5, rtol=1e-4)


def test_conv_module_ignores_padding():
    torch.manual_seed(0)
    conv = ConvModule(8, kernel_size=5, dropout=0.0)
    x = torch.randn(1, 4, 8)
    padded = torch.cat([x, 100 * torch.randn(1, 3, 8)], dim=1)
    mask = lengths_to_mask(torch.tensor([4]), 7)
    torch.testing.assert_close(conv(padded, mask)[:, :4], conv(x, mask[:, :4]))


@pytest.mark.parametrize(
    ("kind", "macaron"), [("conformer", True), ("conformer", False), ("transformer", True)]
)
@pytest.mark.parametrize("pos_enc", ["rel", "abs"])
def test_block_stack_padding_invariance(kind, macaron, pos_enc):
    torch.manual_seed(0)
    cfg = Stack(
        type=kind,
        layers=2,
        heads=2,
        ff_expansion=2,
        kernel_size=3,
        pos_enc=pos_enc,
        macaron=macaron,
    )
    stack = BlockStack(cfg, 8).eval()
    short = torch.randn(1, 4, 8)
    batch = torch.randn(2, 7, 8)
    batch[1, :4] = short[0]
    batch[1, 4:] = 1e3  # garbage padding
    mask = lengths_to_mask(torch.tensor([7, 4]))
    alone = stack(short, lengths_to_mask(torch.tensor([4])))
    together = stack(batch, mask)
    torch.testing.assert_close(together[1, :4], alone[0], atol=1e-5, rtol=1e-5)
    assert together[1, 4:].abs().sum() == 0


def test_stack_frames_round_trip_and_padding():
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    s = stack_frames(x, 2)
    assert s.shape == (2, 3, 6)
    np.testing.assert_array_equal(s[0, 1].numpy(), x[0, 2:4].reshape(-1).numpy())
    assert s[:, 2, 3:].abs().sum() == 0
    torch.testing.assert_close(unstack_frames(s, 2)[:, :5], x)
    assert stack_frames(torch.ones(1, 4), 2).shape == (1, 2, 2)


def test_masked_mean_counts_real_elements_only():
    x = torch.tensor([[[1.0, 3.0], [100.0, 100.0]], [[5.0, 7.0], [9.0, 11.0]]])
    mask = torch.tensor([[True, False], [True, True]])
    assert float(masked_mean(x, mask)) == pytest.approx((1 + 3 + 5 + 7 + 9 + 11) / 6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_length_regulator_matches_np_repeat(seed):
    rng = np.random.default_rng(seed)
    lens = [5, 3, 4]
    x = rng.standard_normal((3, 5, 2)).astype("f4")
    d = rng.integers(0, 4, (3, 5))
    for k, n in enumerate(lens):
        d[k, n:] = 0
    out, totals = regulate_length(torch.from_numpy(x), torch.from_numpy(d))
    assert totals.tolist() == d.sum(1).tolist()
    assert out.shape[1] == d.sum(1).max()
    for k in range(3):
        want = np.repeat(x[k], d[k], axis=0)
        np.testing.assert_array_equal(out[k, : len(want)].numpy(), want)
        assert out[k, len(want) :].abs().sum() == 0


def test_length_regulator_cuts_and_pads_to_max_len():
    x = torch.tensor([[[1.0], [2.0]]])
    out, totals = regulate_length(x, torch.tensor([[2, 3]]), max_len=3)
    assert out[0, :, 0].tolist() == [1.0, 1.0, 2.0] and totals.tolist() == [3]
    out, totals = regulate_length(x, torch.tensor([[1, 0]]), max_len=3)
    assert out[0, :, 0].tolist() == [1.0, 0.0, 0.0] and totals.tolist() == [1]
    with pytest.raises(ValueError, match="durations must be >= 0"):
        regulate_length(x, torch.tensor([[1, -1]]))


def test_length_regulator_passes_gradients():
    x = torch.randn(1, 3, 2, requires_grad=True)
    out, _ = regulate_length(x, torch.tensor([[2, 0, 1]]))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad[0, :, 0].numpy(), [2.0, 0.0, 1.0])
