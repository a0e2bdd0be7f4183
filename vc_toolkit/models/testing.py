"""Tiny model configs and random batches for tests and smoke runs.

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
    ModelConfig,
    PitchPredictor,
    Postnet,
    Predictor,
    Prosody,
    Stack,
)
from vc_toolkit.data.batch import Batch, collate


def tiny_config(
    stack: str = "conformer",
    pos_enc: str = "rel",
    pitch: str = "conv",
    prosody: str = "none",
    use_global: bool = False,
    zoneout: float = 0.0,
    hidden: int = 16,
) -> ModelConfig:
    """A small, dropout-free :class:`ModelConfig` (one block per stack).

    Args:
        stack (str): ``conformer`` or ``transformer`` (encoder and decoder).
        pos_enc (str): ``rel`` or ``abs``.
        pitch (str): pitch predictor type, ``conv`` or ``ar``.
        prosody (str): ``none`` or ``gmm``.
        use_global (bool): wGMM global embedding.
        zoneout (float): zoneout of the ar pitch LSTM.
        hidden (int): model width.

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
) -> Batch:
    """A random padded :class:`Batch` with consistent durations and segments.

    Args:
        n_mels (int): mel bins.
        r (int): reduction factor (every frame count must be a multiple).
        src_frames (list[int]): source frames per utterance.
        tgt_frames (list[int]): target frames per utterance.
        n_segs (list[int] | None): segments per utterance (default 1).
        seed (int): random seed.

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
            )
        )
    return collate(items)
