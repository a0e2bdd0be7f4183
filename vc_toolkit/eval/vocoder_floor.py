"""The vocoder floor of stage 4: what the vocoder alone costs, with no model in the way.

The *target* recording of each dev/eval sentence goes through the audio front-end
and the feature analysis of stage 1, exactly (:func:`~vc_toolkit.features.frontend.load_speech`,
:func:`~vc_toolkit.features.frontend.num_frames`,
:func:`~vc_toolkit.features.extract.mel_energy`; for a vocoder that uses F0 also
:func:`~vc_toolkit.features.extract.lf0_vuv`: the target's own F0, 0 Hz where it is
unvoiced), then through the vocoder the converted speech was made with (the
``infer.vocoder`` block of the conversion's ``settings.json``; the tag's when that
has none), and is scored against the same trimmed target recording with the same
metrics as the conversion. A converted sentence cannot score better than this
floor unless the model beats its own training targets; the gap between the two
is what the acoustic model loses.

It does not depend on the model, so it is cached per spk, vocoder settings and
``eval`` settings in ``dump/<SPK>/eval_floor/vocoder-<type>-<key>/<split>.tsv``
(:func:`vocoder_floor_dir`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import torch

from vc_toolkit.config import SpkConfig, TagConfig, build, to_dict
from vc_toolkit.config.core import pinned_dict
from vc_toolkit.config.pin import read_fingerprint
from vc_toolkit.config.tag import Eval
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.features import extract, frontend
from vc_toolkit.features.frontend import Speech
from vc_toolkit.paths import Layout
from vc_toolkit.vocoder import Vocoder, build_vocoder
from vc_toolkit.vocoder.base import locate

_BUILT: dict[str, Vocoder] = {}
"""The vocoder of the current settings, built once per process."""


def floor_vocoder(
    conv_settings: dict | None, cfg: TagConfig, layout: Layout | None = None
) -> VocoderConfig:
    """The vocoder the converted speech was made with, pointed at its files.

    Args:
        conv_settings: The conversion's ``settings.json`` (None when missing).
        cfg: The tag config (its ``infer.vocoder`` when the settings name none).
        layout: Resolves a vocoder named by ``voc`` or by a relative path.

    Raises:
        ConfigError: the settings hold a vocoder block this version cannot read.
    """
    data = ((conv_settings or {}).get("infer") or {}).get("vocoder")
    if data is None:
        voc_cfg = copy.deepcopy(cfg.infer.vocoder)
    else:
        voc_cfg = build(
            VocoderConfig, data, where="infer.vocoder of the conversion's settings.json"
        )
    if layout is not None:
        locate(voc_cfg, layout)
    return voc_cfg


def vocoder_floor_dir(
    layout: Layout, spk: str, eval_cfg: Eval, voc_cfg: VocoderConfig, frame_ms: float
) -> Path:
    """``dump/<spk>/eval_floor/vocoder-<type>-<key>``: cached vocoder-floor scores.

    ``key`` hashes the vocoder settings (keys added to the schema later left out while
    they hold their default), the ``eval`` block, the WORLD frame period of the scoring
    and the spk fingerprint.
    """
    fp = (read_fingerprint(layout.dump(spk)) or {}).get("fingerprint")
    blob = json.dumps(
        {
            "vocoder": pinned_dict(voc_cfg),
            "eval": to_dict(eval_cfg),
            "frame_ms": frame_ms,
            "fp": fp,
        },
        sort_keys=True,
    )
    key = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return layout.dump(spk) / "eval_floor" / f"vocoder-{voc_cfg.type}-{key}"


def _vocoder(voc_cfg: VocoderConfig, spk: SpkConfig) -> Vocoder:
    key = json.dumps([to_dict(voc_cfg), to_dict(spk.feats.mel), spk.sample_rate], sort_keys=True)
    if key not in _BUILT:
        if mp.parent_process() is not None:  # a worker of the scoring pool: one thread each
            torch.set_num_threads(1)
        _BUILT.clear()
        _BUILT[key] = build_vocoder(voc_cfg, spk, "cpu")
    return _BUILT[key]


def copy_synthesis(target: Speech, spk: SpkConfig, voc_cfg: VocoderConfig) -> np.ndarray:
    """The target through stage 1's analysis and the vocoder (module docstring).

    Args:
        target: The trimmed target recording (the audio front-end's output).
        spk: The spk config (analysis settings).
        voc_cfg: The vocoder settings.

    Returns:
        ndarray: (T * hop_length,) float32 waveform, ``T`` the target's stage-1 frame count
        (a multiple of the reduction factor).

    Raises:
        UnusableAudioError: the target has fewer frames than the reduction factor.
    """
    n_frames = frontend.num_frames(target, spk)
    mel, _ = extract.mel_energy(target, spk, n_frames)
    voc = _vocoder(voc_cfg, spk)
    f0 = None
    if voc.uses_f0:
        lf0, vuv = extract.lf0_vuv(target, spk, n_frames)
        f0 = np.where(vuv > 0.5, np.exp(lf0.astype(np.float64)), 0.0)
    return voc(mel, f0)
