"""Shared espeak-ng generation of the demo corpora (``demo`` and ``demo_multi``).

libespeak-ng keeps synthesiser state between calls, so each file is synthesised in
a freshly forked child seeded from the file's key (see
:mod:`vc_toolkit.text.espeak`): every file is byte-identical on every
run and independent of which files already exist. The key also seeds the room
(silence padding and noise floor).
"""

from __future__ import annotations

import multiprocessing as mp
import zlib
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from vc_toolkit.config.voice import Voice
from vc_toolkit.io import atomic_open, atomic_write_text
from vc_toolkit.prepare.corpora.base import CorpusError
from vc_toolkit.text.espeak import Espeak, PhonemeEvent


@dataclass(frozen=True)
class Room:
    """Pauses, padding and noise applied to every generated file."""

    pause_min_words: int
    pad_ms: tuple[int, int]
    noise_dbfs: float | None


@dataclass(frozen=True)
class SynthJob:
    """One file to generate: ``key`` seeds espeak-ng and the room."""

    key: str
    text: str
    voice: Voice
    room: Room
    out: Path
    times: Path | None = None


def read_sentences(path: Path, num: int, first: int = 1) -> list[tuple[str, str]]:
    """``num`` ``id text`` lines of a sentence list, from the ``first`` (1-based) on."""
    if not path.is_file():
        raise CorpusError(
            f"demo sentence list {path} not found; set corpus.text to an 'id text' file"
        )
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise CorpusError(f"{path}:{lineno}: expected 'id text', got {line!r}")
        rows.append((parts[0], parts[1]))
    if len(rows) < first - 1 + num:
        raise CorpusError(
            f"corpus.num_utts is {num} from sentence {first} but {path} has only "
            f"{len(rows)} sentences; lower corpus.num_utts or corpus.first"
        )
    return rows[first - 1 : first - 1 + num]


def with_pause(text: str, pause_ms: int, min_words: int) -> str:
    """SSML for ``text`` with a pause at the word break nearest the middle of long sentences.

    Example:
        >>> with_pause("one two three four", 300, 4)
        '<speak>one two <break time="300ms"/> three four</speak>'
        >>> with_pause("one two three", 300, 4)
        '<speak>one two three</speak>'
    """
    words = escape(text).split()
    if len(words) >= min_words and pause_ms > 0:
        mid = len(words) // 2
        words = [*words[:mid], f'<break time="{pause_ms}ms"/>', *words[mid:]]
    return "<speak>" + " ".join(words) + "</speak>"


def room_pads(sr: int, key: str, room: Room) -> tuple[int, int, np.random.Generator]:
    """Samples of silence before and after the speech of ``key``, and the generator after
    drawing them (the noise is drawn from it next)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    lo, hi = room.pad_ms
    head, tail = (int(sr * rng.uniform(lo, hi) / 1000) for _ in range(2))
    return head, tail, rng


def add_room(wav: np.ndarray, sr: int, key: str, room: Room) -> np.ndarray:
    """Pad with silence and add a low noise floor, deterministically from ``key``."""
    head, tail, rng = room_pads(sr, key, room)
    x = np.concatenate([np.zeros(head), wav.astype(np.float64), np.zeros(tail)])
    if room.noise_dbfs is not None:
        x += rng.standard_normal(len(x)) * 32768.0 * 10 ** (room.noise_dbfs / 20)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _write_wav(path: Path, wav: np.ndarray, sr: int) -> None:
    with atomic_open(path, "wb") as f:
        sf.write(f, wav, sr, subtype="PCM_16", format="WAV")


def _synth_job(job: SynthJob) -> str:
    """Synthesise one file (runs in a fresh child: see the module doc)."""
    tts = Espeak()
    tts.seed(zlib.crc32(job.key.encode()))
    voice = job.voice
    wav = tts.synth(with_pause(job.text, voice.pause_ms, job.room.pause_min_words), voice, True)
    if wav.size == 0:
        raise CorpusError(f"espeak-ng produced no audio for {job.key}")
    if job.times is not None:
        head = room_pads(tts.sample_rate, job.key, job.room)[0]
        rows = phone_rows(tts.events, len(wav), head, tts.sample_rate)
        atomic_write_text(job.times, "".join("\t".join(r) + "\n" for r in rows))
    wav = add_room(wav, tts.sample_rate, job.key, job.room)
    _write_wav(job.out, wav, tts.sample_rate)
    return job.key


PHONE_TIMES_HEADER = ("start", "end", "phone", "word")


def phone_rows(events: list[PhonemeEvent], n: int, head: int, sr: int) -> list[tuple[str, ...]]:
    """Rows of a phone-times file: ``start end phone word`` (seconds in the written file).

    A phoneme lasts until the next one starts (the last until the end of the speech,
    ``n`` samples); pauses are named ``_`` with word ``-``. A phoneme espeak-ng merges into
    its neighbour (a final dark ``l``) keeps its zero-length row, so the rows list every
    phoneme it spoke; zero-length pauses are left out.

    Example:
        >>> ev = [PhonemeEvent(0, "h", 0), PhonemeEvent(100, "ə", 0), PhonemeEvent(300, "l", 0),
        ...       PhonemeEvent(300, "", 0), PhonemeEvent(400, "", 0)]
        >>> phone_rows(ev, 400, head=100, sr=1000)[1:]
        [('0.100000', '0.200000', 'h', '0'), ('0.200000', '0.400000', 'ə', '0'), \
('0.400000', '0.400000', 'l', '0'), ('0.400000', '0.500000', '_', '-')]
    """
    rows = [PHONE_TIMES_HEADER]
    starts = [min(e.sample, n) for e in events] + [n]
    for e, a, b in zip(events, starts, starts[1:], strict=False):
        if b < a or (b == a and not e.name):
            continue
        name, word = (e.name, str(max(e.word, 0))) if e.name else ("_", "-")
        rows.append((f"{(a + head) / sr:.6f}", f"{(b + head) / sr:.6f}", name, word))
    return rows


def synthesise(jobs: list[SynthJob], nj: int, desc: str) -> None:
    """Generate the files of ``jobs`` that do not exist yet, ``nj`` children at a time."""
    todo = [j for j in jobs if not j.out.is_file() or (j.times and not j.times.is_file())]
    if not todo:
        return
    for folder in sorted({p.parent for j in todo for p in (j.out, j.times) if p is not None}):
        folder.mkdir(parents=True, exist_ok=True)
    Espeak()  # initialise in the parent, synthesise only in fresh children
    ctx = mp.get_context("fork")
    with ctx.Pool(max(1, nj), maxtasksperchild=1) as pool:
        done = pool.imap_unordered(_synth_job, todo, chunksize=1)
        for _ in tqdm(done, total=len(todo), desc=desc, unit="file"):
            pass
