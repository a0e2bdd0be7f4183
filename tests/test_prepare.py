"""Stage 0: demo corpus, bring-your-own parallel folders, splits and spk pinning."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SPK, make_wav, write_conf

from vc_toolkit.config import ConfigError
from vc_toolkit.config.pin import ConfigChangedError
from vc_toolkit.config.spk import Split
from vc_toolkit.io import read_scp
from vc_toolkit.paths import Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.prepare.corpora import CorpusError


def _digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.wav"))
    }


def test_demo_generation_is_byte_identical_across_runs(tmp_path):
    """Two independent processes generate the same bytes (espeak keeps state between calls)."""
    from conftest import new_root

    digests = []
    for k in range(2):
        root = new_root(tmp_path / str(k))
        write_conf(root, "spk", "d", {**TINY_SPK, "corpus": {"name": "demo", "num_utts": 5}})
        cmd = [
            sys.executable,
            "-m",
            "vc_toolkit.bin.prepare_data",
            "--spk",
            "d",
            "--root",
            str(root),
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        digests.append(_digest(root / "data" / "_corpora"))
    assert len(digests[0]) == 10
    assert digests[0] == digests[1]


def test_demo_pairs_differ_in_voice_and_rate(tiny_root):
    src = read_scp(tiny_root / "data/tiny/train/src.scp")
    tgt = read_scp(tiny_root / "data/tiny/train/tgt.scp")
    assert list(src) == list(tgt)
    utt = next(iter(src))
    x, sr = sf.read(tiny_root / src[utt])
    y, _ = sf.read(tiny_root / tgt[utt])
    assert sr == 22050
    assert len(y) > 1.15 * len(x)  # the target voice speaks more slowly
    assert np.abs(x).max() > 0.05 and np.abs(y).max() > 0.05


def test_split_is_deterministic_and_disjoint():
    ids = [f"u{i:03d}" for i in range(50)]
    a = prepare.make_split(ids, Split(dev=5, eval=7, seed=3))
    assert a == prepare.make_split(list(reversed(ids)), Split(dev=5, eval=7, seed=3))
    assert a != prepare.make_split(ids, Split(dev=5, eval=7, seed=4))
    assert sorted(a["train"] + a["dev"] + a["eval"]) == ids
    assert (len(a["dev"]), len(a["eval"])) == (5, 7)


def test_rerun_is_noop_and_keeps_split(tiny_root, caplog):
    before = {p: p.read_text() for p in (tiny_root / "data/tiny").rglob("*.scp")}
    caplog.set_level("INFO")
    prepare.run("tiny", Layout(tiny_root))
    assert "nothing to do" in caplog.text
    assert before == {p: p.read_text() for p in (tiny_root / "data/tiny").rglob("*.scp")}
    counts = json.loads((tiny_root / "data/tiny/prepared.json").read_text())["counts"]
    assert counts == {"train": 6, "dev": 2, "eval": 2}


def _parallel_corpus(base):
    src, tgt = base / "src", base / "tgt"
    make_wav(src / "a.wav", sr=16000)
    make_wav(tgt / "a.wav", sr=44100, channels=2)  # stereo, other rate
    make_wav(src / "b.wav", sr=22050, subtype="PCM_24")
    make_wav(tgt / "sub" / "b.wav", sr=8000, subtype="FLOAT")  # nested folder, float
    make_wav(src / "c.wav", sr=48000, subtype="PCM_32")
    make_wav(tgt / "c.wav", sr=16000, subtype="DOUBLE")
    for u in ("d", "e", "f"):
        make_wav(src / f"{u}.wav")
        make_wav(tgt / f"{u}.wav")
    make_wav(src / "only_src.wav")
    make_wav(tgt / "only_tgt.wav")
    (src / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    make_wav(tgt / "broken.wav")
    return src, tgt


def test_parallel_matches_odd_inputs(root, tmp_path):
    src, tgt = _parallel_corpus(tmp_path / "corpus")
    spk = {
        "corpus": {"name": "parallel", "src_wav_root": str(src), "tgt_wav_root": str(tgt)},
        "split": {"dev": 1, "eval": 1},
    }
    write_conf(root, "spk", "mine", spk)
    summary = prepare.run("mine", Layout(root))
    assert summary["counts"] == {"train": 4, "dev": 1, "eval": 1}
    assert summary["unmatched"] == 2 and summary["unreadable"] == 1
    listed = {}
    for split in ("train", "dev", "eval"):
        listed.update(read_scp(root / f"data/mine/{split}/tgt.scp"))
    assert sorted(listed) == ["a", "b", "c", "d", "e", "f"]
    assert listed["b"].endswith("sub/b.wav")
    report = (root / "data/mine/report.txt").read_text()
    assert "only_src.wav" in report and "only_tgt.wav" in report
    assert "broken" in report and "unreadable" in report


def test_parallel_missing_folder_is_one_clear_line(root, tmp_path):
    spk = {
        "corpus": {"name": "parallel", "src_wav_root": str(tmp_path / "nope"), "tgt_wav_root": "x"}
    }
    write_conf(root, "spk", "mine", spk)
    with pytest.raises(CorpusError, match=r"corpus.src_wav_root .*nope is not a folder"):
        prepare.run("mine", Layout(root))


def test_too_few_pairs_for_split(root, tmp_path):
    src, tgt = _parallel_corpus(tmp_path / "corpus")
    spk = {"corpus": {"name": "parallel", "src_wav_root": str(src), "tgt_wav_root": str(tgt)}}
    write_conf(root, "spk", "mine", spk)  # default split: 10 dev + 10 eval
    with pytest.raises(CorpusError, match="6 usable pairs.*leave no training data"):
        prepare.run("mine", Layout(root))
    assert not (root / "data/mine/train").exists()


def test_exclude_removes_ids(root, tmp_path):
    src, tgt = _parallel_corpus(tmp_path / "corpus")
    spk = {
        "corpus": {"name": "parallel", "src_wav_root": str(src), "tgt_wav_root": str(tgt)},
        "split": {"dev": 1, "eval": 1},
        "exclude": ["d", "zzz"],
    }
    write_conf(root, "spk", "mine", spk)
    prepare.run("mine", Layout(root))
    ids = [u for s in ("train", "dev", "eval") for u in read_scp(root / f"data/mine/{s}/src.scp")]
    assert "d" not in ids and len(ids) == 5
    assert "zzz" in (root / "data/mine/report.txt").read_text()


def test_changed_spk_is_refused_with_diff_and_force_rebuilds(root, tmp_path):
    src, tgt = _parallel_corpus(tmp_path / "corpus")
    spk = {
        "corpus": {"name": "parallel", "src_wav_root": str(src), "tgt_wav_root": str(tgt)},
        "split": {"dev": 1, "eval": 1},
    }
    write_conf(root, "spk", "mine", spk)
    prepare.run("mine", Layout(root))
    frozen = (root / "dump/mine/config.yaml").read_text()
    fp = json.loads((root / "dump/mine/fingerprint.json").read_text())
    assert fp["num_files"] == 12

    write_conf(root, "spk", "mine", {**spk, "trim": {"silence_thresh_t": -60}})
    with pytest.raises(ConfigChangedError) as info:
        prepare.run("mine", Layout(root))
    assert "trim.silence_thresh_t: -100.0 -> -60.0" in str(info.value)
    assert "--force" in str(info.value)
    assert (root / "dump/mine/config.yaml").read_text() == frozen  # nothing lost

    prepare.run("mine", Layout(root), force=True)
    assert "silence_thresh_t: -60.0" in (root / "dump/mine/config.yaml").read_text()
    fp2 = json.loads((root / "dump/mine/fingerprint.json").read_text())
    assert fp2["config_hash"] != fp["config_hash"] and fp2["files_hash"] == fp["files_hash"]


def test_note_change_is_not_a_config_change(root, tmp_path):
    src, tgt = _parallel_corpus(tmp_path / "corpus")
    spk = {
        "corpus": {"name": "parallel", "src_wav_root": str(src), "tgt_wav_root": str(tgt)},
        "split": {"dev": 1, "eval": 1},
    }
    write_conf(root, "spk", "mine", spk)
    prepare.run("mine", Layout(root))
    write_conf(root, "spk", "mine", {**spk, "note": "now with a note"})
    prepare.run("mine", Layout(root))  # no error


def test_cli_error_is_one_line(root):
    cmd = [
        sys.executable,
        "-m",
        "vc_toolkit.bin.prepare_data",
        "--spk",
        "nope",
        "--root",
        str(root),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: unknown spk 'nope'")
    assert len(out.stderr.strip().splitlines()) == 1


def test_real_corpus_recipes_fail_clearly_offline(root, tmp_path):
    write_conf(root, "spk", "jvs", {"corpus": {"name": "jvs", "root": str(tmp_path / "jvs_ver1")}})
    with pytest.raises(CorpusError, match="JVS .*not found .*no download URL"):
        prepare.run("jvs", Layout(root))
    spk = {
        "corpus": {
            "name": "jsut_jsss",
            "jsut_root": str(tmp_path / "jsut"),
            "jsut_url": "http://127.0.0.1:9/jsut_ver1.1.zip",
        }
    }
    write_conf(root, "spk", "js", spk)
    with pytest.raises(CorpusError, match="cannot download JSUT .*offline"):
        prepare.run("js", Layout(root))


def test_unknown_spk_is_config_error(root):
    with pytest.raises(ConfigError, match="unknown spk"):
        prepare.run("nope", Layout(root))


def test_a_truncated_file_is_reported_not_listed(root, tmp_path):
    src, tgt = _parallel_corpus(tmp_path / "corpus")
    data = (tgt / "e.wav").read_bytes()
    (tgt / "e.wav").write_bytes(data[: int(len(data) * 0.8)])  # a copy stopped short
    spk = {
        "corpus": {"name": "parallel", "src_wav_root": str(src), "tgt_wav_root": str(tgt)},
        "split": {"dev": 1, "eval": 1},
    }
    write_conf(root, "spk", "mine", spk)
    summary = prepare.run("mine", Layout(root))
    assert summary["counts"] == {"train": 3, "dev": 1, "eval": 1}
    listed = [
        u for s in ("train", "dev", "eval") for u in read_scp(root / f"data/mine/{s}/tgt.scp")
    ]
    assert "e" not in listed
    report = (root / "data/mine/report.txt").read_text()
    assert "e\t" + str(tgt / "e.wav") + "\ttruncated (" in report
