"""Stage 1 as a whole: bad files reported not fatal, train-only statistics, no-op re-runs,
resume after SIGKILL, and refusal of a changed spk config or changed input audio."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SPK, copy_root, write_conf

from vc_toolkit.config.pin import ConfigChangedError
from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.errors import UserError
from vc_toolkit.features import extract, stats
from vc_toolkit.io import read_scp
from vc_toolkit.paths import Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.preprocess import stage as preprocess

SPLITS = ("train", "dev", "eval")


def _report(root: Path, spk: str) -> dict[str, dict]:
    lines = (root / f"dump/{spk}/report.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]
    return {r["utt_id"]: r for r in rows}


def _pairs(root: Path, spk: str) -> dict[str, tuple[Path, Path]]:
    out = {}
    for split in SPLITS:
        src = read_scp(root / f"data/{spk}/{split}/src.scp")
        tgt = read_scp(root / f"data/{spk}/{split}/tgt.scp")
        out.update({u: (root / src[u], root / tgt[u]) for u in src})
    return out


@pytest.fixture(scope="module")
def bad_corpus_root(tiny_root: Path, tmp_path_factory) -> Path:
    """A parallel-folder spk 'mixed' of the tiny demo pairs with three broken ones, after stage 1.

    harvard_003: target whose header reads (stage 0 lists it) but whose samples do not
    decode to audio (NaN, a damaged float file); harvard_005: all-silent source;
    harvard_007: target followed by two other target sentences (a misaligned pair far
    outside the corpus, though below ``filters.max_length_ratio``).
    """
    base = tmp_path_factory.mktemp("mixed")
    root = copy_root(tiny_root, base)
    pairs = _pairs(root, "tiny")
    corpus = base / "corpus"
    for side, index in (("src", 0), ("tgt", 1)):
        (corpus / side).mkdir(parents=True)
        for utt, files in pairs.items():
            (corpus / side / f"{utt}.wav").write_bytes(files[index].read_bytes())
    x, sr = sf.read(corpus / "src/harvard_005.wav")
    sf.write(corpus / "src/harvard_005.wav", np.zeros_like(x), sr)
    joined = np.concatenate([sf.read(pairs[u][1])[0] for u in ("harvard_001", "harvard_002")])
    x, sr = sf.read(corpus / "tgt/harvard_007.wav")
    sf.write(corpus / "tgt/harvard_007.wav", np.concatenate([x, joined]), sr)
    spk = {
        **TINY_SPK,
        "corpus": {
            "name": "parallel",
            "src_wav_root": str(corpus / "src"),
            "tgt_wav_root": str(corpus / "tgt"),
        },
        "filters": {"max_length_ratio": 10.0, "outlier_mad": 6.0},
    }
    broken = corpus / "tgt/harvard_003.wav"
    x, sr = sf.read(broken)
    x[len(x) // 3 :: 7] = np.nan
    sf.write(broken, x, sr, subtype="FLOAT")
    write_conf(root, "spk", "mixed", spk)
    prepare.run("mixed", Layout(root), nj=1)
    return root


def test_broken_pairs_are_reported_and_the_rest_is_kept(bad_corpus_root: Path, caplog):
    root = bad_corpus_root
    with caplog.at_level("INFO", logger="vc_toolkit"):
        summary = preprocess.run("mixed", Layout(root), nj=2)
    report = _report(root, "mixed")
    assert len(report) == 10
    assert report["harvard_003"]["reason"] == "unreadable"
    assert "tgt/harvard_003.wav" in report["harvard_003"]["detail"]
    assert report["harvard_005"]["reason"] == "silent"
    assert report["harvard_007"]["reason"] in ("outlier_cost", "outlier_ratio")
    dropped = {u for u, r in report.items() if r["status"] == "dropped"}
    assert dropped == {"harvard_003", "harvard_005", "harvard_007"}
    assert summary["kept"] == 7 and summary["dropped"] == 3
    reasons = summary["dropped_per_reason"]
    assert reasons.pop("unreadable") == 1 and reasons.pop("silent") == 1
    assert list(reasons.values()) == [1]  # the misaligned pair, by DTW cost or length ratio
    assert summary["audio_hours_kept"] > 0 and summary["trimmed_seconds"] > 0
    packed = {u for s in SPLITS for u in DumpSplit(root / f"dump/mixed/{s}").utt_ids}
    assert packed == set(report) - dropped
    assert "dropped 3 pairs" in caplog.text and "report.tsv" in caplog.text
    assert json.loads((root / "dump/mixed/summary.json").read_text())["kept"] == 7


def test_statistics_come_from_the_train_split_only(tiny_features_root: Path):
    dump_dir = tiny_features_root / "dump/tiny"
    saved = stats.load_stats(dump_dir / "stats.npz")
    train = DumpSplit(dump_dir / "train").utt_ids
    dev = DumpSplit(dump_dir / "dev").utt_ids
    assert train and dev

    def raw(ids):
        return (extract.load_raw(dump_dir / f"raw/{u}.npz") for u in ids)

    want = stats.compute_stats(raw(train))
    with_dev = stats.compute_stats(raw([*train, *dev]))
    for key in saved:
        np.testing.assert_array_equal(saved[key], want[key])
    assert not np.allclose(saved["tgt_mel_mean"], with_dev["tgt_mel_mean"])
    # packed features are normalised with those statistics, every split alike
    for split in SPLITS:
        ds = DumpSplit(dump_dir / split)
        for i, utt in enumerate(ds.utt_ids):
            packed = ds[i]["tgt_mel"]
            norm = stats.normalize(extract.load_raw(dump_dir / f"raw/{utt}.npz"), saved)
            np.testing.assert_allclose(packed, norm["tgt_mel"], rtol=1e-6, atol=1e-6)


def test_frame_counts_are_consistent_in_every_split(tiny_features_root: Path):
    for split in SPLITS:
        ds = DumpSplit(tiny_features_root / f"dump/tiny/{split}")
        for i in range(len(ds)):
            it = ds[i]
            ts, tt = len(it["src_mel"]), len(it["tgt_mel"])
            assert ts % 2 == 0 and tt % 2 == 0  # reduction factor 2
            assert all(len(it[f"src_{k}"]) == ts for k in ("lf0", "vuv", "energy"))
            assert all(len(it[f"tgt_{k}"]) == tt for k in ("lf0", "vuv", "energy"))
            assert len(it["duration"]) == ts // 2 and it["duration"].sum() == tt // 2
            assert (it["duration"] >= 0).all()


def test_rerun_of_a_complete_spk_extracts_nothing(tiny_features_root: Path, tmp_path, monkeypatch):
    root = copy_root(tiny_features_root, tmp_path)
    manifest = root / "dump/tiny/train/manifest.tsv"
    before = manifest.stat().st_mtime_ns

    def boom(*_):
        raise AssertionError("a complete spk must not extract again")

    monkeypatch.setattr(preprocess, "_extract_all", boom)
    start = time.perf_counter()
    summary = preprocess.run("tiny", Layout(root), nj=2)
    assert time.perf_counter() - start < 5  # no extraction, only reading the summary
    assert summary["kept"] == 10 and manifest.stat().st_mtime_ns == before


def _run_cli(root: Path, spk: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vc_toolkit.bin.preprocess", "--spk", spk, "--nj", "1"]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.Popen(
        [*cmd, "--root", str(root), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigkill_midway_then_rerun_extracts_only_what_is_missing(tiny_root, tmp_path, monkeypatch):
    # harvest is slow enough to stop the run after a few pairs
    spk = {**TINY_SPK, "feats": {**TINY_SPK["feats"], "pitch": {"method": "harvest"}}}
    roots = []
    for name in ("killed", "clean"):
        root = copy_root(tiny_root, tmp_path / name)
        write_conf(root, "spk", "slow", spk)
        prepare.run("slow", Layout(root), nj=1)
        roots.append(root)
    killed, clean = roots
    raw = killed / "dump/slow/raw"
    proc = _run_cli(killed, "slow")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(raw.glob("*.npz"))) < 2:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.stem for p in raw.glob("*.npz")}
    assert 2 <= len(done) < 10, "the run must be stopped midway"
    stamps = {u: (raw / f"{u}.npz").stat().st_mtime_ns for u in done}

    seen: list[str] = []
    extract_all = preprocess._extract_all
    monkeypatch.setattr(
        preprocess,
        "_extract_all",
        lambda jobs, nj: seen.extend(j[0] for j in jobs) or extract_all(jobs, nj),
    )
    preprocess.run("slow", Layout(killed), nj=1)
    assert set(seen) == set(_pairs(killed, "slow")) - done and len(seen) == 10 - len(done)
    assert {u: (raw / f"{u}.npz").stat().st_mtime_ns for u in done} == stamps
    assert not [p for p in raw.iterdir() if p.suffix not in (".npz", ".bad")]  # no temp files

    preprocess.run("slow", Layout(clean), nj=1)
    for split in SPLITS:
        a, b = DumpSplit(killed / f"dump/slow/{split}"), DumpSplit(clean / f"dump/slow/{split}")
        assert a.utt_ids == b.utt_ids
        for i in range(len(a)):
            for key, value in a[i].items():
                if isinstance(value, np.ndarray):
                    np.testing.assert_array_equal(value, b[i][key])


def test_changed_spk_config_is_refused_with_the_diff_and_force_rebuilds(
    tiny_features_root: Path, tmp_path
):
    root = copy_root(tiny_features_root, tmp_path)
    stats_bytes = (root / "dump/tiny/stats.npz").read_bytes()
    old_state = json.loads((root / "dump/tiny/features.json").read_text())
    write_conf(
        root, "spk", "tiny", {**TINY_SPK, "trim": {**TINY_SPK["trim"], "silence_thresh_t": -70}}
    )
    with pytest.raises(ConfigChangedError) as info:
        preprocess.run("tiny", Layout(root), nj=1)
    assert "trim.silence_thresh_t: -60.0 -> -70.0" in str(info.value)
    assert "--force" in str(info.value)
    assert (root / "dump/tiny/stats.npz").read_bytes() == stats_bytes  # nothing lost

    preprocess.run("tiny", Layout(root), nj=1, force=True)
    assert "silence_thresh_t: -70.0" in (root / "dump/tiny/config.yaml").read_text()
    state = json.loads((root / "dump/tiny/features.json").read_text())
    assert state["complete"] and state["fingerprint"] != old_state["fingerprint"]


def test_changed_input_audio_is_refused(tiny_features_root: Path, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    _, tgt = _pairs(root, "tiny")["harvard_002"]
    tgt.unlink()  # the corpus folder is shared by copies: replace the file, do not edit it
    x, sr = sf.read(_pairs(tiny_features_root, "tiny")["harvard_002"][1])
    sf.write(tgt, np.concatenate([x, x[:800]]), sr)
    with pytest.raises(UserError, match="input audio of spk 'tiny' changed .*--force"):
        preprocess.run("tiny", Layout(root), nj=1)


def test_stage1_needs_stage0_and_the_cli_error_is_one_line(root: Path):
    write_conf(root, "spk", "fresh", TINY_SPK)
    with pytest.raises(UserError, match=r"no stage-0 lists; run ./run.sh --stage 0"):
        preprocess.run("fresh", Layout(root))
    out = subprocess.run(
        [sys.executable, "-m", "vc_toolkit.bin.preprocess", "--spk", "nope", "--root", str(root)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: unknown spk 'nope'")
    assert len(out.stderr.strip().splitlines()) == 1


def test_report_and_messages_show_recipe_paths_relative_to_the_root(tiny_root: Path, tmp_path):
    root = copy_root(tiny_root, tmp_path)
    write_conf(root, "spk", "strict", {**TINY_SPK, "filters": {"min_seconds": 2.2}})
    prepare.run("strict", Layout(root), nj=1)
    summary = preprocess.run("strict", Layout(root), nj=1)
    assert summary["dropped_per_reason"].get("too_short")  # some pairs name their files
    text = (root / "dump/strict/report.tsv").read_text()
    assert "data/_corpora/" in text and str(root) not in text
    out = subprocess.run(
        [sys.executable, "-m", "vc_toolkit.bin.preprocess", "--spk", "nope", "--root", str(root)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "conf/spk/nope.yaml not found" in out.stderr
    assert str(root) not in out.stderr


def test_a_second_concurrent_stage1_run_is_refused_with_one_line(tiny_root, tmp_path):
    root = copy_root(tiny_root, tmp_path)
    spk = {**TINY_SPK, "feats": {**TINY_SPK["feats"], "pitch": {"method": "harvest"}}}
    write_conf(root, "spk", "slow", spk)
    prepare.run("slow", Layout(root), nj=1)
    first = _run_cli(root, "slow")
    try:
        raw = root / "dump/slow/raw"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(raw.glob("*.npz")):
            time.sleep(0.02)
        assert first.poll() is None, "the first run must still be extracting"
        second = _run_cli(root, "slow")
        _, err = second.communicate(timeout=120)
        assert first.poll() is None, "the second run must not wait for the first"
    finally:
        first.kill()
        first.wait()
    lines = err.decode().strip().splitlines()
    assert second.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith("error: spk 'slow'") and f"process {first.pid}" in lines[0]


def test_a_truncated_file_is_dropped_with_its_reason(tiny_features_root: Path, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    _, tgt = _pairs(root, "tiny")["harvard_004"]
    data = tgt.read_bytes()
    tgt.unlink()  # the corpus folder is shared by copies: replace the file, do not edit it
    tgt.write_bytes(data[: int(len(data) * 0.8)])
    summary = preprocess.run("tiny", Layout(root), nj=1, force=True)
    row = _report(root, "tiny")["harvard_004"]
    assert row["status"] == "dropped" and row["reason"] == "truncated"
    assert "header declares" in row["detail"] and "harvard_004.wav" in row["detail"]
    assert summary["dropped_per_reason"] == {"truncated": 1}
