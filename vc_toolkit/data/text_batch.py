"""The padded mini-batch of text-to-speech training: token ids and target features.

The text counterpart of :class:`~vc_toolkit.data.batch.Batch` (contract 2 of issue 16):
a sentence is a row of symbol ids (``0`` is padding, never a real symbol), the
recording's features are the target side exactly as a VC batch has them. Frame
counts (``tgt_lens``) are multiples of the reduction factor ``r``; durations count
*reduced* frames per token (``frames // r``); segments count *tokens* per segment.

Example:
    >>> import numpy as np
    >>> z = np.zeros
    >>> item = dict(utt_id="u", tokens=np.array([3, 4, 5]), tgt_mel=z((4, 2), "f4"),
    ...     tgt_lf0=z(4, "f4"), tgt_vuv=z(4, "f4"), tgt_energy=z(4, "f4"),
    ...     tok_seg=np.array([2, 1]))
    >>> b = collate_text([item, {**item, "tokens": np.array([3]), "tok_seg": np.array([1])}])
    >>> b.tokens.tolist(), b.token_lens.tolist(), b.n_seg.tolist(), b.duration
    ([[3, 4, 5], [3, 0, 0]], [3, 1], [2, 1], None)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vc_toolkit.data.batch import BatchMethods, _ids, _pad


@dataclass
class TextBatch(BatchMethods):
    """A padded batch of sentences and their recordings.

    Attributes:
        utt_ids (list[str]): utterance ids, length B.
        tokens (Tensor): symbol ids, (B, N) long, 0-padded.
        token_lens (Tensor): tokens per sentence, (B,) long.
        tgt_mel (Tensor): normalised log-mel, (B, T, n_mels).
        tgt_lf0 (Tensor): normalised continuous log-F0, (B, T).
        tgt_vuv (Tensor): voiced mask 0/1, (B, T).
        tgt_energy (Tensor): normalised log energy, (B, T).
        tgt_lens (Tensor): frame counts, (B,) long, multiples of ``r``.
        tok_seg (Tensor): tokens per segment, (B, K) long, 0-padded.
        n_seg (Tensor): segments per sentence, (B,) long.
        duration (Tensor | None): fixed reduced frames per token, (B, N) long, 0-padded
            (only when the dump holds ``vc-align`` durations); None: learnt by the aligner.
        src_spk, tgt_spk, src_emo, tgt_emo (Tensor): speaker/emotion ids (rows of the tag's
            speaker table), (B,) long; zeros when the items carry none. A recording has one
            speaker: ``src_*`` equal ``tgt_*``.
    """

    utt_ids: list[str]
    tokens: Tensor
    token_lens: Tensor
    tgt_mel: Tensor
    tgt_lf0: Tensor
    tgt_vuv: Tensor
    tgt_energy: Tensor
    tgt_lens: Tensor
    tok_seg: Tensor
    n_seg: Tensor
    duration: Tensor | None = None
    src_spk: Tensor | None = None
    tgt_spk: Tensor | None = None
    src_emo: Tensor | None = None
    tgt_emo: Tensor | None = None


def collate_text(items: list[dict]) -> TextBatch:
    """Pad text items (contract 1: ``TextDumpSplit[i]``) into a :class:`TextBatch`.

    Args:
        items: Dicts with ``utt_id``, ``tokens`` (N_i,), ``tgt_mel`` (T_i, n_mels),
            ``tgt_lf0``/``tgt_vuv``/``tgt_energy`` (T_i,), ``tok_seg`` (K_i,), optionally
            ``duration`` (N_i,) (all items or none) and the speaker/emotion ids.

    Returns:
        TextBatch: zero-padded tensors; ``duration`` None unless every item has one.

    Raises:
        ValueError: only some items carry fixed durations, or a token id is 0 (padding).
    """
    f32, i64 = torch.float32, torch.long
    with_duration = [it.get("duration") is not None for it in items]
    if any(with_duration) and not all(with_duration):
        missing = [it["utt_id"] for it, has in zip(items, with_duration) if not has]
        raise ValueError(f"items {missing[:3]} have no fixed durations and others have")
    tokens = [np.asarray(it["tokens"], np.int64) for it in items]
    if any((t == 0).any() for t in tokens):
        bad = [it["utt_id"] for it, t in zip(items, tokens) if (t == 0).any()]
        raise ValueError(f"token id 0 is padding, never a symbol; items {bad[:3]} hold it")
    return TextBatch(
        utt_ids=[it["utt_id"] for it in items],
        tokens=_pad(tokens, i64),
        token_lens=torch.tensor([len(t) for t in tokens], dtype=i64),
        tgt_mel=_pad([it["tgt_mel"] for it in items], f32),
        tgt_lf0=_pad([it["tgt_lf0"] for it in items], f32),
        tgt_vuv=_pad([it["tgt_vuv"] for it in items], f32),
        tgt_energy=_pad([it["tgt_energy"] for it in items], f32),
        tgt_lens=torch.tensor([len(it["tgt_mel"]) for it in items], dtype=i64),
        tok_seg=_pad([np.asarray(it["tok_seg"], np.int64) for it in items], i64),
        n_seg=torch.tensor([len(it["tok_seg"]) for it in items], dtype=i64),
        duration=_pad([np.asarray(it["duration"], np.int64) for it in items], i64)
        if all(with_duration) and items
        else None,
        **_ids(items),
    )


__all__ = ["TextBatch", "collate_text"]
