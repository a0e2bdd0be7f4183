"""Schema of a dataset version (``conf/spk/<SPK>.yaml``).

A *spk* is a corpus plus everything that shapes its features: sample rate,
silence trimming, sentence segmentation, STFT/mel/pitch settings, the
reduction factor and the split. Changing any of these makes a new spk
(e.g. ``N2C_2`` → ``N2C_4``); the frozen copy in ``dump/<SPK>/config.yaml``
guards against silent changes (see :mod:`vc_toolkit.config.pin`).

A spk holds one corpus block (``corpus:``) or several (``corpora:``). Each labels
its audio with speakers and emotions: one-to-one recipes name their two sides
(``src_speaker``/``tgt_speaker``, default ``src``/``tgt``; JVS ids; ``jsut``/``jsss``),
many-speaker ones (``jvs`` with ``speakers``, ``labeled``, ``demo_multi``) pair every
two of their voices. ``pairs:`` restricts the ordered voice pairs (see
:mod:`vc_toolkit.prepare.pairs`). For example::

    corpora:
      - {name: parallel, src_wav_root: wav/alice, tgt_wav_root: wav/bob,
         src_speaker: alice, tgt_speaker: bob}
      - {name: labeled, root: wav/studio, labels_from: pattern,
         regex: '(?P<speaker>[^/]+)/(?P<emotion>[^/_]+)_(?P<sentence>\\d+)\\.wav'}
    pairs: [[alice, bob], [carol:happy, bob]]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vc_toolkit.config.core import added_later, opt, sub
from vc_toolkit.config.text import (
    DemoTtsCorpus,
    JsutCorpus,
    LjspeechCorpus,
    TextConfig,
    check_text_spk,
)
from vc_toolkit.config.voice import Voice, check_name, check_pad

NEUTRAL = "neutral"
"""Emotion of speech without a style label (same value as ``vc_toolkit.data.labels.NEUTRAL``)."""
LABEL_KEYS = ("speaker", "emotion", "sentence")


def _check_sides(corpus: object) -> None:
    for key in ("src_speaker", "tgt_speaker", "src_emotion", "tgt_emotion"):
        check_name(getattr(corpus, key), f"corpus.{key}")


@dataclass(kw_only=True)
class DemoCorpus:
    """Parallel corpus synthesised locally with espeak-ng (no download)."""

    name: Literal["demo"] = opt("demo", "corpus recipe: egs/demo")
    text: str = opt("egs/demo/harvard_sentences.txt", "sentence list, 'id text' per line")
    num_utts: int = opt(240, "number of sentences to synthesise (first N of the list)", min=3)
    src: Voice = opt(
        factory=lambda: Voice(variant="m3", pitch=40, range=30, rate=175, pause_ms=250),
        help="source voice",
    )
    tgt: Voice = opt(
        factory=lambda: Voice(variant="f2", pitch=70, range=85, rate=135, pause_ms=500),
        help="target voice",
    )
    pause_min_words: int = opt(
        7, "sentences with at least this many words get a pause at the middle word break", min=2
    )
    pad_ms: list[int] = opt(
        factory=lambda: [100, 400], help="[min, max] ms of silence added before and after speech"
    )
    noise_dbfs: float | None = opt(-75.0, "background noise level, dBFS RMS (null: none)", max=0)
    src_speaker: str = added_later(opt("src", "speaker name of the source side"))
    tgt_speaker: str = added_later(opt("tgt", "speaker name of the target side"))
    src_emotion: str = added_later(opt(NEUTRAL, "emotion/style name of the source side"))
    tgt_emotion: str = added_later(opt(NEUTRAL, "emotion/style name of the target side"))

    def validate(self) -> None:
        check_pad(self.pad_ms)
        _check_sides(self)


@dataclass(kw_only=True)
class ParallelCorpus:
    """Bring-your-own parallel corpus: two folders of wavs matched by file stem."""

    name: Literal["parallel"] = opt("parallel", "corpus recipe: egs/parallel")
    src_wav_root: str = opt(help="folder with the source speaker's wavs (searched recursively)")
    tgt_wav_root: str = opt(help="folder with the target speaker's wavs (searched recursively)")
    pattern: str = opt("*.wav", "glob of audio files under each root")
    src_speaker: str = added_later(opt("src", "speaker name of the source side"))
    tgt_speaker: str = added_later(opt("tgt", "speaker name of the target side"))
    src_emotion: str = added_later(opt(NEUTRAL, "emotion/style name of the source side"))
    tgt_emotion: str = added_later(opt(NEUTRAL, "emotion/style name of the target side"))

    def validate(self) -> None:
        _check_sides(self)


@dataclass(kw_only=True)
class JvsCorpus:
    """JVS parallel100: two speakers reading the same 100 sentences."""

    name: Literal["jvs"] = opt("jvs", "corpus recipe: egs/jvs")
    root: str = opt("downloads/jvs_ver1", "JVS root (contains jvs001 ... jvs100)")
    src_speaker: str = opt("jvs001", "source speaker id")
    tgt_speaker: str = opt("jvs010", "target speaker id")
    url: str = opt("", "archive URL to download when root is missing (empty: no download)")
    speakers: list[str] = added_later(
        opt(
            factory=list,
            help="many-to-many over these speakers' parallel100 files (['*']: every jvsNNN "
            "folder; empty: the src_speaker -> tgt_speaker pair)",
        )
    )


@dataclass(kw_only=True)
class JsutJsssCorpus:
    """JSUT → JSSS: the voiceactress100 sentences read by both speakers."""

    name: Literal["jsut_jsss"] = opt("jsut_jsss", "corpus recipe: egs/jsut_jsss")
    jsut_root: str = opt("downloads/jsut_ver1.1", "JSUT root (contains voiceactress100/)")
    jsss_root: str = opt("downloads/jsss_ver1", "JSSS root (contains voiceactress100/)")
    jsut_url: str = opt("http://ss-takashi.sakura.ne.jp/corpus/jsut_ver1.1.zip", "JSUT archive URL")
    jsss_url: str = opt("", "JSSS archive URL (empty: no download; JSSS needs a sign-up)")


@dataclass(kw_only=True)
class NamedVoice(Voice):
    """A demo_multi voice: espeak-ng settings plus the speaker and emotion it stands for."""

    speaker: str = opt(help="speaker name (the same name in two entries = two styles of it)")
    emotion: str = opt(NEUTRAL, "emotion/style name")


@dataclass(kw_only=True)
class DemoMultiCorpus:
    """Many espeak-ng voices reading the same sentences (many-to-many demo)."""

    name: Literal["demo_multi"] = opt("demo_multi", "corpus recipe: egs/demo, many voices")
    text: str = opt("egs/demo/harvard_sentences.txt", "sentence list, 'id text' per line")
    first: int = opt(1, "first sentence to synthesise (1-based line of the list)", min=1)
    num_utts: int = opt(60, "number of sentences from `first` on", min=3)
    voices: list[NamedVoice] = opt(
        factory=list, help="the voices: espeak-ng settings plus speaker (and emotion) names"
    )
    pause_min_words: int = opt(
        7, "sentences with at least this many words get a pause at the middle word break", min=2
    )
    pad_ms: list[int] = opt(
        factory=lambda: [100, 400], help="[min, max] ms of silence added before and after speech"
    )
    noise_dbfs: float | None = opt(-75.0, "background noise level, dBFS RMS (null: none)", max=0)

    def validate(self) -> None:
        check_pad(self.pad_ms)
        if len(self.voices) < 2:
            raise ValueError("corpus.voices needs at least 2 voices; add entries")
        names = [voice_key(v.speaker, v.emotion) for v in self.voices]
        for v in self.voices:
            check_name(v.speaker, "corpus.voices speaker")
            check_name(v.emotion, "corpus.voices emotion")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(
                f"corpus.voices names {', '.join(dup)} twice; give each entry its own "
                "speaker or emotion"
            )


@dataclass(kw_only=True)
class LabeledCorpus:
    """One folder of many speakers/styles; labels from a folder level or a path regex."""

    name: Literal["labeled"] = opt("labeled", "corpus recipe: labels parsed from paths")
    root: str = opt(help="corpus folder")
    pattern: str = opt("**/*.wav", "glob of audio files under root")
    labels_from: Literal["folder", "pattern"] = opt(
        "folder", "folder: labels are folder levels (see levels); pattern: regex named groups"
    )
    levels: dict[str, int] = opt(
        factory=lambda: {"speaker": 0},
        help="labels_from folder: label -> folder level under root (0 = first; -1 = the "
        "file's folder); keys speaker (required), emotion, sentence (default: file stem)",
    )
    regex: str = opt(
        "",
        "labels_from pattern: regex matched against the path relative to root, with named "
        "groups speaker (required), emotion and sentence (default: file stem)",
    )

    def validate(self) -> None:
        if self.labels_from == "folder":
            unknown = sorted(set(self.levels) - set(LABEL_KEYS))
            if unknown or "speaker" not in self.levels:
                raise ValueError(
                    f"corpus.levels must map speaker (and optionally emotion, sentence) to "
                    f"folder levels, got {self.levels}"
                )
            return
        try:
            groups = set(re.compile(self.regex).groupindex)
        except re.error as err:
            raise ValueError(f"corpus.regex {self.regex!r} is not a regex ({err})") from None
        if "speaker" not in groups:
            raise ValueError(
                f"corpus.regex {self.regex!r} needs a (?P<speaker>...) group "
                "(optionally emotion and sentence)"
            )


Corpus = (
    DemoCorpus
    | ParallelCorpus
    | JvsCorpus
    | JsutJsssCorpus
    | DemoMultiCorpus
    | LabeledCorpus
    | DemoTtsCorpus
    | LjspeechCorpus
    | JsutCorpus
)


def voice_key(speaker: str, emotion: str = NEUTRAL) -> str:
    """``speaker`` or ``speaker:emotion`` (as ``vc_toolkit.data.labels.voice_name``)."""
    return speaker if emotion == NEUTRAL else f"{speaker}:{emotion}"


@dataclass(kw_only=True)
class Split:
    """Deterministic train/dev/eval split, made once at stage 0 and reused."""

    dev: int = opt(10, "number of dev sentences (every pair reading one is in dev)", min=1)
    eval: int = opt(10, "number of eval sentences (every pair reading one is in eval)", min=1)
    seed: int = opt(0, "seed of the split shuffle")
    train: int | None = added_later(
        opt(
            None,
            "cap on training sentences: the first N of the shuffle after dev/eval "
            "(null: all the rest); dev/eval stay those of the uncapped split",
            min=1,
        )
    )


@dataclass(kw_only=True)
class Trim:
    """Silence handling with pydub semantics (dBFS thresholds, ms chunks)."""

    enabled: bool = opt(True, "trim leading/trailing silence")
    silence_thresh_h: float = opt(-50.0, "dBFS below which leading audio is silence", max=0)
    silence_thresh_t: float = opt(-100.0, "dBFS below which trailing audio is silence", max=0)
    chunk_size: int = opt(50, "scan step for head/tail trimming, ms", min=1)
    min_silence_len: int = opt(
        500, "internal pauses at least this long (ms, below silence_thresh_t) are silences", min=1
    )
    zero_internal_silence: bool = opt(True, "zero the samples of internal silences")


@dataclass(kw_only=True)
class Mel:
    """Log-mel spectrogram settings."""

    n_fft: int = opt(1024, "FFT size", min=16)
    win_length: int = opt(1024, "analysis window length, samples", min=16)
    hop_length: int = opt(256, "frame shift, samples (all streams share it)", min=1)
    n_mels: int = opt(80, "number of mel bins", min=1)
    fmin: float = opt(0.0, "lowest mel frequency, Hz", min=0)
    fmax: float | None = opt(8000.0, "highest mel frequency, Hz (null: sample_rate / 2)")
    clip: float = opt(1e-5, "floor on the mel magnitude before the log", min=0)
    log_base: Literal["e", "10"] = opt("e", "log base of the mel: e or 10")


@dataclass(kw_only=True)
class Pitch:
    """F0 extraction with WORLD (pyworld)."""

    method: Literal["dio", "harvest"] = opt("dio", "dio+stonemask (fast) or harvest (robust)")
    f0_floor: float = opt(71.0, "lowest F0 searched, Hz", min=1)
    f0_ceil: float = opt(800.0, "highest F0 searched, Hz", min=1)
    dio_speed: int = opt(
        3,
        "dio: decimation of the F0 candidate search (1-12; stonemask refines at the full rate)",
        min=1,
        max=12,
    )
    continuous: bool = opt(True, "interpolate log-F0 through unvoiced frames")


@dataclass(kw_only=True)
class Dtw:
    """What the stage-1 DTW aligns; the durations the model learns come from this alignment."""

    n_mels: int | None = opt(
        None,
        "mel bands DTW aligns on: null = the model's log-mel; N = an N-band log-mel over the "
        "same fmin..fmax (coarse bands follow the envelope, not the harmonics)",
        min=1,
    )


@dataclass(kw_only=True)
class Feats:
    """Feature streams: log-mel, log-F0 + voiced mask, log energy."""

    mel: Mel = sub(Mel, "log-mel settings")
    pitch: Pitch = sub(Pitch, "F0 settings")
    dtw: Dtw = added_later(sub(Dtw, "features of the DTW alignment (durations)"))


@dataclass(kw_only=True)
class Filters:
    """When a pair is dropped at stage 1 (each drop is reported with its reason)."""

    min_seconds: float = opt(0.3, "drop pairs with a side shorter than this after trimming", min=0)
    min_voiced_fraction: float = opt(
        0.05, "drop pairs with a side voiced on fewer frames than this", min=0, max=1
    )
    max_length_ratio: float = opt(
        3.0, "drop pairs whose frame-count ratio exceeds this (either direction)", min=1
    )
    outlier_mad: float = opt(
        6.0,
        "drop pairs whose DTW cost or log length ratio is this many MADs from the corpus median",
        min=0,
    )


@dataclass(kw_only=True)
class SpkConfig:
    """A dataset version."""

    corpus: Corpus | None = opt(
        None, "which corpus recipe prepares the lists, with its options (or use corpora)"
    )
    corpora: list[Corpus] = added_later(
        opt(factory=list, help="several corpus blocks in one spk (instead of corpus)")
    )
    pairs: list[list[str]] = added_later(
        opt(
            factory=list,
            help="ordered [source voice, target voice] pairs to keep, across corpora (voice: "
            "speaker or speaker:emotion; empty: every pair each corpus allows)",
        )
    )
    note: str = opt("", "free text shown in reports")
    sample_rate: int = opt(22050, "sample rate every file is resampled to, Hz", min=1000)
    reduction_factor: int = opt(
        1, "frames per model step (r); durations count reduced frames", min=1
    )
    split: Split = sub(Split, "dev/eval split")
    exclude: list[str] = opt(factory=list, help="utterance or sentence ids left out of every split")
    trim: Trim = sub(Trim, "silence trimming")
    sentence_duration: bool = opt(True, "store per-segment frame counts (for prosody models)")
    feats: Feats = sub(Feats, "feature extraction")
    filters: Filters = sub(Filters, "bad-pair filters")
    stats: Literal["global", "per_speaker"] = added_later(
        opt(
            "global",
            "feature normalisation statistics: global, or per_speaker (train split only; "
            "conversion denormalises with the target speaker's)",
        )
    )

    text: TextConfig | None = added_later(
        opt(
            None,
            "text input (TTS): how transcripts become tokens (vc_toolkit.config.text); "
            "null for voice conversion",
        )
    )

    @property
    def is_text(self) -> bool:
        """A text spk (TTS): recordings with transcripts instead of parallel pairs."""
        return self.text is not None

    def corpus_list(self) -> list[Corpus]:
        """The corpus blocks of the spk: ``[corpus]`` or ``corpora``."""
        return [self.corpus] if self.corpus is not None else list(self.corpora)

    def validate(self) -> None:
        if (self.corpus is None) == (not self.corpora):
            raise ValueError(
                "set exactly one of 'corpus' (one corpus block) or 'corpora' (a list of them)"
            )
        check_text_spk([c.name for c in self.corpus_list()], self.text, self.pairs)
        bad = [p for p in self.pairs if len(p) != 2]
        if bad:
            raise ValueError(f"pairs entries must be [source voice, target voice], got {bad[0]}")
        mel = self.feats.mel
        if mel.win_length > mel.n_fft:
            raise ValueError(
                f"feats.mel.win_length ({mel.win_length}) must be <= feats.mel.n_fft ({mel.n_fft})"
            )
        nyquist = self.sample_rate / 2
        fmax = nyquist if mel.fmax is None else mel.fmax
        if fmax > nyquist:
            raise ValueError(
                f"feats.mel.fmax ({fmax}) must be <= sample_rate / 2 ({nyquist}); "
                "set it lower or null"
            )
        if mel.fmin >= fmax:
            raise ValueError(f"feats.mel.fmin ({mel.fmin}) must be < fmax ({fmax})")
        pitch = self.feats.pitch
        if pitch.f0_floor >= pitch.f0_ceil:
            raise ValueError(
                f"feats.pitch.f0_floor ({pitch.f0_floor}) must be < f0_ceil ({pitch.f0_ceil})"
            )
        if self.trim.chunk_size > self.trim.min_silence_len:
            raise ValueError(
                f"trim.chunk_size ({self.trim.chunk_size} ms) must be <= "
                f"trim.min_silence_len ({self.trim.min_silence_len} ms)"
            )
