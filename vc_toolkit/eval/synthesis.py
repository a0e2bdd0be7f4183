"""Stage 4 of a text tag (``model.type: fastspeech2tts``): what differs from conversion.

Synthesised dev/eval sentences (``exp/<T>/convert/<C>/<split>/<utt>.wav``, stage 3) are
scored against the recordings with the same metrics and DTW as converted speech
(:mod:`vc_toolkit.eval.metrics`). The floors differ:

* **no source floor**: a TTS model has no source speech to leave unconverted
  (``summary.json`` says so in ``floors``);
* **vocoder floor**: as for conversion, the recording through stage 1's analysis and
  the vocoder (:mod:`vc_toolkit.eval.vocoder_floor`);
* **untrained floor** (``untr_*`` columns, ``untrained`` blocks): the same sentences
  synthesised by the tag's model as initialised before its first step (checkpoint
  ``untrained``: ``train.seed``, no pretrain weights), with the conversion's inference
  settings, in ``exp/<T>/convert/untrained/`` (stage 3 skips finished files).

**Duration error**: the durations the model predicts for each sentence (``duration`` of
the stage-3 npz, reduced frames per token) against a reference on the same tokens,
``d`` predicted and ``a`` reference, over the N tokens:

* ``dur_mae_frames`` = ``r * mean |d - a|``, frames of the spk's hop;
* ``dur_mae_log`` = ``mean |ln(1 + d) - ln(1 + a)|``, the domain of the duration
  predictor's loss.

The reference is the aligner's durations on the recording at the evaluated checkpoint
(:func:`vc_toolkit.infer.align.aligned_durations`, the durations ``vc-align`` writes), or,
for a tag trained on fixed durations (``model.text.durations: X``), those durations
(``dump/<SPK>/<split>/durations/X.npy``). The untrained model's durations are scored
against the same reference.

Example:
    >>> e = duration_errors(np.array([2, 0, 3]), np.array([1, 1, 3]), r=2)
    >>> round(e["dur_mae_frames"], 4), round(e["dur_mae_log"], 4)
    (1.3333, 0.3662)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vc_toolkit import log
from vc_toolkit.config import TagConfig, build
from vc_toolkit.config.tag import Infer
from vc_toolkit.data.text_dump import TextDumpSplit
from vc_toolkit.infer import stage as convert_stage
from vc_toolkit.infer.align import aligned_durations, bundle_model
from vc_toolkit.infer.pack import UNTRAINED, input_kind, load_tag_bundle
from vc_toolkit.paths import Layout

logger = log.get("evaluate")
DUR_KEYS = ("dur_mae_frames", "dur_mae_log")
TEXT_SIDES = {"conv": "converted", "untr": "untrained", "voc": "vocoder"}
"""Row key and per-utt column prefix → summary block, for a text tag (no source floor)."""
NO_SOURCE = "none: a text tag has no source speech (floors: untrained model, vocoder)"


def is_text_tag(cfg: TagConfig) -> bool:
    """Whether the tag's model reads text (its family in the model registry)."""
    return input_kind(cfg.model.type) == "text"


def duration_errors(pred: np.ndarray, ref: np.ndarray, r: int) -> dict[str, float]:
    """``dur_mae_frames`` and ``dur_mae_log`` of predicted against reference durations.

    Args:
        pred: (N,) predicted reduced frames per token.
        ref: (N,) reference reduced frames per token.
        r: Reduction factor (frames per reduced frame).

    Raises:
        ValueError: the two have different token counts.
    """
    pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    if pred.shape != ref.shape or pred.ndim != 1 or len(pred) == 0:
        raise ValueError(f"durations of {pred.shape} and {ref.shape} tokens do not match")
    return {
        "dur_mae_frames": float(r * np.abs(pred - ref).mean()),
        "dur_mae_log": float(np.abs(np.log1p(pred) - np.log1p(ref)).mean()),
    }


