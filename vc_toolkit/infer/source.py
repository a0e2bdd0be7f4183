"""Source-side features of one arbitrary wav, exactly as stage 1 computes them.

Standalone conversion (``vc-convert --input``) has no corpus and no target: it
runs the source half of stage 1 (:mod:`vc_toolkit.features.extract`) with the
spk's settings:

1-2. the audio front-end (:func:`~vc_toolkit.features.frontend.load_speech`): load,
   mono, resample to ``sample_rate``, cut head/tail silence, find the internal
   silences and zero them when ``trim.zero_internal_silence``;
3. log-mel and log energy from one STFT, WORLD log-F0 and voiced mask on the same
   frames, all cut to ``T``, a multiple of the reduction factor ``r``;
4. segments: cut at the internal silences when ``sentence_duration`` (else one
   segment), as reduced-frame counts summing to ``T // r``;
5. z-score with the *source* statistics of the spk's ``stats.npz`` (the source
   speaker's own ones with ``stats: per_speaker``, see
   :func:`~vc_toolkit.features.stats.pair_stats`).

A file that cannot give features raises :class:`UnusableAudioError` with one of
:data:`REASONS`, using the spk's ``filters`` thresholds as stage 1 does.
:func:`convert_files` runs this on many files (from :func:`find_inputs`),
converts the usable ones in batches and reports each unusable one in one line.

Example:
    >>> import tempfile, pathlib, soundfile as sf
    >>> from vc_toolkit.config.spk import DemoCorpus, SpkConfig
    >>> cfg = SpkConfig(corpus=DemoCorpus(), sample_rate=16000)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "quiet.wav"
    >>> sf.write(path, np.zeros(16000, "f4"), 16000)
    >>> try:
    ...     source_features(path, cfg)
    ... except UnusableAudioError as err:
    ...     print(err.reason)
    silent
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.errors import UserError
from vc_toolkit.features import extract, frontend, segments, stats
from vc_toolkit.features.frontend import REASONS, Speech, UnusableAudioError
from vc_toolkit.infer.convert import Converter, batches, write_outputs
from vc_toolkit.infer.speakers import SpeakerPair

__all__ = ["REASONS", "UnusableAudioError", "convert_files", "find_inputs", "source_features"]


def _segments(speech: Speech, n_reduced: int, cfg: SpkConfig) -> np.ndarray:
    """Reduced-frame counts of the sentence segments, summing to ``n_reduced``."""
    seg = extract.speech_segments(speech, cfg)
    seg = seg.merge_to(min(seg.n_segments, n_reduced))
    return segments.reduced_counts(seg, n_reduced, cfg.feats.mel.hop_length, cfg.reduction_factor)


def raw_source_features(path: str | Path, cfg: SpkConfig) -> dict:
    """Un-normalised source features of one file.

    Args:
        path: Audio file (any rate, channels, libsndfile format).
        cfg: The spk config whose analysis the model was trained on.

    Returns:
        ``src_mel`` (T, n_mels), ``src_lf0`` (T,), ``src_vuv`` (T,), ``src_energy`` (T,)
        float32, ``src_seg`` (K,) int32 summing to ``T // r``, and floats ``seconds``
        (after trimming) and ``input_seconds``.

    Raises:
        UnusableAudioError: unreadable, truncated, empty, silent after trimming, too short or
            unvoiced.
    """
    with threadpool_limits(1, user_api="blas"):
        speech = frontend.load_speech(path, cfg)
        t = frontend.num_frames(speech, cfg)
        mel, energy = extract.mel_energy(speech, cfg, t)
        lf0, vuv = extract.lf0_vuv(speech, cfg, t)
        frontend.check_voiced(vuv, cfg, path)
    return {
        "src_mel": mel,
        "src_lf0": lf0,
        "src_vuv": vuv,
        "src_energy": energy,
        "src_seg": _segments(speech, t // cfg.reduction_factor, cfg).astype(np.int32),
        "seconds": speech.seconds,
        "input_seconds": speech.input_seconds,
    }


def source_features(path: str | Path, cfg: SpkConfig, st: dict | None = None) -> dict:
    """Normalised source features of one file, as the converter takes them.

    Args:
        path: Audio file.
        cfg: The spk config.
        st: The spk's statistics (``stats.npz``); None returns un-normalised features.

    Returns:
        The dict of :func:`raw_source_features`, with the streams z-scored when ``st``
        is given, plus ``utt_id`` (the file stem).

    Raises:
        UnusableAudioError: see :func:`raw_source_features`.
    """
    item = raw_source_features(path, cfg)
    if st is not None:
        item = stats.normalize(item, st)
    item["utt_id"] = Path(path).stem
    return item


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


def find_inputs(path: Path) -> tuple[list[Path], Path]:
    """Audio files of ``path`` (a file, or a folder searched recursively) and their base folder.

    Raises:
        UserError: the path does not exist or the folder holds no audio file.
    """
    if path.is_file():
        return [path], path.parent
    if not path.is_dir():
        raise UserError(f"--input {path} does not exist; give a wav file or a folder of them")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        shown = ", ".join(f"*{s}" for s in AUDIO_SUFFIXES)
        raise UserError(f"--input {path} holds no audio files ({shown})")
    return files, path


def convert_files(
    conv: Converter,
    inputs: list[Path],
    base: Path,
    out_dir: Path,
    progress: bool = True,
    pair: SpeakerPair | None = None,
) -> tuple[list[Path], list[UnusableAudioError]]:
    """Convert audio files with no corpus: stage-1 source features, then :class:`Converter`.

    Args:
        conv: The converter.
        inputs: Audio files.
        base: Folder the inputs are relative to; ``out_dir`` mirrors its layout.
        out_dir: Where ``<name>.wav`` / ``<name>.npz`` go.
        progress: Show progress bars.
        pair: The speakers of the conversion (default: the spk's only pair): sources are
            normalised with the source speaker's statistics, the model is conditioned on
            the pair and its output denormalised with the target speaker's statistics.

    Returns:
        ``(written wavs, unusable files)``: the errors name the file and what is wrong.
    """
    bundle = conv.bundle
    if pair is None:
        pair = SpeakerPair.of(conv.labels({}))
    st = stats.pair_stats(bundle.stats, pair.src_speaker, pair.tgt_speaker)
    items, failed = [], []
    start = time.perf_counter()
    for path in tqdm(inputs, desc="features", unit="file", disable=not progress or len(inputs) < 2):
        try:
            item = source_features(path, bundle.spk_cfg, st)
        except UnusableAudioError as err:
            failed.append(err)
            continue
        item["name"] = path.relative_to(base).with_suffix("")
        item["labels"] = pair.labels(item["utt_id"])
        items.append(item)
    conv.rtf.feature_seconds += time.perf_counter() - start
    written = []
    groups = batches(items, [len(it["src_mel"]) for it in items], conv.infer.batch_size)
    bar = tqdm(total=len(items), desc="converting", unit="file", disable=not progress)
    for group in groups:
        for item, res in zip(group, conv(group), strict=True):
            name = item["name"]
            written.append(write_outputs(out_dir / name.parent, name.name, res, bundle.spk_cfg))
        bar.update(len(group))
    bar.close()
    return written, failed
