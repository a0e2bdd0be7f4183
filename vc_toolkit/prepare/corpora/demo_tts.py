"""The text demo corpus: one espeak-ng voice reading the Harvard sentences, with the text.

Synthesised like the parallel demo (:mod:`vc_toolkit.prepare.corpora.synth`: a freshly
forked child per file, seeded from the file's key), with the key the demo uses for its
target side, so with the same voice, sentence list and room the files are byte-identical
to the ``demo`` spk's target files. Long sentences get a pause at the middle word break
(``voice.pause_ms``); the recorded transcript marks it with a comma, so text and audio
agree on where the speaker pauses.

With ``phone_times``, espeak-ng's own phoneme events of each synthesis are written
next to the audio as ``<sentence>.tsv`` (``start end phone word``, seconds in the
written file; see :func:`~vc_toolkit.prepare.corpora.synth.phone_rows`); stage 0 copies
them to ``data/<SPK>/phone_times/<utt>.tsv``, the reference for scoring learned alignments.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vc_toolkit.config.core import to_dict
from vc_toolkit.config.text import DemoTtsCorpus
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import Prepared, Utterance
from vc_toolkit.prepare.corpora.demo import GENERATOR_VERSION
from vc_toolkit.prepare.corpora.synth import Room, SynthJob, read_sentences, synthesise

MARK = ","
"""What the transcript puts at the inserted pause."""


def corpus_dir(layout: Layout, corpus: DemoTtsCorpus, text_path: Path) -> Path:
    """Folder of the generated audio; one per (sentence file, voice, room) combination."""
    key = json.dumps(
        {
            "text": hashlib.sha256(text_path.read_bytes()).hexdigest(),
            "voice": to_dict(corpus.voice),
            "room": [corpus.pause_min_words, corpus.pad_ms, corpus.noise_dbfs],
            "generator": GENERATOR_VERSION,
        },
        sort_keys=True,
    )
    return layout.corpora() / f"demo_tts-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def spoken_text(text: str, pause_ms: int, min_words: int) -> str:
    """``text`` with a comma where :func:`~vc_toolkit.prepare.corpora.synth.with_pause`
    puts its pause (after the word before the middle), unless punctuation is there already.

    Example:
        >>> spoken_text("one two three four", 300, 4), spoken_text("one two; three four", 300, 4)
        ('one two, three four', 'one two; three four')
        >>> spoken_text("one two three four", 0, 4)
        'one two three four'
    """
    words = text.split()
    if len(words) >= min_words and pause_ms > 0:
        mid = len(words) // 2
        if words[mid - 1][-1].isalnum():
            words[mid - 1] += MARK
    return " ".join(words)


def prepare(corpus: DemoTtsCorpus, layout: Layout, nj: int = 2) -> Prepared:
    """Synthesise (or reuse) the sentences and return them with their transcripts."""
    text_path = layout.resolve(corpus.text)
    sentences = read_sentences(text_path, corpus.num_utts, corpus.first)
    out = corpus_dir(layout, corpus, text_path)
    room = Room(corpus.pause_min_words, tuple(corpus.pad_ms), corpus.noise_dbfs)
    jobs, utts = [], []
    for sentence, text in sentences:
        wav = out / "wav" / f"{sentence}.wav"
        times = out / "phone_times" / f"{sentence}.tsv" if corpus.phone_times else None
        # the key of the demo's target side: same voice and room give the same bytes
        jobs.append(SynthJob(f"{sentence}/tgt", text, corpus.voice, room, wav, times))
        spoken = spoken_text(text, corpus.voice.pause_ms, corpus.pause_min_words)
        utts.append(Utterance(sentence, wav, corpus.speaker, text=spoken, phone_times=times))
    synthesise(jobs, nj, "synthesising demo_tts corpus")
    return Prepared(utterances=utts, candidates=[])
