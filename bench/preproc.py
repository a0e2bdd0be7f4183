"""Figure 1: stage-1 feature extraction speed, ours against a straightforward script.

*Ours* is stage 1 itself: :func:`vc_toolkit.preprocess.stage._extract_all`
(the worker pool of ``vc-preprocess``) with ``nj`` workers, writing the
per-utterance ``.npz`` caches into a temporary directory. Its per-step seconds
come from :func:`vc_toolkit.features.extract.extract_pair`'s ``timings``.

*Straightforward* (:func:`straightforward_pair`) does the same steps on the same
files the way a typical research script does them: ``pydub`` to load and trim
(``detect_leading_silence`` on the segment and on its reverse,
``detect_nonsilent`` for internal pauses, a Python loop over 1 ms windows),
``librosa.feature.melspectrogram`` plus a log, a second STFT for the energy,
WORLD ``dio`` + ``stonemask`` with the spk's floor, ceiling and frame period
but pyworld's default ``speed=1`` (what such scripts call; stage 1 uses the spk's
``feats.pitch.dio_speed``, 3 by default, equally accurate, see
:mod:`vc_toolkit.features.pitch`), ``fastdtw`` on the log-mels and one
``np.save`` per stream per utterance. It runs in two variants:

* ``straightforward``: ``fastdtw(x, y, dist=scipy.spatial.distance.euclidean)``,
  the call fastdtw's own README shows and research scripts copy; a Python
  distance function makes fastdtw call back into Python for every cell.
* ``straightforward_tuned``: ``fastdtw(x, y, dist=2)``, its compiled p-norm path
  (about 7× faster DTW), i.e. the script after someone profiled it.

The target "2× the straightforward script" is judged on the first; the second
is shown beside it so the reader sees how much of the gain is DTW alone, and
``ours_nj1_dio1`` (stage 1 with ``dio_speed`` 1) how much is the F0 setting.

Throughput is audio seconds (source + target, before trimming) per wall second;
per core divides by the workers used.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from timing import interleave, ratios, stopwatch, summarize

from vc_toolkit.config import SpkConfig, load_spk
from vc_toolkit.io import read_scp
from vc_toolkit.paths import Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.preprocess import stage as preprocess

STEPS = ("load", "trim", "mel", "f0", "dtw", "segments", "write")
STREAMS = ("mel", "lf0", "vuv", "energy")
Pair = tuple[str, Path, Path]


def ensure_features(layout: Layout, spk: str, nj: int = 2) -> None:
    """Run stage 0 and stage 1 of ``spk`` (each a fast no-op when already done)."""
    prepare.run(spk, layout, nj=nj)
    preprocess.run(spk, layout, nj=nj)


def select_pairs(layout: Layout, spk: str, n: int | None) -> list[Pair]:
    """``n`` pairs ``(utt, src, tgt)`` spread evenly over every split's lists (None: all).

    Raises:
        ValueError: ``n`` < 1, or the spk has no stage-0 lists.
    """
    pairs: list[Pair] = []
    for split in prepare.SPLITS:
        folder = layout.data(spk) / split
        if not (folder / "src.scp").is_file():
            raise ValueError(f"{folder}: no src.scp; run stage 0 of spk '{spk}' first")
        src, tgt = read_scp(folder / "src.scp"), read_scp(folder / "tgt.scp")
        pairs += [
            (u, layout.resolve(p), layout.resolve(tgt[u])) for u, p in src.items() if u in tgt
        ]
    pairs.sort()
    if n is None or n >= len(pairs):
        return pairs
    if n < 1:
        raise ValueError(f"number of pairs must be >= 1, got {n}")
    picks = np.linspace(0, len(pairs) - 1, n).round().astype(int)
    return [pairs[i] for i in picks]


def audio_seconds(pairs: list[Pair]) -> float:
    """Seconds of audio in the files (source + target, untrimmed)."""
    total = 0.0
    for _, src, tgt in pairs:
        for path in (src, tgt):
            info = sf.info(str(path))
            total += info.frames / info.samplerate
    return total


# ---- ours: stage 1's worker pool --------------------------------------------------------------


def run_ours(pairs: list[Pair], cfg: SpkConfig, nj: int, tmp: Path) -> dict:
    """Stage 1's extraction of ``pairs`` with ``nj`` workers into a fresh folder under ``tmp``.

    Returns:
        ``{"wall": seconds, "steps": {step: seconds summed over pairs}, "written": files}``.
    """
    raw = tmp / f"ours-{uuid.uuid4().hex[:8]}"
    raw.mkdir(parents=True)
    jobs = [(utt, src, tgt, cfg, raw) for utt, src, tgt in pairs]
    try:
        start = time.perf_counter()
        steps = preprocess._extract_all(jobs, nj)
        wall = time.perf_counter() - start
        written = len(list(raw.glob("*.npz")))
    finally:
        shutil.rmtree(raw, ignore_errors=True)
    return {"wall": wall, "steps": dict(steps), "written": written}


# ---- the straightforward script ----------------------------------------------------------------


def _pydub():
    with warnings.catch_warnings():  # ffmpeg (wav files do not need it), audioop deprecation
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import pydub
        import pydub.silence
    return pydub


def _side(path: Path, cfg: SpkConfig, t: dict) -> dict:
    """Load, trim and analyse one file the straightforward way."""
    import librosa
    import pyworld

    pydub, tr, mel_cfg, sr = _pydub(), cfg.trim, cfg.feats.mel, cfg.sample_rate
    with stopwatch(t, "load"):
        seg = pydub.AudioSegment.from_wav(str(path))
        if seg.channels > 1:
            seg = seg.set_channels(1)
    with stopwatch(t, "trim"):
        head = pydub.silence.detect_leading_silence(seg, tr.silence_thresh_h, tr.chunk_size)
        tail = pydub.silence.detect_leading_silence(
            seg.reverse(), tr.silence_thresh_t, tr.chunk_size
        )
        seg = seg[head : max(head, len(seg) - tail)]
        voiced = pydub.silence.detect_nonsilent(seg, tr.min_silence_len, tr.silence_thresh_t, 1)
        pauses = [(a[1], b[0]) for a, b in zip(voiced, voiced[1:])]
    with stopwatch(t, "load"):
        y = np.array(seg.get_array_of_samples(), dtype=np.float32)
        y /= float(1 << (8 * seg.sample_width - 1))
        if seg.frame_rate != sr:
            y = librosa.resample(y, orig_sr=seg.frame_rate, target_sr=sr)
    with stopwatch(t, "trim"):
        for a, b in pauses:
            y[int(a * sr / 1000) : int(b * sr / 1000)] = 0.0
    stft = dict(n_fft=mel_cfg.n_fft, hop_length=mel_cfg.hop_length, win_length=mel_cfg.win_length)
    with stopwatch(t, "mel"):
        mel = librosa.feature.melspectrogram(
            y=y,
            sr=sr,
            n_mels=mel_cfg.n_mels,
            fmin=mel_cfg.fmin,
            fmax=mel_cfg.fmax,
            power=1.0,
            **stft,
        )
        mel = np.log(np.maximum(mel, mel_cfg.clip)).T
        energy = np.log(
            np.maximum(np.linalg.norm(np.abs(librosa.stft(y, **stft)), axis=0), mel_cfg.clip)
        )
    with stopwatch(t, "f0"):
        x64 = y.astype(np.float64)
        period = 1000.0 * mel_cfg.hop_length / sr
        pitch = cfg.feats.pitch
        f0, times = pyworld.dio(x64, sr, pitch.f0_floor, pitch.f0_ceil, frame_period=period)
        f0 = pyworld.stonemask(x64, f0, times, sr)
        vuv = (f0 > 0).astype(np.float32)
        lf0 = np.zeros_like(f0)
        lf0[f0 > 0] = np.log(f0[f0 > 0])
        idx = np.flatnonzero(f0 > 0)
        if len(idx):
            lf0 = np.interp(np.arange(len(f0)), idx, lf0[idx])
    n = min(len(mel), len(lf0))
    return {
        "mel": mel[:n],
        "energy": energy[:n],
        "lf0": lf0[:n].astype(np.float32),
        "vuv": vuv[:n],
        "voiced_ms": voiced,
    }


def straightforward_pair(
    src: Path, tgt: Path, cfg: SpkConfig, out_dir: Path, utt: str, t: dict, tuned: bool = False
):
    """Features of one pair the straightforward way, saved as one ``.npy`` per stream.

    Args:
        src: Source wav.
        tgt: Target wav.
        cfg: The spk config (same thresholds and analysis as stage 1).
        out_dir: Where ``<utt>_<stream>.npy`` files go.
        utt: Utterance id.
        t: Seconds per step are added here (keys of :data:`STEPS`).
        tuned: fastdtw's compiled 2-norm (``dist=2``) instead of scipy's ``euclidean``.

    Returns:
        The list of written files.
    """
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    s, g = _side(src, cfg, t), _side(tgt, cfg, t)
    with stopwatch(t, "dtw"):
        _, path = fastdtw(s["mel"], g["mel"], dist=2 if tuned else euclidean)
        duration = np.bincount(np.array([i for i, _ in path]), minlength=len(s["mel"]))
    hop_ms = 1000.0 * cfg.feats.mel.hop_length / cfg.sample_rate
    with stopwatch(t, "segments"):
        segs = {
            k: np.array([max(1, round((b - a) / hop_ms)) for a, b in side["voiced_ms"]])
            for k, side in (("src", s), ("tgt", g))
        }
    streams = {
        f"{k}_{name}": side[name] for k, side in (("src", s), ("tgt", g)) for name in STREAMS
    }
    streams.update(duration=duration, src_seg=segs["src"], tgt_seg=segs["tgt"])
    files = []
    with stopwatch(t, "write"):
        for name, arr in streams.items():
            files.append(out_dir / f"{utt}_{name}.npy")
            np.save(files[-1], arr)
    return files


def run_straightforward(pairs: list[Pair], cfg: SpkConfig, tmp: Path, tuned: bool = False) -> dict:
    """The straightforward script over ``pairs``, in this process (record as :func:`run_ours`)."""
    out = tmp / f"plain-{uuid.uuid4().hex[:8]}"
    out.mkdir(parents=True)
    steps: dict[str, float] = {}
    try:
        start = time.perf_counter()
        written = sum(
            len(straightforward_pair(s, g, cfg, out, u, steps, tuned)) for u, s, g in pairs
        )
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"wall": wall, "steps": steps, "written": written}


# ---- the figure ---------------------------------------------------------------------------------


def _pipeline(runs: list[dict], seconds: float, nj: int) -> dict:
    walls = [r["wall"] for r in runs]
    return {
        "nj": nj,
        "files_written": runs[0]["written"],
        "wall_seconds": summarize(walls),
        "realtime": summarize([seconds / w for w in walls]),
        "realtime_per_core": summarize([seconds / w / nj for w in walls]),
        "steps": {k: summarize([r["steps"].get(k, 0.0) for r in runs]) for k in STEPS},
    }


def bench_preprocess(
    layout: Layout, spk: str, n_pairs: int | None, reps: int, njs: tuple[int, ...] = (1, 2)
) -> dict:
    """Figure 1: stage 1 with each ``nj`` and the straightforward script, interleaved.

    Args:
        layout: Recipe root (stage 0 of ``spk`` done).
        spk: Dataset version whose files are processed.
        n_pairs: Pairs to process per repetition (None: all).
        reps: Repetitions; in each, every pipeline runs once (``ours_nj1``,
            ``straightforward``, ``straightforward_tuned``, ``ours_nj2``, ..., and
            ``ours_nj1_dio1``: stage 1 with pyworld's default ``dio`` speed 1, when the spk
            uses another).
        njs: Worker counts of stage 1; 1 must be among them (the ratio's reference).

    Returns:
        ``pairs``, ``audio_seconds``, ``reps``, ``pipelines`` (name → ``nj``, wall seconds,
        real-time factors, per-step seconds, each summarised), ``speedup``: per
        repetition, straightforward wall / ours (``nj=1``) wall, overall and per step,
        and ``speedup_tuned``: the same against ``straightforward_tuned``.
    """
    if 1 not in njs:
        raise ValueError("njs must include 1: the straightforward script runs in one process")
    cfg = load_spk(spk, layout.root)
    pairs = select_pairs(layout, spk, n_pairs)
    seconds = audio_seconds(pairs)
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as name:
        tmp = Path(name)
        run_ours(pairs[:1], cfg, 1, tmp)  # warm-up: numba cache, librosa, filterbanks
        run_straightforward(pairs[:1], cfg, tmp)
        fns = {"ours_nj1": lambda: run_ours(pairs, cfg, 1, tmp)}
        fns["straightforward"] = lambda: run_straightforward(pairs, cfg, tmp)
        fns["straightforward_tuned"] = lambda: run_straightforward(pairs, cfg, tmp, tuned=True)
        workers = {name: 1 for name in fns}
        for nj in njs:
            if nj != 1:
                fns[f"ours_nj{nj}"] = lambda nj=nj: run_ours(pairs, cfg, nj, tmp)
                workers[f"ours_nj{nj}"] = nj
        pitch = cfg.feats.pitch
        if pitch.method == "dio" and pitch.dio_speed != 1:
            full_rate = _with_dio_speed(cfg, 1)
            fns["ours_nj1_dio1"] = lambda: run_ours(pairs, full_rate, 1, tmp)
            workers["ours_nj1_dio1"] = 1
        runs = interleave(fns, reps)
    pipelines = {name: _pipeline(r, seconds, workers[name]) for name, r in runs.items()}
    ours = runs["ours_nj1"]
    return {
        "spk": spk,
        "pairs": len(pairs),
        "audio_seconds": seconds,
        "reps": reps,
        "pipelines": pipelines,
        "speedup": _speedup(runs["straightforward"], ours),
        "speedup_tuned": _speedup(runs["straightforward_tuned"], ours),
    }


def _with_dio_speed(cfg: SpkConfig, speed: int) -> SpkConfig:
    """``cfg`` with ``feats.pitch.dio_speed`` replaced."""
    pitch = dataclasses.replace(cfg.feats.pitch, dio_speed=speed)
    return dataclasses.replace(cfg, feats=dataclasses.replace(cfg.feats, pitch=pitch))


def _speedup(plain: list[dict], ours: list[dict]) -> dict:
    """Per-repetition wall-time ratios ``plain / ours``, overall and per step."""
    return {
        "total": summarize(ratios([r["wall"] for r in plain], [r["wall"] for r in ours])),
        "steps": {
            k: summarize(ratios([r["steps"][k] for r in plain], [r["steps"][k] for r in ours]))
            for k in STEPS
            if all(r["steps"].get(k, 0) > 0 for r in ours + plain)
        },
    }
