"""Stage 1 of a many-speaker spk: labels in the dump, per-speaker statistics from train only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SPK, write_conf

from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.data.labels import read_labels
from vc_toolkit.features import extract, stats
from vc_toolkit.paths import SPLITS, Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.preprocess import stage as preprocess

F0 = {1: 110.0, 2: 170.0, 3: 240.0}


def _jvs_tree(base: Path) -> Path:
    """Three JVS-shaped speakers x 6 sentences; pitch by speaker, loudness by sentence."""
    root = base / "jvs_ver1"
    sr = 16000
    for k, f0 in F0.items():
        for s in range(1, 7):
            t = np.arange(int(sr * (0.9 + 0.05 * s))) / sr
            gain = 0.1 * s
            x = sum(gain / h * np.sin(2 * np.pi * f0 * (1 + 0.02 * s) * h * t) for h in range(1, 6))
            x = x + 0.002 * np.random.default_rng(10 * k + s).standard_normal(len(t))
            path = root / f"jvs{k:03d}/parallel100/wav24kHz16bit/VOICEACTRESS100_{s:03d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x, sr, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def many_root(tmp_path_factory) -> Path:
    from conftest import REPO  # noqa: F401  (conftest on the path)

    root = tmp_path_factory.mktemp("many")
    (root / "conf").mkdir()
    jvs = _jvs_tree(root)
    for name, mode in (("jvs3", "per_speaker"), ("jvs3_global", "global")):
        spk = {
            **TINY_SPK,
            "corpus": {"name": "jvs", "root": str(jvs), "speakers": ["*"]},
            "split": {"dev": 1, "eval": 1, "seed": 0},
            "stats": mode,
            "filters": {"outlier_mad": 0},
        }
        write_conf(root, "spk", name, spk)
        prepare.run(name, Layout(root))
        preprocess.run(name, Layout(root), nj=1)
    return root


def test_dump_splits_carry_the_labels_of_stage_0(many_root: Path):
    for split in SPLITS:
        ds = DumpSplit(many_root / f"dump/jvs3/{split}")
        want = read_labels(many_root / f"data/jvs3/{split}/labels.tsv")
        assert ds.utt_ids and set(ds.utt_ids) <= set(want)
        assert ds.labels == {u: want[u] for u in ds.utt_ids}
        for utt, lab in ds.labels.items():
            assert utt.startswith(f"{lab.src_speaker}__{lab.tgt_speaker}__")


def _expected_speaker_stats(dump_dir: Path, ids: list[str], labels: dict) -> dict:
    seen, sides = set(), []
    for u in ids:
        lab = labels[u]
        item = extract.load_raw(dump_dir / f"raw/{u}.npz")
        for side, spk in (("src", lab.src_speaker), ("tgt", lab.tgt_speaker)):
            if (spk, lab.sentence) not in seen:
                seen.add((spk, lab.sentence))
                sides.append((spk, side, item))
    return stats.compute_speaker_stats(sides)


def test_per_speaker_statistics_come_from_train_recordings_once(many_root: Path):
    dump_dir = many_root / "dump/jvs3"
    saved = stats.load_stats(dump_dir / "stats.npz")
    assert stats.stats_speakers(saved) == ["jvs001", "jvs002", "jvs003"]
    train, dev = DumpSplit(dump_dir / "train"), DumpSplit(dump_dir / "dev")
    want = _expected_speaker_stats(dump_dir, train.utt_ids, train.labels)
    for key, value in want.items():
        np.testing.assert_allclose(saved[key], value, rtol=1e-10)
    # each recording once: jvs001 speaks 4 train sentences, in 4 pairs as source and 4 as target
    frames = {
        lab.sentence: len(extract.load_raw(dump_dir / f"raw/{u}.npz")["src_mel"])
        for u, lab in train.labels.items()
        if lab.src_speaker == "jvs001"
    }
    assert len(frames) == 4 and int(saved["speaker:jvs001:frames"]) == sum(frames.values())
    # dev recordings (a louder sentence) would move the statistics
    with_dev = _expected_speaker_stats(
        dump_dir, [*train.utt_ids, *dev.utt_ids], {**train.labels, **dev.labels}
    )
    assert not np.allclose(saved["speaker:jvs001:mel_mean"], with_dev["speaker:jvs001:mel_mean"])
    # the speakers differ: per-speaker pitch statistics follow each speaker's F0
    means = [float(saved[f"speaker:jvs00{k}:lf0_mean"]) for k in F0]
    assert means == sorted(means) and np.exp(means[0]) < 130 < 150 < np.exp(means[1])


def test_each_pair_is_normalised_with_its_speakers_statistics(many_root: Path):
    dump_dir = many_root / "dump/jvs3"
    saved = stats.load_stats(dump_dir / "stats.npz")
    for split in SPLITS:
        ds = DumpSplit(dump_dir / split)
        for i, utt in enumerate(ds.utt_ids):
            lab = ds.labels[utt]
            raw = extract.load_raw(dump_dir / f"raw/{utt}.npz")
            norm = stats.normalize(raw, stats.pair_stats(saved, lab.src_speaker, lab.tgt_speaker))
            for key in ("src_mel", "tgt_mel", "src_lf0", "tgt_energy"):
                np.testing.assert_allclose(ds[i][key], norm[key], rtol=1e-6, atol=1e-6)
    # the same recording is normalised alike whichever side of a pair it is on
    train = DumpSplit(dump_dir / "train")
    by_id = {u: train[i] for i, u in enumerate(train.utt_ids)}
    a = next(u for u, lab in train.labels.items() if lab.src_speaker == "jvs002")
    lab = train.labels[a]
    b = f"{lab.tgt_speaker}__jvs002__{lab.sentence}"
    np.testing.assert_allclose(by_id[a]["src_mel"], by_id[b]["tgt_mel"], atol=1e-6)


def test_global_statistics_have_no_speaker_rows(many_root: Path):
    saved = stats.load_stats(many_root / "dump/jvs3_global/stats.npz")
    assert stats.stats_speakers(saved) == []
    per = stats.load_stats(many_root / "dump/jvs3/stats.npz")
    for key in ("src_mel_mean", "tgt_lf0_std"):
        np.testing.assert_array_equal(saved[key], per[key])  # global keys are the same


def test_stage_1_counts_pairs_and_speakers(many_root: Path):
    import json

    summary = json.loads((many_root / "dump/jvs3/summary.json").read_text())
    assert summary["stats"] == "per_speaker"
    assert summary["kept_per_pair"] == {f"jvs00{a}->jvs00{b}": 6 for a in F0 for b in F0 if a != b}
    assert summary["kept_per_speaker"] == {f"jvs00{k}": 6 for k in F0}
