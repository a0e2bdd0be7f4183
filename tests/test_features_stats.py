"""Streaming statistics against numpy on the concatenated frames; normalise round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vc_toolkit.features import stats

M = 5


def item(t_src: int, t_tgt: int, seed: int, offset: float = 0.0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for side, t in (("src", t_src), ("tgt", t_tgt)):
        vuv = (rng.random(t) < 0.6).astype(np.float32)
        out[f"{side}_mel"] = (offset + rng.normal(size=(t, M)) * [1, 2, 3, 0.01, 0]).astype("f4")
        out[f"{side}_lf0"] = np.where(vuv > 0, rng.normal(5.0, 0.2, t), 0.0).astype("f4")
        out[f"{side}_vuv"] = vuv
        out[f"{side}_energy"] = rng.normal(-1.0, 0.5, t).astype("f4")
    out["duration"] = np.ones(t_src // 2, dtype=np.int32)
    return out


@pytest.mark.parametrize("offset", [0.0, -11.5, 1000.0])
def test_stats_match_numpy_on_concatenated_frames(offset: float) -> None:
    items = [item(30, 41, 0, offset), item(7, 3, 1, offset), item(55, 60, 2, offset)]
    st = stats.compute_stats(iter(items))
    for side in ("src", "tgt"):
        mel = np.concatenate([it[f"{side}_mel"] for it in items]).astype(np.float64)
        np.testing.assert_allclose(st[f"{side}_mel_mean"], mel.mean(0), rtol=1e-12, atol=1e-9)
        expected_std = np.maximum(mel.std(0), stats.STD_FLOOR)
        np.testing.assert_allclose(st[f"{side}_mel_std"], expected_std, rtol=1e-9)
        voiced = np.concatenate([it[f"{side}_lf0"][it[f"{side}_vuv"] > 0] for it in items])
        assert st[f"{side}_lf0_mean"] == pytest.approx(voiced.astype(np.float64).mean(), 1e-12)
        assert st[f"{side}_lf0_std"] == pytest.approx(voiced.astype(np.float64).std(), 1e-9)
        energy = np.concatenate([it[f"{side}_energy"] for it in items]).astype(np.float64)
        assert st[f"{side}_energy_mean"] == pytest.approx(energy.mean(), 1e-12)
        assert st[f"{side}_energy_std"] == pytest.approx(energy.std(), 1e-9)
        assert int(st[f"{side}_frames"]) == len(mel)
    assert st["src_mel_std"][4] == stats.STD_FLOOR  # the constant bin


def test_normalize_and_denormalize_round_trip() -> None:
    items = [item(20, 25, 3), item(33, 31, 4)]
    st = stats.compute_stats(items)
    norm = stats.normalize(items[0], st)
    assert norm["duration"] is items[0]["duration"]  # other keys pass through
    assert all(np.isfinite(norm[k]).all() for k in norm if k.endswith(("mel", "lf0", "energy")))
    assert norm["src_mel"].dtype == np.float32
    np.testing.assert_allclose(
        stats.denormalize_mel(norm["tgt_mel"], st), items[0]["tgt_mel"], rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        stats.denormalize_energy(norm["src_energy"], st, side="src"),
        items[0]["src_energy"],
        rtol=1e-5,
    )
    voiced = items[0]["tgt_vuv"] > 0
    back = stats.denormalize_lf0(norm["tgt_lf0"], st)
    np.testing.assert_allclose(back[voiced], items[0]["tgt_lf0"][voiced], rtol=1e-5)
    # non-continuous F0: unvoiced frames (log-F0 0) stay exactly 0
    assert np.all(norm["tgt_lf0"][~voiced] == 0)
    z = (items[0]["src_lf0"][0] - st["src_lf0_mean"]) / st["src_lf0_std"]
    assert norm["src_lf0"][0] == pytest.approx(z if items[0]["src_vuv"][0] else 0.0, abs=1e-5)


def test_continuous_lf0_is_normalised_on_every_frame() -> None:
    it = item(10, 10, 5)
    it["src_lf0"] = np.linspace(4.5, 5.5, 10).astype(np.float32)  # interpolated contour
    st = stats.compute_stats([it])
    norm = stats.normalize(it, st)
    expected = (it["src_lf0"] - st["src_lf0_mean"]) / st["src_lf0_std"]
    np.testing.assert_allclose(norm["src_lf0"], expected, rtol=1e-5)


def test_denormalize_tensors_keep_device_and_dtype() -> None:
    st = stats.compute_stats([item(12, 12, 6)])
    mel = torch.zeros(2, 3, M, dtype=torch.float32)
    out = stats.denormalize_mel(mel, st)
    assert out.dtype == torch.float32 and out.device == mel.device
    np.testing.assert_allclose(out[1, 2].numpy(), st["tgt_mel_mean"], rtol=1e-6)


def test_save_load_and_errors(tmp_path) -> None:
    st = stats.compute_stats([item(12, 12, 7)])
    stats.save_stats(tmp_path / "stats.npz", st)
    back = stats.load_stats(tmp_path / "stats.npz")
    assert set(back) == set(st)
    for k in st:
        np.testing.assert_array_equal(back[k], st[k])
    with pytest.raises(FileNotFoundError, match="run stage 1"):
        stats.load_stats(tmp_path / "none.npz")
    with pytest.raises(ValueError, match="no frames"):
        stats.compute_stats([])
