"""Many espeak-ng voices reading the same Harvard sentences (the many-to-many demo).

Each entry of ``corpus.voices`` is a speaker (or a style of one: same speaker,
another emotion) with its own espeak-ng settings. Audio is cached per voice under
``data/_corpora/espeak-<hash>/<sentence>.wav``; the hash covers the sentence file,
the voice's settings and names, the room and the generator version, so a spk that
reuses a voice (or another range of sentences) reuses its files. Every ordered pair
of two different voices is a candidate pair.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vc_toolkit.config.core import to_dict
from vc_toolkit.config.spk import DemoMultiCorpus, NamedVoice
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import Prepared, Utterance
from vc_toolkit.prepare.corpora.demo import GENERATOR_VERSION
from vc_toolkit.prepare.corpora.synth import Room, SynthJob, read_sentences, synthesise


def voice_dir(layout: Layout, voice: NamedVoice, room: Room, text_path: Path) -> Path:
    """Folder of one voice's generated audio (one file per sentence id)."""
    key = json.dumps(
        {
            "text": hashlib.sha256(text_path.read_bytes()).hexdigest(),
            "voice": to_dict(voice),
            "room": [room.pause_min_words, list(room.pad_ms), room.noise_dbfs],
            "generator": GENERATOR_VERSION,
        },
        sort_keys=True,
    )
    return layout.corpora() / f"espeak-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def prepare(corpus: DemoMultiCorpus, layout: Layout, nj: int = 2) -> Prepared:
    """Synthesise (or reuse) every voice's sentences and label them."""
    text_path = layout.resolve(corpus.text)
    sentences = read_sentences(text_path, corpus.num_utts, corpus.first)
    room = Room(corpus.pause_min_words, tuple(corpus.pad_ms), corpus.noise_dbfs)
    jobs, utts = [], []
    for voice in corpus.voices:
        out = voice_dir(layout, voice, room, text_path)
        name = f"{voice.speaker}:{voice.emotion}"
        for sentence, text in sentences:
            path = out / f"{sentence}.wav"
            jobs.append(SynthJob(f"{sentence}/{name}", text, voice, room, path))
            utts.append(Utterance(sentence, path, voice.speaker, voice.emotion))
    synthesise(jobs, nj, f"synthesising {len(corpus.voices)} demo voices")
    return Prepared(utterances=utts, candidates=None)