def reference_durations(
    layout: Layout, cfg: TagConfig, tag: str, checkpoint: str, splits: tuple[str, ...]
) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    """Reference durations per split and utterance, and what they are (module docstring)."""
    dump = layout.dump(cfg.spk)
    fixed = cfg.model.text.durations
    if fixed is not None:
        out = {}
        for split in splits:
            ds = TextDumpSplit(dump / split, durations=fixed)
            out[split] = {u: ds[i]["duration"] for i, u in enumerate(ds.utt_ids)}
        return out, f"fixed durations '{fixed}' (dump/{cfg.spk}/<split>/durations/{fixed}.npy)"
    bundle = load_tag_bundle(layout, tag, checkpoint)
    model = bundle_model(bundle)
    out = {s: aligned_durations(model, bundle, TextDumpSplit(dump / s))[0] for s in splits}
    return out, f"the aligner of checkpoint {bundle.checkpoint} (MAS on the recordings)"


def untrained_outputs(layout: Layout, tag: str, conv_settings: dict | None) -> Path:
    """Synthesise the dev/eval sentences with the untrained model (finished files kept).

    Args:
        conv_settings: The conversion's ``settings.json``: its inference controls and vocoder
            are used (the tag's ``infer`` block when missing).

    Returns:
        ``exp/<tag>/convert/untrained``.
    """
    data = dict((conv_settings or {}).get("infer") or {})
    infer = (
        build(Infer, data, where="infer block of the conversion's settings.json") if data else None
    )
    convert_stage.run(layout, tag, UNTRAINED, infer=infer, progress=False)
    return layout.convert_dir(tag, UNTRAINED)


def add_duration_errors(
    rows: dict[str, dict[str, dict]],
    roots: dict[str, Path],
    refs: dict[str, dict[str, np.ndarray]],
    r: int,
) -> None:
    """Add :data:`DUR_KEYS` to the scored rows of each side from its stage-3 npz files.

    Args:
        rows: split → utterance → row (``conv``/``untr`` dicts of scores, as stage 4 has them).
        roots: side (``conv``, ``untr``) → its stage-3 folder.
        refs: split → utterance → reference durations.
        r: Reduction factor.
    """
    for split, split_rows in rows.items():
        for utt, row in split_rows.items():
            ref = refs.get(split, {}).get(utt)
            for side, root in roots.items():
                npz = root / split / f"{utt}.npz"
                if row.get(side) is None or ref is None or not npz.is_file():
                    continue
                with np.load(npz) as f:
                    pred = f["duration"]
                try:
                    row[side].update(duration_errors(pred, ref, r))
                except ValueError as err:
                    logger.warning("%s %s/%s: no duration error (%s)", side, split, utt, err)


def _mean(block: dict | None, key: str) -> float:
    return ((block or {}).get(key) or {}).get("mean", math.nan)


def log_summary(summary: dict) -> None:
    """One line per split: scores beside the untrained and vocoder floors, duration error."""
    for name, block in [*summary["splits"].items(), ("overall", summary["overall"])]:
        conv, untr, voc = (block.get(k) for k in ("converted", "untrained", "vocoder"))
        logger.info(
            "%-7s MCD %.2f dB (untrained %.2f, vocoder %.2f), F0 RMSE %.1f Hz (untrained %.1f, "
            "vocoder %.1f), V/UV %.3f, duration MAE %.2f frames / %.3f log (untrained %.2f / "
            "%.3f); %d scored",
            name, _mean(conv, "mcd"), _mean(untr, "mcd"), _mean(voc, "mcd"),
            _mean(conv, "f0_rmse_hz"), _mean(untr, "f0_rmse_hz"), _mean(voc, "f0_rmse_hz"),
            _mean(conv, "vuv_error"), _mean(conv, "dur_mae_frames"), _mean(conv, "dur_mae_log"),
            _mean(untr, "dur_mae_frames"), _mean(untr, "dur_mae_log"), block["counts"]["scored"],
        )  # fmt: skip
    logger.info("duration reference: %s", summary.get("duration_reference"))
