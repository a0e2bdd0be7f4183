"""The packed dump of one split: one contiguous ``.npy`` per stream plus a manifest.

Layout of ``dump/<SPK>/<split>/``::

    manifest.tsv     header, then "utt_id src_frames tgt_frames n_seg" per utterance
    labels.tsv       sentence, speakers and emotions per utterance (vc_toolkit.data.labels)
    src_mel.npy      (sum Ts, n_mels) float32     tgt_mel.npy     (sum Tt, n_mels)
    src_lf0.npy      (sum Ts,) float32            tgt_lf0.npy     (sum Tt,)
    src_vuv.npy      (sum Ts,) float32            tgt_vuv.npy     (sum Tt,)
    src_energy.npy   (sum Ts,) float32            tgt_energy.npy  (sum Tt,)
    duration.npy     (sum Ts // r,) int32
    src_seg.npy      (sum K,) int32               tgt_seg.npy     (sum K,)

Utterance ``i`` occupies the rows between cumulative sums of the manifest's
counts (``r`` is recovered as ``sum Ts / len(duration)``). The reader maps the
arrays (``np.load(mmap_mode="r")``), so opening is instant and reading one item
touches only its rows. The writer streams items to disk (no corpus-sized
buffers) into a temporary directory that replaces the split at the end.

Example:
    >>> import tempfile, pathlib
    >>> split = pathlib.Path(tempfile.mkdtemp()) / "dump" / "x" / "train"
    >>> f = lambda *s: np.zeros(s, "f4")
    >>> item = dict(utt_id="u1", src_mel=f(4, 3), src_lf0=f(4), src_vuv=f(4), src_energy=f(4),
    ...     tgt_mel=f(6, 3), tgt_lf0=f(6), tgt_vuv=f(6), tgt_energy=f(6),
    ...     duration=np.array([1, 2]), src_seg=np.array([2]), tgt_seg=np.array([3]))
    >>> write_split(split, [item])
    >>> ds = DumpSplit(split)
    >>> len(ds), ds[0]["tgt_mel"].shape, ds[0]["duration"].tolist(), ds.index_of("u1")
    (1, (6, 3), [1, 2], 0)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from vc_toolkit.data.labels import LABELS_FILE, Labels, read_labels, write_labels
from vc_toolkit.errors import UserError
from vc_toolkit.io import writing

SRC_STREAMS = ("src_mel", "src_lf0", "src_vuv", "src_energy")
TGT_STREAMS = ("tgt_mel", "tgt_lf0", "tgt_vuv", "tgt_energy")
INT_STREAMS = ("duration", "src_seg", "tgt_seg")
STREAMS = SRC_STREAMS + TGT_STREAMS + INT_STREAMS
MANIFEST = "manifest.tsv"
HEADER = "utt_id\tsrc_frames\ttgt_frames\tn_seg"


class DumpMissingError(UserError, FileNotFoundError):
    """A split directory is missing or incomplete."""


class _NpyAppender:
    """Append rows to a ``.npy`` file, fixing the header's row count on close."""

    def __init__(self, path: Path, dtype: np.dtype):
        self.path, self.dtype, self.rows, self.tail = path, np.dtype(dtype), 0, None
        self.f = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.header_len = self._write_header()

    def _write_header(self) -> int:
        self.f.seek(0)
        shape = (self.rows, *(self.tail or ()))
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(self.f, {**header, "shape": shape})
        return self.f.tell()

    def append(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if self.tail is None:
            self.tail = x.shape[1:]
        elif x.shape[1:] != self.tail:
            raise ValueError(f"{self.path.name}: row shape {x.shape[1:]} != {self.tail}")
        self.f.write(x.tobytes())
        self.rows += len(x)

    def close(self, default_tail: tuple[int, ...] = ()) -> None:
        if self.tail is None:
            self.tail = default_tail
        end = self.f.tell()
        if self._write_header() != self.header_len:
            raise RuntimeError(f"{self.path.name}: .npy header changed size on rewrite")
        self.f.seek(end)
        self.f.close()


def _check_item(item: dict) -> tuple[int, int, int]:
    """Validate one item's stream lengths; returns ``(Ts, Tt, K)``."""
    name = item.get("utt_id", "?")
    missing = [k for k in ("utt_id", *STREAMS) if k not in item]
    if missing:
        raise ValueError(f"item {name}: missing {', '.join(missing)}")
    if any(c.isspace() for c in str(name)) or not str(name):
        raise ValueError(f"utterance id {name!r} must be non-empty and contain no whitespace")
    ts, tt = len(item["src_mel"]), len(item["tgt_mel"])
    n_dur, k = len(item["duration"]), len(item["src_seg"])
    bad = [s for s in SRC_STREAMS if len(item[s]) != ts]
    bad += [s for s in TGT_STREAMS if len(item[s]) != tt]
    if bad:
        raise ValueError(f"item {name}: {', '.join(bad)} differ in length from the mel")
    if n_dur == 0 or ts % n_dur or tt % (ts // n_dur):
        raise ValueError(f"item {name}: {n_dur} durations do not fit {ts} / {tt} frames")
    r = ts // n_dur
    if int(np.sum(item["duration"])) != tt // r:
        raise ValueError(f"item {name}: durations sum to {np.sum(item['duration'])}, not {tt // r}")
    if len(item["tgt_seg"]) != k or k == 0:
        raise ValueError(f"item {name}: src_seg and tgt_seg need the same non-zero length")
    if int(np.sum(item["src_seg"])) != ts // r or int(np.sum(item["tgt_seg"])) != tt // r:
        raise ValueError(f"item {name}: segment counts do not sum to the reduced lengths")
    return ts, tt, k


def write_split(
    split_dir: str | Path, items: Iterable[dict], labels: Mapping[str, Labels] | None = None
) -> None:
    """Pack normalised utterances into ``split_dir`` (replacing it atomically).

    Args:
        split_dir: Destination, e.g. ``dump/<SPK>/train``.
        items: Dicts with ``utt_id`` and the streams in :data:`STREAMS` (extra keys are
            ignored), in the order they should be stored. Consumed once.
        labels: Speaker/emotion labels by utterance id, written as ``labels.tsv`` with
            the rows of the stored utterances (None: no file; readers then fall back to
            :func:`~vc_toolkit.data.labels.legacy_labels`).

    Raises:
        ValueError: an item is inconsistent (lengths, duration/segment sums, reduction
            factor differing between items, duplicate id).
        DiskFullError: the disk filled up (the previous ``split_dir`` is left as it was).
    """
    split_dir = Path(split_dir)
    split_dir.parent.mkdir(parents=True, exist_ok=True)
    with writing(split_dir):
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{split_dir.name}.", suffix=".tmp", dir=split_dir.parent)
        )
        try:
            stored = _write_into(tmp, items)
            if labels is not None:
                missing = [u for u in stored if u not in labels]
                if missing:
                    raise ValueError(f"no labels for {len(missing)} items (e.g. {missing[0]})")
                write_labels(tmp / LABELS_FILE, {u: labels[u] for u in stored})
            os.chmod(tmp, 0o755)  # mkdtemp makes an owner-only directory
            _swap(tmp, split_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _write_into(folder: Path, items: Iterable[dict]) -> list[str]:
    files = {
        s: _NpyAppender(folder / f"{s}.npy", np.int32 if s in INT_STREAMS else np.float32)
        for s in STREAMS
    }
    lines, seen, r_seen = [HEADER], set(), None
    try:
        for item in items:
            ts, tt, k = _check_item(item)
            utt = str(item["utt_id"])
            r = ts // len(item["duration"])
            if utt in seen:
                raise ValueError(f"duplicate utterance id {utt!r}")
            if r_seen is not None and r != r_seen:
                raise ValueError(f"item {utt}: reduction factor {r} differs from earlier {r_seen}")
            seen.add(utt)
            r_seen = r
            for s in STREAMS:
                files[s].append(item[s])
            lines.append(f"{utt}\t{ts}\t{tt}\t{k}")
    finally:
        for s, appender in files.items():
            appender.close(default_tail=(0,) if s.endswith("_mel") else ())
    (folder / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [line.split("\t", 1)[0] for line in lines[1:]]


def _swap(new: Path, dest: Path) -> None:
    """Rename ``new`` to ``dest``; an existing ``dest`` is moved aside, then deleted."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _read_manifest(path: Path, fix: str) -> tuple[list[str], np.ndarray]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise DumpMissingError(f"{path}: unexpected header; {fix}")
    ids, counts = [], []
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) != 4:
            raise DumpMissingError(f"{path}:{lineno}: expected 4 tab-separated columns; {fix}")
        ids.append(parts[0])
        counts.append([int(p) for p in parts[1:]])
    return ids, np.asarray(counts, dtype=np.int64).reshape(-1, 3)


class DumpSplit:
    """Reader of a packed split; ``ds[i]`` is the dict :func:`vc_toolkit.data.batch.collate` takes.

    Args:
        split_dir: ``dump/<SPK>/<split>``.

    Attributes:
        utt_ids (list[str]): utterance ids in stored order.
        labels (dict[str, Labels]): speakers and emotions by utterance id (splits written
            without ``labels.tsv`` read as one-to-one ``src`` → ``tgt``).
        src_frames (np.ndarray): (N,) int64 source frame counts.
        tgt_frames (np.ndarray): (N,) int64 target frame counts.
        n_seg (np.ndarray): (N,) int64 segment counts.
        reduction_factor (int): frames per duration step.

    Raises:
        DumpMissingError: the split is missing or incomplete.
    """

    def __init__(self, split_dir: str | Path):
        self.split_dir = Path(split_dir)
        spk = self.split_dir.parent.name or "<SPK>"
        fix = f"run stage 1 first: ./run.sh --stage 1 --spk {spk}"
        manifest = self.split_dir / MANIFEST
        if not manifest.is_file():
            raise DumpMissingError(f"{self.split_dir}: no packed features ({MANIFEST}); {fix}")
        missing = [s for s in STREAMS if not (self.split_dir / f"{s}.npy").is_file()]
        if missing:
            raise DumpMissingError(f"{self.split_dir}: incomplete, no {missing[0]}.npy; {fix}")
        self.utt_ids, counts = _read_manifest(manifest, fix)
        self.labels: dict[str, Labels] = read_labels(self.split_dir / LABELS_FILE, self.utt_ids)
        self.src_frames, self.tgt_frames, self.n_seg = counts.T.copy()
        self._fix = fix
        self._index = {u: i for i, u in enumerate(self.utt_ids)}
        self._arrays: dict[str, np.ndarray] | None = None
        self._open()

    def _open(self) -> None:
        arrays = {s: np.load(self.split_dir / f"{s}.npy", mmap_mode="r") for s in STREAMS}
        total_src, total_tgt = int(self.src_frames.sum()), int(self.tgt_frames.sum())
        n_dur = len(arrays["duration"])
        r = total_src // n_dur if n_dur else 1
        if n_dur and total_src != r * n_dur:
            raise DumpMissingError(
                f"{self.split_dir}: duration.npy ({n_dur} rows) does not fit {total_src} "
                f"source frames; {self._fix}"
            )
        expected = {
            **dict.fromkeys(SRC_STREAMS, total_src),
            **dict.fromkeys(TGT_STREAMS, total_tgt),
            "duration": total_src // r,
            "src_seg": int(self.n_seg.sum()),
            "tgt_seg": int(self.n_seg.sum()),
        }
        for s, rows in expected.items():
            if len(arrays[s]) != rows:
                raise DumpMissingError(
                    f"{self.split_dir}: {s}.npy has {len(arrays[s])} rows, the manifest says "
                    f"{rows}; {self._fix}"
                )
        self.reduction_factor = r
        self._arrays = arrays
        self._src_off = np.concatenate([[0], np.cumsum(self.src_frames)])
        self._tgt_off = np.concatenate([[0], np.cumsum(self.tgt_frames)])
        self._dur_off = self._src_off // r
        self._seg_off = np.concatenate([[0], np.cumsum(self.n_seg)])

    def __len__(self) -> int:
        return len(self.utt_ids)

    def index_of(self, utt_id: str) -> int:
        """Position of ``utt_id``; ``KeyError`` naming the split if absent."""
        try:
            return self._index[utt_id]
        except KeyError:
            raise KeyError(f"utterance {utt_id!r} is not in {self.split_dir}") from None

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} utterances")
        i %= len(self)
        if self._arrays is None:
            self._open()
        a = self._arrays
        spans = {
            **dict.fromkeys(SRC_STREAMS, self._src_off),
            **dict.fromkeys(TGT_STREAMS, self._tgt_off),
            "duration": self._dur_off,
            "src_seg": self._seg_off,
            "tgt_seg": self._seg_off,
        }
        item = {"utt_id": self.utt_ids[i]}
        for s, off in spans.items():
            item[s] = np.array(a[s][off[i] : off[i + 1]])
        return item

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = None  # reopened lazily in each DataLoader worker
        return state
