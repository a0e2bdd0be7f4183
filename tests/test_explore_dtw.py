"""DTW features (feats.dtw.n_mels): stage-1 alignment, the DTW explorer, old spks stay pinned."""

from __future__ import annotations

import dataclasses

import numpy as np
import yaml
from test_explore_thresholds import make_root

from vc_toolkit.bin.explore_dtw import main
from vc_toolkit.config import load_spk, to_dict
from vc_toolkit.config.core import pinned_dict
from vc_toolkit.config.pin import check_frozen, config_hash
from vc_toolkit.features import dtw, extract, frontend, spectral
from vc_toolkit.paths import Layout
from vc_toolkit.preprocess.explore_dtw import COLUMNS, explore_dtw


def _pair(root):
    cfg = load_spk("x", root)
    return cfg, [root / f"wav/{side}/u1.wav" for side in ("src", "tgt")]


def test_dtw_features_are_the_mel_or_a_coarser_mel_of_the_same_band(tmp_path):
    root = make_root(tmp_path, n_utts=2)
    cfg, (src, _) = _pair(root)
    speech = frontend.load_speech(src, cfg)
    t = frontend.num_frames(speech, cfg)
    mel, _ = extract.mel_energy(speech, cfg, t)
    assert extract.dtw_features(speech, cfg, mel) is mel
    cfg.feats.dtw.n_mels = 6
    coarse = extract.dtw_features(speech, cfg, mel)
    want = spectral.log_mel_energy(
        speech.samples, cfg.sample_rate, dataclasses.replace(cfg.feats.mel, n_mels=6)
    )[0][:t]
    assert coarse.shape == (t, 6) and np.array_equal(coarse, want)


def test_stage1_durations_come_from_the_chosen_features(tmp_path):
    root = make_root(tmp_path, n_utts=2)
    cfg, (src, tgt) = _pair(root)
    cfg.filters.min_voiced_fraction = 0.0
    full = extract.extract_pair(src, tgt, cfg)
    cfg.feats.dtw.n_mels = 4
    coarse = extract.extract_pair(src, tgt, cfg)
    speech = [frontend.load_speech(p, cfg) for p in (src, tgt)]
    feats = [
        extract.dtw_features(s, cfg, extract.mel_energy(s, cfg, frontend.num_frames(s, cfg))[0])
        for s in speech
    ]
    want, _ = dtw.align_durations(*feats, cfg.reduction_factor)
    assert np.array_equal(coarse["duration"], want)
    assert np.array_equal(coarse["src_mel"], full["src_mel"])  # the model's features are unchanged
    assert coarse["duration"].sum() == full["duration"].sum()


def test_explorer_rows_outputs_and_plots(tmp_path, capsys):
    root = make_root(tmp_path, n_utts=3)
    rows = explore_dtw("x", Layout(root), [None, 8, 4], num_utts=3)
    assert [r["bands"] for r in rows] == ["all (20)", "8", "4"]
    assert [r["spk"] for r in rows] == ["*", "", ""]
    assert all(set(COLUMNS) == set(r) for r in rows)
    assert rows[0]["shift_ms"] == 0.0
    for r in rows:
        assert 0 <= r["zero"] <= 1 and 0 <= r["long"] <= 1 and r["cost"] > 0
    out = root / "exp/dtw/x"
    tsv = (out / "dtw.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == list(COLUMNS) and len(tsv) == 4
    assert len(list((out / "png").glob("*.png"))) == 3
    assert main(["--spk", "x", "--root", str(root), "--n_mels", "all", "5", "--no_plots"]) == 0
    printed = capsys.readouterr().out
    assert "all (20)" in printed and "dtw.tsv" in printed


def test_bad_band_choice_is_one_line(tmp_path, capsys):
    root = make_root(tmp_path, n_utts=2)
    assert main(["--spk", "x", "--root", str(root), "--n_mels", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: mel bands must be >= 1") and err.count("\n") == 1


def test_a_spk_frozen_before_feats_dtw_existed_is_unchanged(tmp_path):
    root = make_root(tmp_path, n_utts=2)
    cfg = load_spk("x", root)
    old = pinned_dict(cfg)  # what a spk frozen before the later keys existed holds
    assert "dtw" not in old["feats"] and "dtw" in to_dict(cfg)["feats"]
    frozen = tmp_path / "config.yaml"
    frozen.write_text(yaml.safe_dump(old))
    assert check_frozen(frozen, cfg, "x.yaml", False, "spk 'x'") == []
    assert config_hash(cfg) == config_hash(old)
    cfg.feats.dtw.n_mels = 20
    assert config_hash(cfg) != config_hash(old)
    assert check_frozen(frozen, cfg, "x.yaml", True, "spk 'x'") == [
        "feats.dtw.n_mels: (absent) -> 20"
    ]
