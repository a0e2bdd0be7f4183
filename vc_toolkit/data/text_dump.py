"""The packed dump of one split of a text spk: token ids beside the recording's features.

Layout of ``dump/<SPK>/<split>/`` (same packing as :mod:`vc_toolkit.data.dump`)::

    manifest.tsv     header, then "utt_id tgt_frames n_tokens n_seg head_seconds" per utterance
    text_dump.json   {"kind": "text", "reduction_factor": r}
    labels.tsv       sentence and speaker (on both sides) per utterance
    tgt_mel.npy      (sum T, n_mels) float32
    tgt_lf0.npy      (sum T,) float32      tgt_vuv.npy (sum T,)     tgt_energy.npy (sum T,)
    tokens.npy       (sum N,) int32        symbol ids (dump/<SPK>/symbols.json), never 0
    tok_seg.npy      (sum K,) int32        tokens per segment (split after pause tokens)
    durations/<TAG>.npy  (sum N,) int32    optional: reduced frames per token (vc-align)

T is a multiple of the reduction factor r. Frame ``f`` of an utterance is centred at
``head_seconds + f * hop_length / sample_rate`` in its recording (``head_seconds``: the
silence trimmed at the start), which maps external timings (``data/<SPK>/phone_times``)
onto frames. The reader maps the arrays, so reading one item touches only its rows.

Example:
    >>> import tempfile, pathlib
    >>> split = pathlib.Path(tempfile.mkdtemp()) / "dump" / "x" / "train"
    >>> f = lambda *s: np.zeros(s, "f4")
    >>> item = dict(utt_id="u1", tokens=np.array([3, 1, 4, 2]), tok_seg=np.array([2, 2]),
    ...     tgt_mel=f(6, 3), tgt_lf0=f(6), tgt_vuv=f(6), tgt_energy=f(6), head_seconds=0.25)
    >>> write_text_split(split, [item], reduction_factor=2)
    >>> ds = TextDumpSplit(split)
    >>> len(ds), ds[0]["tokens"].tolist(), ds[0]["tgt_mel"].shape, ds.token_counts.tolist()
    (1, [3, 1, 4, 2], (6, 3), [4])
    >>> write_durations(split, "t", {"u1": [1, 0, 1, 1]}, ds)
    >>> TextDumpSplit(split, durations="t")[0]["duration"].tolist()
    [1, 0, 1, 1]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from vc_toolkit.data.dump import DumpMissingError, _NpyAppender, _swap
from vc_toolkit.data.labels import LABELS_FILE, Labels, read_labels, write_labels
from vc_toolkit.io import atomic_open, writing

FRAME_STREAMS = ("tgt_mel", "tgt_lf0", "tgt_vuv", "tgt_energy")
TOKEN_STREAMS = ("tokens",)
SEG_STREAMS = ("tok_seg",)
STREAMS = FRAME_STREAMS + TOKEN_STREAMS + SEG_STREAMS
MANIFEST = "manifest.tsv"
META = "text_dump.json"
HEADER = "utt_id\ttgt_frames\tn_tokens\tn_seg\thead_seconds"
SYMBOLS_FILE = "symbols.json"
DURATIONS = "durations"


def is_text_dump(dump_spk_dir: str | Path) -> bool:
    """Whether ``dump/<SPK>/`` was made from a text spk (it holds a symbol table)."""
    return (Path(dump_spk_dir) / SYMBOLS_FILE).is_file()


def _check_item(item: dict, r: int) -> tuple[int, int, int]:
    """Validate one item; returns ``(T, N, K)``."""
    name = item.get("utt_id", "?")
    missing = [k for k in ("utt_id", *STREAMS) if k not in item]
    if missing:
        raise ValueError(f"item {name}: missing {', '.join(missing)}")
    if not str(name) or any(c.isspace() for c in str(name)):
        raise ValueError(f"utterance id {name!r} must be non-empty and contain no whitespace")
    t, n, k = len(item["tgt_mel"]), len(item["tokens"]), len(item["tok_seg"])
    bad = [s for s in FRAME_STREAMS if len(item[s]) != t]
    if bad:
        raise ValueError(f"item {name}: {', '.join(bad)} differ in length from the mel")
    if t == 0 or t % r:
        raise ValueError(f"item {name}: {t} frames is not a positive multiple of r = {r}")
    if n == 0 or np.any(np.asarray(item["tokens"]) <= 0):
        raise ValueError(f"item {name}: tokens must be non-empty ids > 0 (0 is padding)")
    if k == 0 or int(np.sum(item["tok_seg"])) != n or np.any(np.asarray(item["tok_seg"]) <= 0):
        raise ValueError(f"item {name}: tok_seg must be positive counts summing to {n} tokens")
    return t, n, k


def write_text_split(
    split_dir: str | Path,
    items: Iterable[dict],
    reduction_factor: int,
    labels: Mapping[str, Labels] | None = None,
) -> None:
    """Pack normalised text items into ``split_dir`` (replacing it atomically).

    Args:
        split_dir: Destination, e.g. ``dump/<SPK>/train``.
        items: Dicts with ``utt_id``, the streams of :data:`STREAMS` and optionally
            ``head_seconds``, in the order to store them. Consumed once.
        reduction_factor: r of the spk (every T is a multiple of it).
        labels: Labels by utterance id, written as ``labels.tsv`` (None: no file).

    Raises:
        ValueError: an item is inconsistent, or an id repeats.
        DiskFullError: the disk filled up (the previous ``split_dir`` is left as it was).
    """
    split_dir = Path(split_dir)
    split_dir.parent.mkdir(parents=True, exist_ok=True)
    with writing(split_dir):
        prefix = f".{split_dir.name}."
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=split_dir.parent))
        try:
            stored = _write_into(tmp, items, reduction_factor)
            if labels is not None:
                missing = [u for u in stored if u not in labels]
                if missing:
                    raise ValueError(f"no labels for {len(missing)} items (e.g. {missing[0]})")
                write_labels(tmp / LABELS_FILE, {u: labels[u] for u in stored})
            meta = {"kind": "text", "reduction_factor": reduction_factor}
            (tmp / META).write_text(json.dumps(meta) + "\n", encoding="utf-8")
            os.chmod(tmp, 0o755)
            _swap(tmp, split_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _write_into(folder: Path, items: Iterable[dict], r: int) -> list[str]:
    files = {
        s: _NpyAppender(folder / f"{s}.npy", np.float32 if s in FRAME_STREAMS else np.int32)
        for s in STREAMS
    }
    lines, seen = [HEADER], set()
    try:
        for item in items:
            t, n, k = _check_item(item, r)
            utt = str(item["utt_id"])
            if utt in seen:
                raise ValueError(f"duplicate utterance id {utt!r}")
            seen.add(utt)
            for s in STREAMS:
                files[s].append(np.asarray(item[s]))
            lines.append(f"{utt}\t{t}\t{n}\t{k}\t{float(item.get('head_seconds', 0.0)):.6f}")
    finally:
        for s, appender in files.items():
            appender.close(default_tail=(0,) if s == "tgt_mel" else ())
    (folder / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [line.split("\t", 1)[0] for line in lines[1:]]


def write_durations(
    split_dir: str | Path, tag: str, durations: Mapping[str, Iterable[int]], ds: TextDumpSplit
) -> None:
    """Write fixed durations (reduced frames per token) as ``durations/<tag>.npy``.

    Args:
        split_dir: The split (``dump/<SPK>/<split>``).
        tag: Name of the alignment (the aligner's tag).
        durations: Per utterance id, (N,) reduced frames per token summing to T // r.
        ds: The split's reader (gives the stored order and lengths).

    Raises:
        ValueError: an utterance is missing or its durations do not fit.
    """
    rows = []
    for i, utt in enumerate(ds.utt_ids):
        if utt not in durations:
            raise ValueError(f"no durations for utterance {utt!r}")
        d = np.asarray(list(durations[utt]), dtype=np.int64)
        _check_durations(d, ds, i)
        rows.append(d.astype(np.int32))
    path = Path(split_dir) / DURATIONS / f"{tag}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        np.save(f, np.concatenate(rows) if rows else np.zeros(0, np.int32))


def _check_durations(d: np.ndarray, ds: TextDumpSplit, i: int) -> None:
    utt, n, t = ds.utt_ids[i], int(ds.token_counts[i]), int(ds.tgt_frames[i])
    if len(d) != n or np.any(d < 0) or int(d.sum()) != t // ds.reduction_factor:
        raise ValueError(
            f"utterance {utt}: durations ({len(d)} values, sum {int(d.sum())}) must be {n} "
            f"non-negative values summing to {t // ds.reduction_factor} reduced frames"
        )


class TextDumpSplit:
    """Reader of a packed text split; ``ds[i]`` is one item (dict of numpy arrays).

    Args:
        split_dir: ``dump/<SPK>/<split>``.
        durations: Name of fixed durations to add as ``duration`` (``durations/<name>.npy``,
            written by ``vc-align``); None: no durations.

    Attributes:
        utt_ids (list[str]): utterance ids in stored order.
        labels (dict[str, Labels]): speaker and sentence by utterance id.
        tgt_frames (np.ndarray): (U,) int64 frame counts T.
        token_counts (np.ndarray): (U,) int64 token counts N.
        n_seg (np.ndarray): (U,) int64 segment counts K.
        head_seconds (np.ndarray): (U,) float64 seconds trimmed at the start of each file.
        reduction_factor (int): r.

    Raises:
        DumpMissingError: the split (or the named durations) is missing or incomplete.
    """

    def __init__(self, split_dir: str | Path, durations: str | None = None):
        self.split_dir = Path(split_dir)
        spk = self.split_dir.parent.name or "<SPK>"
        fix = f"run stage 1 first: ./run.sh --stage 1 --stop_stage 1 --spk {spk}"
        manifest, meta = self.split_dir / MANIFEST, self.split_dir / META
        if not manifest.is_file() or not meta.is_file():
            raise DumpMissingError(f"{self.split_dir}: no packed text features ({META}); {fix}")
        missing = [s for s in STREAMS if not (self.split_dir / f"{s}.npy").is_file()]
        if missing:
            raise DumpMissingError(f"{self.split_dir}: incomplete, no {missing[0]}.npy; {fix}")
        self.reduction_factor = int(json.loads(meta.read_text())["reduction_factor"])
        self.utt_ids, counts, heads = _read_manifest(manifest, fix)
        self.tgt_frames, self.token_counts, self.n_seg = counts.T.copy()
        self.head_seconds = heads
        self.labels: dict[str, Labels] = read_labels(self.split_dir / LABELS_FILE, self.utt_ids)
        self.durations = durations
        self._fix = fix
        self._index = {u: i for i, u in enumerate(self.utt_ids)}
        self._off = {
            "frames": np.concatenate([[0], np.cumsum(self.tgt_frames)]),
            "tokens": np.concatenate([[0], np.cumsum(self.token_counts)]),
            "segs": np.concatenate([[0], np.cumsum(self.n_seg)]),
        }
        self._span = {
            **dict.fromkeys(FRAME_STREAMS, "frames"),
            "tokens": "tokens",
            "tok_seg": "segs",
            "duration": "tokens",
        }
        self._arrays: dict[str, np.ndarray] | None = None
        self._open()

    def _open(self) -> None:
        arrays = {s: np.load(self.split_dir / f"{s}.npy", mmap_mode="r") for s in STREAMS}
        if self.durations is not None:
            path = self.split_dir / DURATIONS / f"{self.durations}.npy"
            if not path.is_file():
                raise DumpMissingError(
                    f"{self.split_dir}: no durations '{self.durations}' ({path.name}); write "
                    "them with vc-align first"
                )
            arrays["duration"] = np.load(path, mmap_mode="r")
        for s, arr in arrays.items():
            rows = int(self._off[self._span[s]][-1])
            if len(arr) != rows:
                raise DumpMissingError(
                    f"{self.split_dir}: {s} has {len(arr)} rows, the manifest says {rows}; "
                    f"{self._fix}"
                )
        self._arrays = arrays

    def __len__(self) -> int:
        return len(self.utt_ids)

    def index_of(self, utt_id: str) -> int:
        """Position of ``utt_id``; ``KeyError`` naming the split if absent."""
        try:
            return self._index[utt_id]
        except KeyError:
            raise KeyError(f"utterance {utt_id!r} is not in {self.split_dir}") from None

    def __getitem__(self, i: int) -> dict:
        """Item ``i``: ``utt_id``, ``tokens`` (N,) int64, ``tgt_mel`` (T, n_mels),
        ``tgt_lf0``/``tgt_vuv``/``tgt_energy`` (T,) float32, ``tok_seg`` (K,) int64 and,
        with ``durations``, ``duration`` (N,) int64."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} utterances")
        i %= len(self)
        if self._arrays is None:
            self._open()
        item: dict = {"utt_id": self.utt_ids[i]}
        for s, arr in self._arrays.items():
            off = self._off[self._span[s]]
            x = np.array(arr[off[i] : off[i + 1]])
            item[s] = x.astype(np.int64) if x.dtype.kind == "i" else x
        return item

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = None  # reopened lazily in each DataLoader worker
        return state


def _read_manifest(path: Path, fix: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise DumpMissingError(f"{path}: not a text dump manifest; {fix}")
    ids, counts, heads = [], [], []
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) != 5:
            raise DumpMissingError(f"{path}:{lineno}: expected 5 tab-separated columns; {fix}")
        ids.append(parts[0])
        counts.append([int(p) for p in parts[1:4]])
        heads.append(float(parts[4]))
    return ids, np.asarray(counts, np.int64).reshape(-1, 3), np.asarray(heads, np.float64)
