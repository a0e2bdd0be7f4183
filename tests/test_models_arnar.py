"""ARNAR pitch: autoregressive within each segment, independent across segments."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from factories import random_batch, tiny_config

from vc_toolkit.config.tag import ARPitch, Loss, PitchPredictor
from vc_toolkit.models import VCLoss, build_model
from vc_toolkit.models.ar_pitch import ARPitchPredictor
from vc_toolkit.models.arnar_pitch import ARNARPitchPredictor, SegmentPacking
from vc_toolkit.models.frames import lengths_to_mask
from vc_toolkit.models.prosody import segment_ids
from vc_toolkit.models.variance import regulate_length

TOL = dict(atol=1e-5, rtol=1e-5)


def _cfg(n_prev=1, layers=1, zoneout=0.0, kernel_size=3, pitch_type="arnar") -> PitchPredictor:
    ar = ARPitch(lstm_hidden=8, lstm_layers=layers, zoneout=zoneout, dropout=0.0, n_prev=n_prev)
    return PitchPredictor(
        type=pitch_type, layers=1, channels=6, kernel_size=kernel_size, dropout=0.0, ar=ar
    )


def _pair(r=2, **kw) -> tuple[ARNARPitchPredictor, ARPitchPredictor]:
    """An ARNAR predictor and an AR predictor with the same weights (eval mode)."""
    torch.manual_seed(0)
    arnar = ARNARPitchPredictor(12, _cfg(**kw), r).eval()
    ar = ARPitchPredictor(12, _cfg(pitch_type="ar", **kw), r).eval()
    ar.load_state_dict(arnar.state_dict())
    with torch.no_grad():  # a trained-looking output bias, so the fed-back values matter
        arnar.proj.bias.normal_()
        ar.proj.bias.copy_(arnar.proj.bias)
    return arnar, ar


# utterance 0: segments of 4, 1 and 3 frames; utterance 1: 2 and 3 frames, then 3 padded
SEG_IDS = torch.tensor([[0, 0, 0, 0, 1, 2, 2, 2], [0, 0, 1, 1, 1, 7, 7, 7]])
MASK = lengths_to_mask(torch.tensor([8, 5]), 8)
SEGMENTS = [(0, 0, 4), (0, 4, 5), (0, 5, 8), (1, 0, 2), (1, 2, 5)]  # (utterance, start, end)


def _inputs(r=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 8, 12, generator=g)
    target = torch.randn(2, 8, r, generator=g).masked_fill(~MASK[..., None], 0.0)
    return x, target


def test_segment_packing_rows_columns_and_round_trip():
    packing = SegmentPacking(SEG_IDS, MASK)
    assert packing.n_rows == 5 and packing.max_len == 4
    assert packing.lengths.tolist() == [e - s for _, s, e in SEGMENTS]
    x = torch.arange(16.0).view(2, 8, 1)
    packed = packing.pack(x)
    for row, (b, s, e) in enumerate(SEGMENTS):
        assert packed[row, : e - s, 0].tolist() == x[b, s:e, 0].tolist()
        assert not packed[row, e - s :].any()
    assert torch.equal(packing.unpack(packed), x.masked_fill(~MASK[..., None], 0.0))
    whole = SegmentPacking(None, MASK)
    assert whole.lengths.tolist() == [8, 5]
    assert SegmentPacking(torch.zeros_like(SEG_IDS), MASK).lengths.tolist() == [8, 5]
    empty = SegmentPacking(None, torch.zeros(2, 3, dtype=torch.bool))
    assert empty.n_rows == 0 and empty.max_len == 0


@pytest.mark.parametrize(
    "kw", [dict(), dict(n_prev=2, layers=2), dict(zoneout=0.3), dict(r=1, n_prev=3)]
)
@pytest.mark.parametrize("seg_ids", [None, "zeros"])
def test_one_segment_equals_ar(kw, seg_ids):
    arnar, ar = _pair(**kw)
    x, target = _inputs(kw.get("r", 2))
    ids = None if seg_ids is None else torch.zeros_like(SEG_IDS)
    torch.testing.assert_close(arnar(x, MASK, target, ids), ar(x, MASK, target), **TOL)
    torch.testing.assert_close(arnar.infer(x, MASK, ids), ar.infer(x, MASK), **TOL)
    arnar.train(), ar.train()  # no dropout; zoneout is random in training, so only without it
    if not kw.get("zoneout"):
        torch.testing.assert_close(arnar(x, MASK, target, ids), ar(x, MASK, target), **TOL)


def _changed(x: torch.Tensor, frames: list[tuple[int, int]]) -> torch.Tensor:
    out = x.clone()
    for b, t in frames:
        out[b, t] += 3.0
    return out


# frames at least two frames (the kernel-3 front-end's reach + 1) from any segment boundary
SEG0_ONLY = [(0, 0), (0, 1), (1, 0)]  # utterance 0 segment 0, utterance 1 segment 0
SEG2_ONLY = [(0, 7), (1, 4)]  # the last segments
KEPT_BY_SEG0 = [(0, 5, 8), (1, 2, 5)]  # later segments, untouched by SEG0_ONLY's reach
KEPT_BY_SEG2 = [(0, 0, 4), (1, 0, 2)]


@pytest.mark.parametrize("mode", ["forward", "infer"])
def test_segments_are_independent(mode):
    arnar, ar = _pair()
    x, target = _inputs()

    def run(pred, inp):
        with torch.no_grad():
            if mode == "forward":
                return pred(inp, MASK, target, SEG_IDS)
            return pred.infer(inp, MASK, SEG_IDS)

    base, base_ar = run(arnar, x), run(ar, x)
    for frames, kept, changed_seg in (
        (SEG0_ONLY, KEPT_BY_SEG0, (0, 0, 1)),
        (SEG2_ONLY, KEPT_BY_SEG2, (0, 5, 8)),
    ):
        out = run(arnar, _changed(x, frames))
        for b, s, e in kept:
            torch.testing.assert_close(out[b, s:e], base[b, s:e], atol=1e-6, rtol=1e-6)
        b, s, e = changed_seg
        assert not torch.allclose(out[b, s:e], base[b, s:e])
    # the AR predictor carries segment 0's change into the later segments (the contrast)
    out_ar = run(ar, _changed(x, SEG0_ONLY))
    assert not torch.allclose(out_ar[0, 5:8], base_ar[0, 5:8])


def _history(target: torch.Tensor, s: int, t: int, n_prev: int) -> torch.Tensor:
    """[p_{t-1}, ..., p_{t-n_prev}] within the segment starting at ``s`` (zeros before it)."""
    r = target.shape[-1]
    parts = [target[t - k] if t - k >= s else target.new_zeros(r) for k in range(1, n_prev + 1)]
    return torch.cat(parts)


@pytest.mark.parametrize("kw", [dict(), dict(n_prev=2, layers=2), dict(zoneout=0.3)])
def test_teacher_forced_forward_equals_a_per_segment_loop(kw):
    arnar, _ = _pair(**kw)
    x, target = _inputs()
    got = arnar(x, MASK, target, SEG_IDS)
    front = arnar._front(x, MASK)  # the conv front-end sees the whole utterance
    want = torch.zeros_like(got)
    n_prev = kw.get("n_prev", 1)
    for b, s, e in SEGMENTS:
        hist = torch.stack([_history(target[b], s, t, n_prev) for t in range(s, e)])
        inputs = torch.cat([front[b, s:e], hist], dim=-1)
        if not kw.get("zoneout"):  # PyTorch's LSTM over this segment alone, from a zero state
            h = arnar.lstm(inputs[None])[0][0]
        else:  # the cell with evaluation-mode zoneout, one step at a time
            w_ih, b_ih, _, _ = arnar._weights(0)
            state, outs = arnar._zero_state(inputs[:1]), []
            for t in range(e - s):
                out, state = arnar._step(F.linear(inputs[t : t + 1], w_ih, b_ih), state)
                outs.append(out[0])
            h = torch.stack(outs)
        want[b, s:e] = arnar.proj(h)
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("kw", [dict(), dict(zoneout=0.3), dict(n_prev=2, layers=2)])
@pytest.mark.parametrize("fold", [True, False])
def test_packed_decoding_equals_decoding_each_segment_alone(kw, fold):
    arnar, ar = _pair(**kw)
    x, _ = _inputs()
    got = arnar.generate(x, MASK, fold=fold, seg_ids=SEG_IDS)
    assert torch.equal(arnar.infer(x, MASK, SEG_IDS), arnar.generate(x, MASK, seg_ids=SEG_IDS))
    front = arnar._front(x, MASK)
    for b, s, e in SEGMENTS:
        alone = ar.decode(front[b : b + 1, s:e], fold=fold)[0]
        torch.testing.assert_close(got[b, s:e], alone, **TOL)
    assert not got[1, 5:].any()


def test_inference_steps_follow_the_longest_segment(monkeypatch):
    arnar, _ = _pair(layers=2)  # not foldable: the explicit loop, one step per frame
    x, _ = _inputs()
    calls = []
    step = arnar._step
    monkeypatch.setattr(arnar, "_step", lambda g, s: calls.append(g.shape[0]) or step(g, s))
    arnar.infer(x, MASK, SEG_IDS)
    assert calls == [5] * 4  # 5 segments decoded together for the longest segment's 4 frames


def test_padding_is_masked_and_ignored():
    arnar, _ = _pair()
    x, target = _inputs()
    g = torch.Generator().manual_seed(9)
    dirty_x = torch.where(MASK[..., None], x, 100 * torch.randn(x.shape, generator=g))
    dirty_t = torch.where(MASK[..., None], target, 100 * torch.randn(target.shape, generator=g))
    dirty_ids = torch.where(MASK, SEG_IDS, torch.randint(0, 9, SEG_IDS.shape, generator=g))
    for got, want in (
        (arnar(dirty_x, MASK, dirty_t, dirty_ids), arnar(x, MASK, target, SEG_IDS)),
        (arnar.infer(dirty_x, MASK, dirty_ids), arnar.infer(x, MASK, SEG_IDS)),
    ):
        assert not got[~MASK].any()
        torch.testing.assert_close(got, want, **TOL)
    no_frames = torch.zeros(2, 3, dtype=torch.bool)
    assert not arnar.infer(x[:, :3], no_frames).any()
    assert arnar(x[:, :3], no_frames, target[:, :3]).shape == (2, 3, 2)


def test_free_running_forward_without_target_is_the_inference():
    arnar, _ = _pair()
    x, _ = _inputs()
    torch.testing.assert_close(arnar(x, MASK, None, SEG_IDS), arnar.infer(x, MASK, SEG_IDS))


@pytest.mark.parametrize("r", [1, 2])
def test_model_forward_backward_reaches_every_parameter(r):
    cfg = tiny_config(pitch="arnar", prosody="gmm", use_global=True)
    torch.manual_seed(0)
    model = build_model(cfg, n_mels=4, reduction_factor=r)
    assert type(model.pitch_predictor) is ARNARPitchPredictor
    batch = random_batch(4, r, [8 * r, 5 * r], [10 * r, 4 * r], n_segs=[3, 2], seed=0)
    total, terms = VCLoss(Loss(), cfg)(model(batch), batch)
    assert torch.isfinite(total) and "pitch" in terms
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient reached {missing}"


def test_model_passes_source_segments_through_the_durations(monkeypatch):
    r = 2
    model = build_model(tiny_config(pitch="arnar"), n_mels=4, reduction_factor=r)
    batch = random_batch(4, r, [8 * r, 5 * r], [10 * r, 4 * r], n_segs=[3, 2], seed=0)
    seen = {}
    forward, infer = model.pitch_predictor.forward, model.pitch_predictor.infer

    def spy_forward(x, mask, target=None, seg_ids=None):
        seen["forward"] = seg_ids
        return forward(x, mask, target, seg_ids)

    def spy_infer(x, mask, seg_ids=None):
        seen["infer"] = (seg_ids, mask)
        return infer(x, mask, seg_ids)

    monkeypatch.setattr(model.pitch_predictor, "forward", spy_forward)
    monkeypatch.setattr(model.pitch_predictor, "infer", spy_infer)
    model(batch)
    ls = batch.src_lens // r
    src_ids, _ = segment_ids(batch.src_seg, batch.n_seg, ls, int(ls.max()))
    lt = batch.tgt_lens // r
    tgt_mask = lengths_to_mask(lt, int(lt.max()))
    want, _ = regulate_length(src_ids[..., None], batch.duration, int(lt.max()))
    assert torch.equal(seen["forward"][tgt_mask], want[..., 0][tgt_mask])
    out = model.infer(
        batch.src_mel, batch.src_lf0, batch.src_energy, batch.src_lens, batch.src_seg, batch.n_seg
    )
    ids, mask = seen["infer"]
    want, _ = regulate_length(src_ids[..., None], out["duration"])
    assert torch.equal(ids[mask], want[..., 0][mask])
