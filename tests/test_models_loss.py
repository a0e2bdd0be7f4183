"""VCLoss: hand-computed values, masking, mixture terms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vc_toolkit.config.tag import LOSS_NAMES, Loss, ModelConfig, Prosody
from vc_toolkit.data.batch import Batch
from vc_toolkit.models import VCLoss


def _batch(tgt_lens=(3, 2), src_lens=(2, 1), seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    b, tt, ts = len(tgt_lens), max(tgt_lens), max(src_lens)
    return Batch(
        utt_ids=[f"u{k}" for k in range(b)],
        src_mel=torch.randn(b, ts, 2, generator=g),
        src_lf0=torch.randn(b, ts, generator=g),
        src_vuv=torch.ones(b, ts),
        src_energy=torch.randn(b, ts, generator=g),
        src_lens=torch.tensor(src_lens),
        tgt_mel=torch.randn(b, tt, 2, generator=g),
        tgt_lf0=torch.randn(b, tt, generator=g),
        tgt_vuv=torch.ones(b, tt),
        tgt_energy=torch.randn(b, tt, generator=g),
        tgt_lens=torch.tensor(tgt_lens),
        duration=torch.randint(0, 4, (b, ts), generator=g),
        src_seg=torch.ones(b, 1, dtype=torch.long),
        tgt_seg=torch.ones(b, 1, dtype=torch.long),
        n_seg=torch.ones(b, dtype=torch.long),
    )


def _outputs(batch: Batch, seed=1) -> dict:
    g = torch.Generator().manual_seed(seed)
    b, tt = batch.tgt_mel.shape[:2]
    ts = batch.duration.shape[1]
    return {
        "mel": torch.randn(b, tt, 2, generator=g),
        "post_mel": torch.randn(b, tt, 2, generator=g),
        "log_duration": torch.randn(b, ts, generator=g),
        "pitch": torch.randn(b, tt, generator=g),
        "energy": torch.randn(b, tt, generator=g),
        "src_mask": torch.arange(ts)[None] < batch.src_lens[:, None],
        "tgt_mask": torch.arange(tt)[None] < batch.tgt_lens[:, None],
    }


def _reference(out: dict, batch: Batch, w: Loss) -> dict[str, float]:
    """Loop-over-utterances numpy reference."""
    acc = {k: [] for k in ("mel", "post_mel", "pitch", "energy", "duration")}
    for k in range(len(batch)):
        tt, ts = int(batch.tgt_lens[k]), int(batch.src_lens[k])
        tgt = batch.tgt_mel[k, :tt].numpy()
        acc["mel"].extend(np.abs(out["mel"][k, :tt].numpy() - tgt).ravel())
        acc["post_mel"].extend(np.abs(out["post_mel"][k, :tt].numpy() - tgt).ravel())
        acc["pitch"].extend((out["pitch"][k, :tt].numpy() - batch.tgt_lf0[k, :tt].numpy()) ** 2)
        acc["energy"].extend(
            (out["energy"][k, :tt].numpy() - batch.tgt_energy[k, :tt].numpy()) ** 2
        )
        logd = np.log(batch.duration[k, :ts].numpy() + 1.0)
        acc["duration"].extend((out["log_duration"][k, :ts].numpy() - logd) ** 2)
    ref = {k: float(np.mean(v)) for k, v in acc.items()}
    ref["total"] = sum(getattr(w, k) * ref[k] for k in acc)
    return ref


def test_losses_match_a_numpy_reference():
    batch = _batch()
    out = _outputs(batch)
    weights = Loss(mel=0.5, post_mel=2.0, duration=3.0, pitch=0.25, energy=1.5)
    total, terms = VCLoss(weights)(out, batch)
    ref = _reference(out, batch, weights)
    assert set(terms) == set(ref) and set(terms) <= set(LOSS_NAMES)
    for name, value in ref.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-5), name
    assert total.item() == pytest.approx(ref["total"], rel=1e-5)


def test_hand_computed_single_frame():
    batch = _batch(tgt_lens=(1,), src_lens=(1,))
    batch.tgt_mel[:] = torch.tensor([[[1.0, -1.0]]])
    batch.tgt_lf0[:], batch.tgt_energy[:], batch.duration[:] = 2.0, -1.0, 0
    out = _outputs(batch)
    out["mel"] = torch.tensor([[[0.0, 0.0]]])  # L1 = (1 + 1) / 2 = 1
    out["post_mel"] = torch.tensor([[[1.0, 1.0]]])  # L1 = (0 + 2) / 2 = 1
    out["pitch"], out["energy"] = torch.tensor([[0.0]]), torch.tensor([[1.0]])  # 4 and 4
    out["log_duration"] = torch.tensor([[0.5]])  # target log(0 + 1) = 0 -> 0.25
    total, terms = VCLoss(Loss())(out, batch)
    assert {k: v.item() for k, v in terms.items()} == {
        "mel": 1.0,
        "post_mel": 1.0,
        "pitch": 4.0,
        "energy": 4.0,
        "duration": 0.25,
        "total": 10.25,
    }


def _pad(x: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    if x.dtype == torch.bool:
        return torch.cat([x, torch.zeros(x.shape[0], n, *x.shape[2:], dtype=torch.bool)], 1)
    if x.dtype == torch.long:
        return torch.cat([x, torch.randint(0, 9, (x.shape[0], n, *x.shape[2:]), generator=g)], 1)
    return torch.cat([x, 1e3 * torch.randn(x.shape[0], n, *x.shape[2:], generator=g)], 1)


def test_garbage_padding_changes_no_loss_and_gets_no_gradient():
    batch = _batch()
    out = _outputs(batch)
    _, clean = VCLoss(Loss())(out, batch)
    g = torch.Generator().manual_seed(7)
    padded = Batch(
        **{
            k: _pad(v, 4, g) if isinstance(v, torch.Tensor) and v.dim() >= 2 else v
            for k, v in vars(batch).items()
        }
    )
    dirty_out = {k: _pad(v, 4, g).requires_grad_(v.is_floating_point()) for k, v in out.items()}
    _, dirty = VCLoss(Loss())(dirty_out, padded)
    for name in clean:
        assert dirty[name].item() == pytest.approx(clean[name].item(), rel=1e-6), name
    dirty["total"].backward()
    for key in ("mel", "post_mel", "pitch", "energy"):
        grad = dirty_out[key].grad
        assert grad.any() and not grad[~dirty_out["tgt_mask"]].any()
    assert not dirty_out["log_duration"].grad[~dirty_out["src_mask"]].any()


GMM_GLOBAL = ModelConfig(prosody=Prosody(type="gmm", use_global=True))


def _with_mixtures(batch: Batch) -> dict:
    out = _outputs(batch)
    # one standard-normal component per segment: NLL = sum_d (x_d^2 / 2 + log(2 pi) / 2)
    out["prosody_target"] = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [50.0, 50.0]]])
    out["seg_mask"] = torch.tensor([[True, True], [True, False]])
    out["gmm_logits"] = torch.zeros(2, 2, 1)
    out["gmm_means"] = torch.zeros(2, 2, 1, 2)
    out["gmm_log_scales"] = torch.zeros(2, 2, 1, 2)
    out["global_prosody_target"] = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    out["global_gmm_logits"] = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    out["global_gmm_means"] = torch.zeros(2, 2, 2)
    out["global_gmm_log_scales"] = torch.zeros(2, 2, 2)
    return out


def test_mixture_terms_are_masked_mean_nll_and_weighted():
    batch = _batch()
    out = _with_mixtures(batch)
    weights = Loss(beta=0.1, g_beta=0.3)
    total, terms = VCLoss(weights, GMM_GLOBAL)(out, batch)
    c = math.log(2 * math.pi)  # two dimensions, half each
    want_gmm = np.mean([0.5 + c, 2.0 + c, 1.0 + c])  # the padded segment is ignored
    want_global = np.mean([c, 2.0 + c])  # both components identical, any weights
    assert terms["gmm"].item() == pytest.approx(want_gmm, rel=1e-6)
    assert terms["global_gmm"].item() == pytest.approx(want_global, rel=1e-6)
    base = _reference(out, batch, weights)["total"]
    assert total.item() == pytest.approx(base + 0.1 * want_gmm + 0.3 * want_global, rel=1e-5)


def test_mixture_targets_are_detached():
    batch = _batch()
    out = _with_mixtures(batch)
    out["prosody_target"].requires_grad_(True)
    out["gmm_means"].requires_grad_(True)
    _, terms = VCLoss(Loss(), GMM_GLOBAL)(out, batch)
    terms["gmm"].backward()
    assert out["prosody_target"].grad is None and out["gmm_means"].grad.any()
