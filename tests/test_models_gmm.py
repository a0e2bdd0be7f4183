"""wGMM prosody: mixture likelihood against scipy, segment bookkeeping, the prosody module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import tiny_gmm_prosody
from scipy.special import logsumexp, softmax
from scipy.stats import multivariate_normal

from vc_toolkit.models.frames import lengths_to_mask
from vc_toolkit.models.prosody import (
    MixtureHead,
    ProsodyModule,
    gmm_choose,
    gmm_log_likelihood,
    segment_expand,
    segment_ids,
    segment_pool,
)


@pytest.mark.parametrize("seed", [0, 1])
def test_gmm_log_likelihood_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    n, g, d = 6, 3, 4
    x = rng.standard_normal((n, d))
    logits = rng.standard_normal((n, g))
    means = rng.standard_normal((n, g, d))
    log_scales = rng.uniform(-1.0, 0.5, (n, g, d))
    want = np.empty(n)
    for i in range(n):
        log_w = np.log(softmax(logits[i]))
        comps = [
            multivariate_normal(means[i, k], np.diag(np.exp(2 * log_scales[i, k]))).logpdf(x[i])
            for k in range(g)
        ]
        want[i] = logsumexp(log_w + np.array(comps))
    mixture = tuple(torch.from_numpy(a) for a in (logits, means, log_scales))
    got = gmm_log_likelihood(torch.from_numpy(x), mixture)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


def test_mixture_head_shapes_and_log_scale_floor():
    head = MixtureHead(5, components=3, dim=2, log_scale_min=-2.0)
    with torch.no_grad():
        head.proj.bias.fill_(-10.0)
    logits, means, log_scales = head(torch.zeros(4, 7, 5))
    assert logits.shape == (4, 7, 3) and means.shape == log_scales.shape == (4, 7, 3, 2)
    assert log_scales.min().item() == -2.0


def _mixture():
    logits = torch.tensor([[0.0, 2.0, 1.0]])
    means = torch.tensor([[[1.0, 1.0], [5.0, -5.0], [9.0, 9.0]]])
    log_scales = torch.full((1, 3, 2), -1.0)
    return logits, means, log_scales


def test_gmm_choose_mean_is_the_most_likely_component_mean():
    assert gmm_choose(_mixture(), "mean").tolist() == [[5.0, -5.0]]
    with pytest.raises(ValueError, match="prosody mode"):
        gmm_choose(_mixture(), "median")


def test_gmm_choose_sample_follows_the_mixture():
    torch.manual_seed(0)
    logits, means, log_scales = _mixture()
    n = 20000
    mix = (logits.expand(n, 3), means.expand(n, 3, 2), log_scales.expand(n, 3, 2))
    draws = gmm_choose(mix, "sample", temperature=1.0).numpy()
    weights = softmax(logits[0].numpy())
    comp = np.argmin(((draws[:, None, :] - means[0].numpy()) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(np.bincount(comp, minlength=3) / n, weights, atol=0.015)
    picked = draws[comp == 1]
    np.testing.assert_allclose(picked.std(0), np.exp(-1.0), rtol=0.05)
    cold = gmm_choose(mix, "sample", temperature=0.0).numpy()
    assert {tuple(row) for row in cold} <= {tuple(m) for m in means[0].tolist()}


def test_segment_ids_pool_and_expand_match_a_loop_reference():
    seg = torch.tensor([[2, 0, 3], [4, 9, 9]])  # second row: garbage beyond n_seg
    n_seg = torch.tensor([3, 1])
    lens = torch.tensor([6, 3])
    ids, seg_mask = segment_ids(seg, n_seg, lens, max_len=6)
    # row 0: frames 0-1 -> 0, segment 1 empty, 2-4 -> 2, frame 5 past the counts -> last
    assert ids[0].tolist() == [0, 0, 2, 2, 2, 2]
    assert ids[1, :3].tolist() == [0, 0, 0]  # n_seg == 1: the whole utterance
    assert seg_mask.tolist() == [[True, True, True], [True, False, False]]
    x = torch.arange(12.0).view(2, 6, 1)
    mask = lengths_to_mask(lens, 6)
    pooled = segment_pool(x, ids, mask, 3)
    assert pooled[0, :, 0].tolist() == [0.5, 0.0, 3.5]
    assert pooled[1, 0, 0].item() == 7.0
    expanded = segment_expand(pooled, ids, mask)
    assert expanded[0, :, 0].tolist() == [0.5, 0.5, 3.5, 3.5, 3.5, 3.5]
    assert expanded[1, :, 0].tolist() == [7.0, 7.0, 7.0, 0.0, 0.0, 0.0]


def test_segment_ids_without_segments_is_one_segment():
    ids, seg_mask = segment_ids(None, None, torch.tensor([3, 2]), max_len=3)
    assert ids.tolist() == [[0, 0, 0], [0, 0, 0]] and seg_mask.tolist() == [[True], [True]]


def _module(use_global=False, stop_gradient=True, hidden=8):
    torch.manual_seed(0)
    cfg = tiny_gmm_prosody(use_global=use_global, stop_gradient=stop_gradient)
    return ProsodyModule(hidden, mel_dim=4, cfg=cfg)


def _inputs(hidden=8):
    torch.manual_seed(1)
    enc = torch.randn(1, 6, hidden)
    src_mask = torch.ones(1, 6, dtype=torch.bool)
    src_ids, _ = segment_ids(torch.tensor([[2, 4]]), torch.tensor([2]), torch.tensor([6]), 6)
    tgt = torch.randn(1, 5, 4)
    tgt_mask = torch.ones(1, 5, dtype=torch.bool)
    tgt_ids, _ = segment_ids(torch.tensor([[3, 2]]), torch.tensor([2]), torch.tensor([5]), 5)
    return enc, src_mask, src_ids, tgt, tgt_mask, tgt_ids


@pytest.mark.parametrize("use_global", [False, True])
def test_extracted_embedding_k_is_added_to_source_segment_k(use_global):
    module = _module(use_global)
    enc, src_mask, src_ids, tgt, tgt_mask, tgt_ids = _inputs()
    out, extra = module(enc, src_mask, src_ids, 2, tgt, tgt_mask, tgt_ids)
    seg = extra["prosody_target"]
    feats = module.extractor(tgt, tgt_mask)
    want_seg = torch.tanh(
        module.seg_embed(torch.stack([feats[0, :3].mean(0), feats[0, 3:].mean(0)]))
    )
    torch.testing.assert_close(seg[0], want_seg)
    added = module.seg_proj(seg[0])[[0, 0, 1, 1, 1, 1]]
    if use_global:
        glob = torch.tanh(module.global_embed(feats[0].mean(0)))
        torch.testing.assert_close(extra["global_prosody_target"][0], glob)
        added = added + module.global_proj(glob)
        assert extra["global_gmm_means"].shape == (1, 3, 3)  # default 3 components
    torch.testing.assert_close(out[0] - enc[0], added, atol=1e-6, rtol=1e-5)
    assert extra["gmm_logits"].shape == (1, 2, 2) and extra["gmm_means"].shape == (1, 2, 2, 3)


def test_teacher_forced_mixtures_match_inference_when_fed_the_same_embeddings(monkeypatch):
    module = _module(use_global=True).eval()
    enc, src_mask, src_ids, tgt, tgt_mask, tgt_ids = _inputs()
    _, extra = module(enc, src_mask, src_ids, 2, tgt, tgt_mask, tgt_ids)
    # make inference "choose" the extracted embeddings; the mixtures it sees must match
    seg = extra["prosody_target"]
    targets = [extra["global_prosody_target"], seg[:, 0:1], seg[:, 1:2]]
    seen = []

    def choose(mixture, mode, temperature):
        seen.append(mixture)
        return targets[len(seen) - 1]

    monkeypatch.setattr("vc_toolkit.models.prosody.gmm_choose", choose)
    module.infer(enc, src_mask, src_ids, 2)
    torch.testing.assert_close(seen[0][0], extra["global_gmm_logits"])
    for k in range(2):
        torch.testing.assert_close(seen[k + 1][1][:, 0], extra["gmm_means"][:, k])


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_nll_reaches_the_encoder_only_without_stop_gradient(stop_gradient):
    module = _module(use_global=True, stop_gradient=stop_gradient)
    enc, src_mask, src_ids, tgt, tgt_mask, tgt_ids = _inputs()
    enc.requires_grad_(True)
    _, extra = module(enc, src_mask, src_ids, 2, tgt, tgt_mask, tgt_ids)
    mix = (extra["gmm_logits"], extra["gmm_means"], extra["gmm_log_scales"])
    nll = -gmm_log_likelihood(extra["prosody_target"], mix).sum()
    nll.backward()
    reached = enc.grad is not None and bool(enc.grad.abs().sum() > 0)
    assert reached == (not stop_gradient)
    assert module.extractor.convs[0].conv.weight.grad is None  # targets are detached
    assert module.seg_head.proj.weight.grad.abs().sum() > 0


def test_inference_is_autoregressive_over_segments():
    module = _module().eval()
    enc, src_mask, src_ids, *_ = _inputs()
    _, a = module.infer(enc, src_mask, src_ids, 2)
    changed = enc.clone()
    changed[:, 2:] += 5.0  # only the second segment's frames
    _, b = module.infer(changed, src_mask, src_ids, 2)
    torch.testing.assert_close(a["prosody"][:, 0], b["prosody"][:, 0])
    assert not torch.allclose(a["prosody"][:, 1], b["prosody"][:, 1])
    assert a["prosody"].abs().max() <= 1.0
