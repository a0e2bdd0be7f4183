"""Tiny configs and random data for tests: one factory module.

Tiny recipe configs (:data:`TINY_SPK`, :data:`TINY_TAG`, :func:`tiny_hifigan`) for the
end-to-end tests, and tiny model configs with random batches (:func:`tiny_config`,
:func:`random_batch`) for the model tests.

Example:
    >>> cfg = tiny_config(pitch="ar", prosody="gmm")
    >>> cfg.hidden, cfg.pitch_predictor.type, cfg.prosody.type
    (16, 'ar', 'gmm')
    >>> batch = random_batch(n_mels=4, r=2, src_frames=[6, 4], tgt_frames=[8, 4], n_segs=[2, 1])
    >>> tuple(batch.src_mel.shape), batch.duration.sum(1).tolist()
    ((2, 6, 4), [4, 2])
"""

from __future__ import annotations

import numpy as np

from vc_toolkit.config.tag import (
    ARPitch,
    Conditioning,
    ModelConfig,
    PitchPredictor,
    Postnet,
    Predictor,
    Prosody,
    Stack,
)
from vc_toolkit.data.batch import Batch, collate

TINY_SPK = {
    "note": "tiny demo corpus for tests",
    "corpus": {"name": "demo", "num_utts": 10},
    "sample_rate": 16000,
    "reduction_factor": 2,
    "split": {"dev": 2, "eval": 2, "seed": 0},
    "trim": {
        "silence_thresh_h": -50,
        "silence_thresh_t": -60,
        "chunk_size": 10,
        "min_silence_len": 150,
    },
    "feats": {
        "mel": {"n_fft": 512, "win_length": 512, "hop_length": 160, "n_mels": 20, "fmax": 7600},
        "pitch": {"f0_floor": 60, "f0_ceil": 500},
    },
}


TINY_TAG = {
    "spk": "tiny",
    "note": "tiny model for tests",
    "model": {
        "hidden": 32,
        "encoder": {"layers": 1, "heads": 2, "ff_expansion": 2, "kernel_size": 3},
        "decoder": {"layers": 1, "heads": 2, "ff_expansion": 2, "kernel_size": 3},
        "duration_predictor": {"layers": 1, "channels": 32},
        "pitch_predictor": {"layers": 1, "channels": 32, "ar": {"lstm_hidden": 32, "zoneout": 0.0}},
        "energy_predictor": {"layers": 1, "channels": 32},
        "prosody": {"dim": 4, "num_gaussians": 2, "extractor_channels": 16, "gru_hidden": 16},
        "postnet": {"layers": 2, "channels": 32},
    },
    "train": {
        "batch_size": 2,
        "group_size": 2,
        "epochs": 2,
        "seed": 7,
        "num_threads": 1,
        "eval_interval": 1,
        "ckpt_interval": 1,
        "dev_images": 0,
        "scheduler": {"peak_lr": 2.0e-3, "warm_up_step": 4, "ref_batch_size": 2},
    },
}


TINY_VOC = {
    "spk": "tiny",
    "note": "tiny vocoder for tests",
    "generator": {"preset": "tiny", "channels": 16},
    "discriminator": {"preset": "tiny"},
    "train": {
        "batch_size": 2,
        "segment_frames": 8,
        "epochs": 2,
        "seed": 3,
        "num_threads": 1,
        "ckpt_interval": 1,
        "dev_audio": 1,
    },
}
"""A vocoder experiment on the tiny spk: tiny generator and discriminators, 3 steps/epoch."""


def tiny_hifigan():
    """A HiFi-GAN generator shape for the tiny spk: 20 mels, hop 160 = 5 * 4 * 8."""
    from vc_toolkit.vocoder.hifigan_generator import GeneratorConfig

    return GeneratorConfig(
        num_mels=20,
        upsample_rates=(5, 4, 8),
        upsample_kernel_sizes=(11, 8, 16),
        upsample_initial_channel=16,
        resblock="2",
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1,),),
    )


