"""The input audio a spk was frozen with: content hashes, cached; changes named; new files noticed.

A spk's fingerprint holds a SHA-256 of every listed file's content (recorded at stage 0,
cached by path, size and modification time in ``dump/<SPK>/input_hashes.json``), so a
file changed in place without changing its size is refused by stages 0 and 1 too.
Spks frozen before content was recorded keep working: their content is recorded at the
next run, and their fingerprint stays what it was.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SPK, copy_root, make_wav, write_conf

from vc_toolkit import io as vc_io
from vc_toolkit.errors import UserError
from vc_toolkit.io import read_scp
from vc_toolkit.paths import Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.preprocess import stage as preprocess

SPLITS = ("train", "dev", "eval")


def _listed(root: Path, spk: str, side: str = "tgt") -> dict[str, str]:
    out = {}
    for split in SPLITS:
        out.update(read_scp(root / f"data/{spk}/{split}/{side}.scp"))
    return out


def _reverse_in_place(path: Path) -> None:
    """The same samples backwards: same format, same size, other content."""
    x, sr = sf.read(path, dtype="int16")
    size = path.stat().st_size
    info = sf.info(path)
    path.unlink()  # copies of a root may share the corpus: replace the file, do not edit it
    sf.write(path, x[::-1], sr, subtype=info.subtype)
    assert path.stat().st_size == size


def _no_extraction(monkeypatch) -> None:
    def boom(*_):
        raise AssertionError("nothing must be extracted")

    monkeypatch.setattr(preprocess, "_extract_all", boom)


def test_audio_changed_in_place_is_refused_by_stages_0_and_1(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    listed = _listed(root, "tiny")["harvard_002"]
    _reverse_in_place(root / listed)
    for stage in (prepare.run, preprocess.run):
        with pytest.raises(UserError) as info:
            stage("tiny", Layout(root))
        message = str(info.value)
        assert "input audio of spk 'tiny' changed" in message and "--force" in message
        assert f"1 changed: {listed}" in message and "sizes differ" not in message

    summary = preprocess.run("tiny", Layout(root), nj=1, force=True)
    assert summary["pairs"] == 10
    assert preprocess.run("tiny", Layout(root), nj=1) == summary  # current again: a no-op


def test_changed_added_and_removed_files_are_named(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    tgt = _listed(root, "tiny")
    _reverse_in_place(root / tgt["harvard_004"])
    (root / tgt["harvard_006"]).unlink()
    scp = root / "data/tiny/train/tgt.scp"  # a list edited by hand
    extra = Path(tgt["harvard_001"]).with_name("extra.wav")
    make_wav(root / extra)
    scp.write_text(scp.read_text() + f"extra {extra}\n")
    with pytest.raises(UserError) as info:
        preprocess.run("tiny", Layout(root), nj=1)
    message = str(info.value)
    assert f"1 changed: {tgt['harvard_004']}" in message
    assert f"1 added: {extra}" in message
    assert f"1 removed: {tgt['harvard_006']}" in message


def _legacy(root: Path, spk: str) -> dict:
    """Rewrite the spk's records as the toolkit wrote them before content hashes."""
    dump = root / "dump" / spk
    fp = json.loads((dump / "fingerprint.json").read_text())
    for key in ("content_hash", "content"):
        fp.pop(key)
    c, f = fp["config_hash"], fp["files_hash"]
    fp["fingerprint"] = hashlib.sha256(f"{c}:{f}".encode()).hexdigest()[:16]
    (dump / "fingerprint.json").write_text(json.dumps(fp, indent=2) + "\n")
    state = json.loads((dump / "features.json").read_text())
    (dump / "features.json").write_text(json.dumps({**state, "fingerprint": fp["fingerprint"]}))
    (dump / "input_hashes.json").unlink(missing_ok=True)
    return fp


def test_a_spk_frozen_before_content_hashes_keeps_working(
    tiny_features_root, tmp_path, monkeypatch, caplog
):
    root = copy_root(tiny_features_root, tmp_path)
    old = _legacy(root, "tiny")
    _no_extraction(monkeypatch)
    caplog.set_level("INFO")
    prepare.run("tiny", Layout(root))
    preprocess.run("tiny", Layout(root), nj=1)
    assert caplog.text.count("nothing to do") == 2
    fp = json.loads((root / "dump/tiny/fingerprint.json").read_text())
    assert fp["fingerprint"] == old["fingerprint"]  # trained tags still match their features
    assert len(fp["content"]) == 20 and fp["content_hash"]

    listed = _listed(root, "tiny")["harvard_002"]  # from now on, content is compared
    _reverse_in_place(root / listed)
    with pytest.raises(UserError, match=f"1 changed: {listed}"):
        preprocess.run("tiny", Layout(root), nj=1)


def test_a_legacy_spk_whose_sizes_changed_is_still_refused(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    _legacy(root, "tiny")
    path = root / _listed(root, "tiny")["harvard_003"]
    x, sr = sf.read(path)
    path.unlink()
    sf.write(path, np.concatenate([x, x[:800]]), sr)
    with pytest.raises(UserError, match="input audio of spk 'tiny' changed .*--force"):
        preprocess.run("tiny", Layout(root), nj=1)


def test_content_is_hashed_once_and_then_read_from_the_cache(
    tiny_features_root, tmp_path, monkeypatch
):
    root = copy_root(tiny_features_root, tmp_path)
    hashed: list[str] = []
    real = vc_io.sha256_file

    def counting(path):
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(vc_io, "sha256_file", counting)
    preprocess.run("tiny", Layout(root), nj=1)
    preprocess.run("tiny", Layout(root), nj=1)
    assert len(hashed) <= 20  # a copied root hashes its files once, then never again
    assert (root / "dump/tiny/input_hashes.json").is_file()
    hashed.clear()
    listed = _listed(root, "tiny")["harvard_005"]
    _reverse_in_place(root / listed)
    with pytest.raises(UserError):
        preprocess.run("tiny", Layout(root), nj=1)
    assert hashed == [Path(listed).name]


def test_new_files_under_the_corpus_folders_are_reported(root, tmp_path, caplog):
    src, tgt = tmp_path / "corpus/src", tmp_path / "corpus/tgt"
    for k, u in enumerate("abcdef"):
        make_wav(src / f"{u}.wav", seed=k)
        make_wav(tgt / f"{u}.wav", seed=10 + k)
    spk = {
        **TINY_SPK,
        "corpus": {"name": "parallel", "src_wav_root": str(src), "tgt_wav_root": str(tgt)},
        "split": {"dev": 1, "eval": 1},
    }
    write_conf(root, "spk", "mine", spk)
    prepare.run("mine", Layout(root))
    make_wav(src / "later" / "g.wav", seed=20)
    make_wav(tgt / "g.wav", seed=21)
    caplog.set_level("INFO")
    prepare.run("mine", Layout(root))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "2 new files" in warnings[0], warnings
    assert str(src / "later/g.wav") in warnings[0] and str(tgt / "g.wav") in warnings[0]
    assert "nothing to do" in caplog.text
