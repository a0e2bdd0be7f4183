"""The packed text dump: writer, memory-mapped reader, fixed durations."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from vc_toolkit.data.dump import DumpMissingError
from vc_toolkit.data.labels import Labels
from vc_toolkit.data.text_dump import (
    TextDumpSplit,
    is_text_dump,
    write_durations,
    write_text_split,
)


def _item(utt: str, t: int, n: int, seed: int, n_mels: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, 9, n)
    cut = max(1, n // 2)
    return {
        "utt_id": utt,
        "tokens": tokens,
        "tok_seg": np.array([cut, n - cut] if n - cut else [n]),
        "tgt_mel": rng.standard_normal((t, n_mels)).astype(np.float32),
        "tgt_lf0": rng.standard_normal(t).astype(np.float32),
        "tgt_vuv": (rng.random(t) > 0.5).astype(np.float32),
        "tgt_energy": rng.standard_normal(t).astype(np.float32),
        "head_seconds": 0.125 * seed,
    }


@pytest.fixture
def split(tmp_path):
    items = [_item("b", 8, 5, 1), _item("a", 4, 1, 2), _item("c", 12, 7, 3)]
    labels = {i["utt_id"]: Labels(i["utt_id"], "spk1", "spk1") for i in items}
    folder = tmp_path / "dump" / "x" / "train"
    write_text_split(folder, iter(items), reduction_factor=2, labels=labels)
    return folder, items


def test_reader_returns_every_item_as_written(split):
    folder, items = split
    ds = TextDumpSplit(folder)
    assert len(ds) == 3 and ds.utt_ids == ["b", "a", "c"] and ds.index_of("c") == 2
    assert ds.tgt_frames.tolist() == [8, 4, 12] and ds.token_counts.tolist() == [5, 1, 7]
    assert ds.head_seconds.tolist() == [0.125, 0.25, 0.375] and ds.reduction_factor == 2
    assert ds.labels["a"].tgt_speaker == "spk1"
    for i, want in enumerate(items):
        got = ds[i]
        assert got["utt_id"] == want["utt_id"] and "duration" not in got
        assert got["tokens"].dtype == np.int64 and got["tok_seg"].dtype == np.int64
        for key in ("tokens", "tok_seg", "tgt_mel", "tgt_lf0", "tgt_vuv", "tgt_energy"):
            np.testing.assert_array_equal(got[key], want[key])
    assert ds[-1]["utt_id"] == "c"
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(KeyError, match="not in"):
        ds.index_of("zz")
    again = pickle.loads(pickle.dumps(ds))  # DataLoader workers reopen the maps
    np.testing.assert_array_equal(again[2]["tgt_mel"], items[2]["tgt_mel"])


def test_fixed_durations_are_read_when_named_and_checked_when_written(split):
    folder, _ = split
    ds = TextDumpSplit(folder)
    durations = {"b": [1, 0, 1, 1, 1], "a": [2], "c": [0, 1, 1, 1, 1, 1, 1]}
    write_durations(folder, "align1", durations, ds)
    got = TextDumpSplit(folder, durations="align1")
    assert [got[i]["duration"].tolist() for i in range(3)] == list(durations.values())
    assert got[0]["duration"].dtype == np.int64
    with pytest.raises(ValueError, match="summing to 2"):
        write_durations(folder, "bad", {**durations, "a": [1]}, ds)
    with pytest.raises(DumpMissingError, match="vc-align"):
        TextDumpSplit(folder, durations="other")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tgt_mel": np.zeros((7, 3), np.float32)}, "differ in length"),
        (
            {
                key: np.zeros(7, np.float32) if key != "tgt_mel" else np.zeros((7, 3), np.float32)
                for key in ("tgt_mel", "tgt_lf0", "tgt_vuv", "tgt_energy")
            },
            "multiple of r",
        ),
        ({"tokens": np.array([1, 0, 2, 3, 4])}, "0 is padding"),
        ({"tok_seg": np.array([2, 2])}, "summing to 5"),
        ({"utt_id": "a b"}, "whitespace"),
    ],
)
def test_inconsistent_items_are_refused(tmp_path, change, message):
    item = {**_item("u", 8, 5, 0), **change}
    with pytest.raises(ValueError, match=message):
        write_text_split(tmp_path / "s", [item], reduction_factor=2)
    assert not (tmp_path / "s").exists()


def test_missing_or_damaged_splits_name_the_fix(split, tmp_path):
    folder, _ = split
    with pytest.raises(DumpMissingError, match="run stage 1"):
        TextDumpSplit(tmp_path / "nothing")
    (folder / "tokens.npy").write_bytes((folder / "tok_seg.npy").read_bytes())  # wrong row count
    with pytest.raises(DumpMissingError, match="tokens has"):
        TextDumpSplit(folder)


def test_is_text_dump_tells_text_spks_apart(tmp_path):
    assert not is_text_dump(tmp_path)
    (tmp_path / "symbols.json").write_text("{}")
    assert is_text_dump(tmp_path)
