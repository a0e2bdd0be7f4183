"""Packed dump: write/read round trip, collate compatibility, atomic replace, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from vc_toolkit.data.batch import collate
from vc_toolkit.data.dump import STREAMS, DumpMissingError, DumpSplit, write_split

R, M = 2, 6


def make_item(utt: str, ts: int, tt: int, k: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    item = {"utt_id": utt}
    for side, t in (("src", ts), ("tgt", tt)):
        item[f"{side}_mel"] = rng.normal(size=(t, M)).astype(np.float32)
        item[f"{side}_lf0"] = rng.normal(size=t).astype(np.float32)
        item[f"{side}_vuv"] = (rng.random(t) > 0.5).astype(np.float32)
        item[f"{side}_energy"] = rng.normal(size=t).astype(np.float32)
    item["duration"] = np.bincount(rng.integers(0, ts // R, tt // R), minlength=ts // R)
    item["src_seg"] = split_counts(ts // R, k, rng)
    item["tgt_seg"] = split_counts(tt // R, k, rng)
    item["src_seconds"] = 1.5  # extra keys are ignored
    return item


def split_counts(n: int, k: int, rng) -> np.ndarray:
    cuts = np.sort(rng.choice(np.arange(1, n), size=k - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [n]]))


@pytest.fixture
def items() -> list[dict]:
    return [
        make_item("a", 10, 14, 2, 0),
        make_item("b", 4, 2, 1, 1),
        make_item("c", 30, 44, 3, 2),
    ]


def test_round_trip(tmp_path: Path, items) -> None:
    split = tmp_path / "dump" / "spk1" / "train"
    write_split(split, iter(items))
    ds = DumpSplit(split)
    assert len(ds) == 3 and ds.utt_ids == ["a", "b", "c"]
    assert ds.src_frames.tolist() == [10, 4, 30] and ds.tgt_frames.tolist() == [14, 2, 44]
    assert ds.reduction_factor == R and ds.index_of("c") == 2
    for i, ref in enumerate(items):
        got = ds[i]
        assert set(got) == {"utt_id", *STREAMS}
        assert got["utt_id"] == ref["utt_id"]
        for key in STREAMS:
            np.testing.assert_array_equal(got[key], ref[key])
            assert got[key].dtype == (
                np.int32 if key in ("duration", "src_seg", "tgt_seg") else np.float32
            )
    np.testing.assert_array_equal(ds[-1]["tgt_mel"], items[-1]["tgt_mel"])
    batch = collate([ds[0], ds[2]])
    assert tuple(batch.tgt_mel.shape) == (2, 44, M) and batch.n_seg.tolist() == [2, 3]
    manifest = (split / "manifest.tsv").read_text().splitlines()
    assert manifest == [
        "utt_id\tsrc_frames\ttgt_frames\tn_seg",
        "a\t10\t14\t2",
        "b\t4\t2\t1",
        "c\t30\t44\t3",
    ]
    assert np.load(split / "src_mel.npy").shape == (44, M)
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(KeyError, match="'zz' is not in"):
        ds.index_of("zz")


def test_pickled_reader_reopens(tmp_path: Path, items) -> None:
    write_split(tmp_path / "s" / "dev", items)
    ds = pickle.loads(pickle.dumps(DumpSplit(tmp_path / "s" / "dev")))
    np.testing.assert_array_equal(ds[1]["duration"], items[1]["duration"])


def test_rewrite_replaces_the_split(tmp_path: Path, items) -> None:
    split = tmp_path / "x" / "train"
    write_split(split, items)
    write_split(split, items[1:2])
    ds = DumpSplit(split)
    assert ds.utt_ids == ["b"] and len(np.load(split / "tgt_lf0.npy")) == 2
    assert sorted(p.name for p in split.parent.iterdir()) == ["train"]  # no temp dirs left
    write_split(split, [])
    assert len(DumpSplit(split)) == 0


def test_bad_items_leave_the_old_split(tmp_path: Path, items) -> None:
    split = tmp_path / "x" / "train"
    write_split(split, items)
    broken = dict(items[0], duration=items[0]["duration"][:-1])
    with pytest.raises(ValueError, match="durations"):
        write_split(split, [items[1], broken])
    dup = [items[0], items[0]]
    with pytest.raises(ValueError, match="duplicate"):
        write_split(split, dup)
    odd = dict(items[1], src_lf0=items[1]["src_lf0"][:-1])
    with pytest.raises(ValueError, match="src_lf0"):
        write_split(split, [odd])
    assert DumpSplit(split).utt_ids == ["a", "b", "c"]
    assert sorted(p.name for p in split.parent.iterdir()) == ["train"]


def test_missing_or_incomplete_split(tmp_path: Path, items) -> None:
    with pytest.raises(
        DumpMissingError, match=r"run stage 1 first: ./run.sh --stage 1 --spk myspk"
    ):
        DumpSplit(tmp_path / "dump" / "myspk" / "train")
    split = tmp_path / "dump" / "myspk" / "dev"
    write_split(split, items)
    (split / "tgt_energy.npy").unlink()
    with pytest.raises(DumpMissingError, match="tgt_energy.npy"):
        DumpSplit(split)
    write_split(split, items)
    (split / "manifest.tsv").write_text("utt_id\tsrc_frames\ttgt_frames\tn_seg\na\t10\t14\t2\n")
    with pytest.raises(DumpMissingError, match="does not fit 10 source frames"):
        DumpSplit(split)
    write_split(split, items)
    np.save(split / "tgt_seg.npy", np.ones(2, dtype=np.int32))
    with pytest.raises(DumpMissingError, match="tgt_seg.npy has 2 rows, the manifest says 6"):
        DumpSplit(split)
    assert isinstance(DumpMissingError("x"), FileNotFoundError)
