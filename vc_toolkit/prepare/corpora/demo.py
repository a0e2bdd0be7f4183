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
from pathlib import Path

from vc_toolkit.config.core import to_dict
from vc_toolkit.config.spk import DemoCorpus
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import Prepared, Side, match_by_stem
from vc_toolkit.prepare.corpora.synth import (
    Room,
    SynthJob,
    add_room,
    read_sentences,
    synthesise,
    with_pause,
)

#: bumped whenever synthesis changes what bytes a given config produces
GENERATOR_VERSION = 2


def corpus_dir(layout: Layout, corpus: DemoCorpus, text_path: Path) -> Path:
    """Folder of the generated audio; one per (sentence file, voices) combination."""
    key = json.dumps(
        {
            "text": hashlib.sha256(text_path.read_bytes()).hexdigest(),
            "src": to_dict(corpus.src),  # speaker names stay out: renaming keeps the audio
            "tgt": to_dict(corpus.tgt),
            "room": [corpus.pause_min_words, corpus.pad_ms, corpus.noise_dbfs],
            "generator": GENERATOR_VERSION,
        },
        sort_keys=True,
    )
    return layout.corpora() / f"demo-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def prepare(corpus: DemoCorpus, layout: Layout, nj: int = 2) -> Prepared:
    """Synthesise (or reuse) the demo corpus and return its one labeled pair of voices."""
    text_path = layout.resolve(corpus.text)
    sentences = read_sentences(text_path, corpus.num_utts)
    out = corpus_dir(layout, corpus, text_path)
    room = Room(corpus.pause_min_words, tuple(corpus.pad_ms), corpus.noise_dbfs)
    jobs = [
        SynthJob(f"{u}/{side}", t, getattr(corpus, side), room, out / side / f"{u}.wav")
        for u, t in sentences
        for side in ("src", "tgt")
    ]
    (out / "src").mkdir(parents=True, exist_ok=True)
    (out / "tgt").mkdir(parents=True, exist_ok=True)
    synthesise(jobs, nj, "synthesising demo corpus")
    (out / "text").write_text("".join(f"{u} {t}\n" for u, t in sentences), encoding="utf-8")
    ids = [u for u, _ in sentences]
    return match_by_stem(
        [out / "src" / f"{u}.wav" for u in ids],
        [out / "tgt" / f"{u}.wav" for u in ids],
        Side(corpus.src_speaker, corpus.src_emotion),
        Side(corpus.tgt_speaker, corpus.tgt_emotion),
    )


__all__ = ["GENERATOR_VERSION", "add_room", "corpus_dir", "prepare", "read_sentences", "with_pause"]
