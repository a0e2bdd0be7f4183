"""The embedded demo corpus: Harvard sentences spoken by two espeak-ng voices.

The source is a "neutral" voice and the target a "character" voice that
differs in formants (voice variant), mean pitch, pitch range and speaking
rate, so spectra, F0 and durations all need converting. Nothing is
downloaded. Each utterance is synthesised in a freshly forked process because
libespeak-ng keeps synthesiser state between calls; this makes every file
byte-identical on every run and independent of which files already exist.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import zlib
from html import escape
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from vc_toolkit.config.core import to_dict
from vc_toolkit.config.spk import DemoCorpus, SpkConfig
from vc_toolkit.io import atomic_open
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import CorpusError, Pair, Prepared
from vc_toolkit.prepare.corpora.espeak import Espeak

#: bumped whenever synthesis changes what bytes a given config produces
GENERATOR_VERSION = 2


def read_sentences(path: Path, num: int) -> list[tuple[str, str]]:
    """First ``num`` ``id text`` lines of a sentence list."""
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
    if len(rows) < num:
        raise CorpusError(f"corpus.num_utts is {num} but {path} has only {len(rows)} sentences")
    return rows[:num]


def corpus_dir(layout: Layout, corpus: DemoCorpus, text_path: Path) -> Path:
    """Folder of the generated audio; one per (sentence file, voices) combination."""
    key = json.dumps(
        {
            "text": hashlib.sha256(text_path.read_bytes()).hexdigest(),
            "src": to_dict(corpus.src),
            "tgt": to_dict(corpus.tgt),
            "room": [corpus.pause_min_words, corpus.pad_ms, corpus.noise_dbfs],
            "generator": GENERATOR_VERSION,
        },
        sort_keys=True,
    )
    return layout.corpora() / f"demo-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


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


def add_room(wav: np.ndarray, sr: int, utt_id: str, side: str, corpus: DemoCorpus) -> np.ndarray:
    """Pad with silence and add a low noise floor, deterministically from the utterance id."""
    rng = np.random.default_rng(zlib.crc32(f"{utt_id}/{side}".encode()))
    lo, hi = corpus.pad_ms
    head, tail = (int(sr * rng.uniform(lo, hi) / 1000) for _ in range(2))
    x = np.concatenate([np.zeros(head), wav.astype(np.float64), np.zeros(tail)])
    if corpus.noise_dbfs is not None:
        x += rng.standard_normal(len(x)) * 32768.0 * 10 ** (corpus.noise_dbfs / 20)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _write_wav(path: Path, wav: np.ndarray, sr: int) -> None:
    with atomic_open(path, "wb") as f:
        sf.write(f, wav, sr, subtype="PCM_16", format="WAV")


def _synth_job(job: tuple) -> str:
    """Synthesise one side of one utterance (runs in a fresh child: see the module doc)."""
    utt_id, text, side, corpus, out = job
    tts = Espeak()
    tts.seed(zlib.crc32(f"{utt_id}/{side}".encode()))
    voice = corpus.src if side == "src" else corpus.tgt
    wav = tts.synth(with_pause(text, voice.pause_ms, corpus.pause_min_words), voice, ssml=True)
    if wav.size == 0:
        raise CorpusError(f"espeak-ng produced no audio for {utt_id} ({side})")
    wav = add_room(wav, tts.sample_rate, utt_id, side, corpus)
    _write_wav(out / side / f"{utt_id}.wav", wav, tts.sample_rate)
    return utt_id


def prepare(cfg: SpkConfig, layout: Layout, nj: int = 2) -> Prepared:
    """Synthesise (or reuse) the demo corpus and return its pairs."""
    corpus = cfg.corpus
    assert isinstance(corpus, DemoCorpus)
    text_path = layout.resolve(corpus.text)
    sentences = read_sentences(text_path, corpus.num_utts)
    out = corpus_dir(layout, corpus, text_path)
    (out / "src").mkdir(parents=True, exist_ok=True)
    (out / "tgt").mkdir(parents=True, exist_ok=True)
    todo = [
        (u, t, side, corpus, out)
        for u, t in sentences
        for side in ("src", "tgt")
        if not (out / side / f"{u}.wav").is_file()
    ]
    if todo:
        Espeak()  # initialise in the parent, synthesise only in fresh children
        ctx = mp.get_context("fork")
        with ctx.Pool(max(1, nj), maxtasksperchild=1) as pool:
            jobs = pool.imap_unordered(_synth_job, todo, chunksize=1)
            for _ in tqdm(jobs, total=len(todo), desc="synthesising demo corpus", unit="file"):
                pass
    (out / "text").write_text("".join(f"{u} {t}\n" for u, t in sentences), encoding="utf-8")
    return Prepared(
        pairs=[Pair(u, out / "src" / f"{u}.wav", out / "tgt" / f"{u}.wav") for u, _ in sentences]
    )