def tiny_config(
    stack: str = "conformer",
    pos_enc: str = "rel",
    pitch: str = "conv",
    prosody: str = "none",
    use_global: bool = False,
    zoneout: float = 0.0,
    hidden: int = 16,
    conditioning: Conditioning | None = None,
) -> ModelConfig:
    """A small, dropout-free :class:`ModelConfig` (one block per stack).

    Args:
        stack (str): ``conformer`` or ``transformer`` (encoder and decoder).
        pos_enc (str): ``rel`` or ``abs``.
        pitch (str): pitch predictor type, ``conv``, ``ar`` or ``arnar``.
        prosody (str): ``none`` or ``gmm``.
        use_global (bool): wGMM global embedding.
        zoneout (float): zoneout of the ar/arnar pitch LSTM.
        hidden (int): model width.
        conditioning (Conditioning | None): speaker/emotion conditioning (default none).

    Returns:
        ModelConfig: the config.
    """

    def block() -> Stack:
        return Stack(
            type=stack,
            layers=1,
            heads=2,
            ff_expansion=2,
            kernel_size=3,
            dropout=0.0,
            attn_dropout=0.0,
            pos_enc=pos_enc,
        )

    def predictor(**kw) -> Predictor:
        return Predictor(
            layers=1, channels=8, kernel_size=3, dropout=0.0, embed_kernel_size=3, **kw
        )

    ar = ARPitch(lstm_hidden=8, lstm_layers=1, zoneout=zoneout, dropout=0.0, n_prev=1)
    return ModelConfig(
        hidden=hidden,
        encoder=block(),
        decoder=block(),
        duration_predictor=predictor(),
        pitch_predictor=PitchPredictor(
            type=pitch, layers=1, channels=8, kernel_size=3, dropout=0.0, embed_kernel_size=3, ar=ar
        ),
        energy_predictor=predictor(),
        prosody=Prosody(
            type=prosody,
            dim=3,
            num_gaussians=2,
            extractor_channels=8,
            extractor_layers=1,
            extractor_kernel=3,
            gru_hidden=8,
            use_global=use_global,
            global_num_gaussians=2,
        ),
        postnet=Postnet(layers=2, channels=8, kernel_size=3, dropout=0.0),
        conditioning=conditioning or Conditioning(),
    )


def _split(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """``parts`` non-negative counts summing to ``total`` (uniform multinomial)."""
    return rng.multinomial(total, np.ones(parts) / parts).astype(np.int64)


def random_batch(
    n_mels: int,
    r: int,
    src_frames: list[int],
    tgt_frames: list[int],
    n_segs: list[int] | None = None,
    seed: int = 0,
    ids: dict[str, list[int]] | None = None,
) -> Batch:
    """A random padded :class:`Batch` with consistent durations and segments.

    Args:
        n_mels (int): mel bins.
        r (int): reduction factor (every frame count must be a multiple).
        src_frames (list[int]): source frames per utterance.
        tgt_frames (list[int]): target frames per utterance.
        n_segs (list[int] | None): segments per utterance (default 1).
        seed (int): random seed.
        ids (dict[str, list[int]] | None): speaker/emotion ids per utterance by
            :data:`~vc_toolkit.data.labels.ID_KEYS` (all four; default: no ids, zeros).

    Returns:
        Batch: random features; durations (zeros allowed) sum to the reduced target
        length, segment counts to the reduced lengths.
    """
    rng = np.random.default_rng(seed)
    n_segs = n_segs or [1] * len(src_frames)
    items = []
    for k, (ts, tt, ns) in enumerate(zip(src_frames, tgt_frames, n_segs)):
        if ts % r or tt % r:
            raise ValueError(f"frame counts must be multiples of r={r}, got {ts} and {tt}")
        ls, lt = ts // r, tt // r
        src_seg = 1 + _split(ls - ns, ns, rng)
        tgt_seg = 1 + _split(lt - ns, ns, rng)
        items.append(
            dict(
                utt_id=f"utt{k}",
                src_mel=rng.standard_normal((ts, n_mels)).astype("f4"),
                src_lf0=rng.standard_normal(ts).astype("f4"),
                src_vuv=np.ones(ts, "f4"),
                src_energy=rng.standard_normal(ts).astype("f4"),
                tgt_mel=rng.standard_normal((tt, n_mels)).astype("f4"),
                tgt_lf0=rng.standard_normal(tt).astype("f4"),
                tgt_vuv=np.ones(tt, "f4"),
                tgt_energy=rng.standard_normal(tt).astype("f4"),
                duration=_split(lt, ls, rng),
                src_seg=src_seg,
                tgt_seg=tgt_seg,
                **{key: values[k] for key, values in (ids or {}).items()},
            )
        )
    return collate(items)


def tiny_gmm_prosody(use_global: bool = False, stop_gradient: bool = True) -> Prosody:
    """The small wGMM config the prosody-module tests build :class:`ProsodyModule` from.

    Args:
        use_global (bool): also model the utterance-level embedding (3 components).
        stop_gradient (bool): detach the predictor input from the encoder.

    Returns:
        Prosody: ``type="gmm"``, 3-dim embeddings, 2 components, a 6-channel extractor and a
        5-unit GRU.
    """
    return Prosody(
        type="gmm",
        dim=3,
        num_gaussians=2,
        extractor_channels=6,
        extractor_layers=1,
        extractor_kernel=3,
        gru_hidden=5,
        use_global=use_global,
        stop_gradient=stop_gradient,
    )
