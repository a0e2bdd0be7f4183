"""Fused (SDPA) attention against the explicit reference path it replaced.

The reference path (``fused_attention(False)``) is the attention of earlier releases
written out: scores, rel-shift, masked softmax, dropout, weighted sum. The fused path
must give the same outputs and gradients on every parameter, with padding, for
absolute and relative positions, and keep the parameter names checkpoints use.
"""

from __future__ import annotations

import pytest
import torch

from vc_toolkit.config.tag import Stack
from vc_toolkit.models import layers
from vc_toolkit.models.blocks import BlockStack
from vc_toolkit.models.frames import lengths_to_mask
from vc_toolkit.models.layers import (
    RelPositionAttention,
    SelfAttention,
    fused_attention,
    rel_shift,
    relative_positions,
    shifted_positions,
)

LENGTHS = [9, 4, 1]  # one full, one half padded, one of a single real frame


def _attention(kind: str, dropout: float = 0.0) -> SelfAttention:
    torch.manual_seed(0)
    cls = RelPositionAttention if kind == "rel" else SelfAttention
    return cls(16, heads=2, dropout=dropout)


def _run(attn: SelfAttention, fused: bool, x: torch.Tensor, mask: torch.Tensor):
    """Output and the gradient of every parameter and of the input, (out, {name: grad})."""
    attn.zero_grad()
    x = x.clone().requires_grad_(True)
    pos = relative_positions(x.shape[1], x.shape[2])
    with fused_attention(fused):
        out = attn(x, mask, pos)
    weights = torch.linspace(-1, 1, out.numel()).view_as(out)
    ((out * weights * mask[..., None]).sum()).backward()
    grads = {name: p.grad.clone() for name, p in attn.named_parameters()}
    grads["input"] = x.grad.clone()
    return out.detach(), grads


@pytest.mark.parametrize("t", [1, 2, 5, 16])
def test_shifted_positions_is_rel_shift(t):
    scores = torch.randn(2, 3, t, 2 * t - 1)
    torch.testing.assert_close(shifted_positions(scores), rel_shift(scores), rtol=0, atol=0)


def test_shifted_positions_of_a_non_contiguous_input():
    scores = torch.randn(2, 3, 5, 9).transpose(0, 1)
    torch.testing.assert_close(shifted_positions(scores), rel_shift(scores.contiguous()))


@pytest.mark.parametrize("kind", ["abs", "rel"])
def test_fused_equals_reference_outputs_and_gradients(kind):
    attn = _attention(kind).train()  # dropout 0: train mode must not change anything
    x, mask = torch.randn(3, 9, 16), lengths_to_mask(torch.tensor(LENGTHS))
    x[~mask] = 50.0  # garbage on padded frames
    out, grads = _run(attn, True, x, mask)
    ref_out, ref_grads = _run(attn, False, x, mask)
    torch.testing.assert_close(out[mask], ref_out[mask], atol=1e-5, rtol=1e-4)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)
    if kind == "rel":  # the position term reaches its parameters through the float mask
        assert grads["bias_v"].abs().sum() > 0 and grads["pos.weight"].abs().sum() > 0


@pytest.mark.parametrize("kind", ["abs", "rel"])
def test_fused_ignores_padded_keys(kind):
    attn = _attention(kind).eval()
    x = torch.randn(1, 6, 16)
    padded = torch.cat([x, 1e3 * torch.randn(1, 3, 16)], dim=1)
    with fused_attention(True):
        alone = attn(x, torch.ones(1, 6, dtype=torch.bool), relative_positions(6, 16))
        mask = lengths_to_mask(torch.tensor([6]), 9)
        together = attn(padded, mask, relative_positions(9, 16))
    torch.testing.assert_close(together[:, :6], alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", ["abs", "rel"])
def test_fused_applies_attention_dropout_in_training_only(kind):
    attn = _attention(kind, dropout=0.5)
    x, mask = torch.randn(2, 9, 16), lengths_to_mask(torch.tensor([9, 5]))
    pos = relative_positions(9, 16)
    with fused_attention(True):
        attn.eval()
        first, second = attn(x, mask, pos), attn(x, mask, pos)
        attn.train()
        dropped = attn(x, mask, pos)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert not torch.allclose(dropped, first, atol=1e-3)
    with fused_attention(False):
        attn.eval()
        torch.testing.assert_close(attn(x, mask, pos), first, atol=1e-5, rtol=1e-4)


def test_parameter_names_are_those_of_checkpoints():
    assert sorted(_attention("abs").state_dict()) == [
        *(f"{m}.{p}" for m in ("key", "out", "query", "value") for p in ("bias", "weight"))
    ]
    assert sorted(_attention("rel").state_dict()) == sorted(
        [*_attention("abs").state_dict(), "bias_u", "bias_v", "pos.weight"]
    )


@pytest.mark.parametrize("pos_enc", ["rel", "abs"])
def test_conformer_stack_fused_equals_reference(pos_enc):
    torch.manual_seed(0)
    cfg = Stack(layers=2, heads=2, ff_expansion=2, kernel_size=3, pos_enc=pos_enc)
    stack = BlockStack(cfg, 16).eval()
    x, mask = torch.randn(3, 9, 16), lengths_to_mask(torch.tensor(LENGTHS))
    with fused_attention(True):
        fused = stack(x, mask)
    with fused_attention(False):
        ref = stack(x, mask)
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-4)


def test_fused_attention_restores_the_previous_mode():
    with fused_attention(False):
        assert layers._FUSED is False
        with fused_attention(True):
            assert layers._FUSED is True
        assert layers._FUSED is False
    assert layers._FUSED is True


@pytest.mark.parametrize("kind", ["abs", "rel"])
def test_fused_under_cpu_bf16_autocast_is_close_to_fp32(kind):
    attn = _attention(kind).eval()
    x, mask = torch.randn(3, 9, 16), lengths_to_mask(torch.tensor(LENGTHS))
    pos = relative_positions(9, 16)
    with fused_attention(False):
        ref = attn(x, mask, pos)
    with fused_attention(True), torch.autocast("cpu", dtype=torch.bfloat16):
        low = attn(x, mask, pos)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float()[mask], ref[mask], atol=0.05, rtol=0.05)
