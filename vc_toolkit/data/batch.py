"""The padded mini-batch every model and loss consumes.

Frame counts (``src_lens``, ``tgt_lens``) are multiples of the reduction
factor ``r``; durations and segment counts are in *reduced* frames
(``frames // r``). Padding is zero, and the ``*_lens`` tell what is real.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import numpy as np
import torch
from torch import Tensor

from vc_toolkit.data.labels import ID_KEYS


class BatchMethods:
    """What every padded batch dataclass shares (:class:`Batch`, and the text batch of
    :mod:`vc_toolkit.data.text_batch`): default speaker/emotion ids, the conditioning ids,
    moving to a device and the batch size. The dataclass needs ``utt_ids`` and the four
    :data:`~vc_toolkit.data.labels.ID_KEYS` fields."""

    utt_ids: list[str]

    def __post_init__(self) -> None:
        for key in ID_KEYS:
            if getattr(self, key) is None:
                setattr(self, key, torch.zeros(len(self.utt_ids), dtype=torch.long))

    def conditioning(self) -> dict[str, Tensor]:
        """The speaker/emotion ids, :data:`~vc_toolkit.data.labels.ID_KEYS` → (B,) long."""
        return {key: getattr(self, key) for key in ID_KEYS}

    def to(self, device: torch.device | str) -> Self:
        """Move every tensor to ``device`` (non-blocking where possible)."""
        moved = {
            f.name: (
                getattr(self, f.name).to(device, non_blocking=True)
                if isinstance(getattr(self, f.name), Tensor)
                else getattr(self, f.name)
            )
            for f in fields(self)
        }
        return type(self)(**moved)

    def __len__(self) -> int:
        return len(self.utt_ids)


@dataclass
class Batch(BatchMethods):
    """A padded batch of parallel utterances.

    Attributes:
        utt_ids (list[str]): utterance ids, length B.
        src_mel (Tensor): normalised source log-mel, (B, Ts, n_mels).
        src_lf0 (Tensor): normalised source log-F0 (continuous), (B, Ts).
        src_vuv (Tensor): source voiced mask 0/1, (B, Ts).
        src_energy (Tensor): normalised source log energy, (B, Ts).
        src_lens (Tensor): source frame counts, (B,) long.
        tgt_mel (Tensor): normalised target log-mel, (B, Tt, n_mels).
        tgt_lf0 (Tensor): normalised target log-F0 (continuous), (B, Tt).
        tgt_vuv (Tensor): target voiced mask 0/1, (B, Tt).
        tgt_energy (Tensor): normalised target log energy, (B, Tt).
        tgt_lens (Tensor): target frame counts, (B,) long.
        duration (Tensor): reduced target frames per reduced source frame, (B, Ts // r) long.
        src_seg (Tensor): reduced source frames per segment, (B, K) long, 0-padded.
        tgt_seg (Tensor): reduced target frames per segment, (B, K) long, 0-padded.
        n_seg (Tensor): number of segments, (B,) long.
        src_spk (Tensor): source speaker ids (rows of the tag's speaker table), (B,) long.
        tgt_spk (Tensor): target speaker ids, (B,) long.
        src_emo (Tensor): source emotion ids, (B,) long.
        tgt_emo (Tensor): target emotion ids, (B,) long. Items without ids (one-to-one
            spks) get 0 for all four; see :mod:`vc_toolkit.data.labels`.
    """

    utt_ids: list[str]
    src_mel: Tensor
    src_lf0: Tensor
    src_vuv: Tensor
    src_energy: Tensor
    src_lens: Tensor
    tgt_mel: Tensor
    tgt_lf0: Tensor
    tgt_vuv: Tensor
    tgt_energy: Tensor
    tgt_lens: Tensor
    duration: Tensor
    src_seg: Tensor
    tgt_seg: Tensor
    n_seg: Tensor
    src_spk: Tensor | None = None
    tgt_spk: Tensor | None = None
    src_emo: Tensor | None = None
    tgt_emo: Tensor | None = None


def _ids(items: list[dict]) -> dict[str, Tensor]:
    """Speaker/emotion ids of the items that carry them (all four keys), as (B,) long."""
    if not items or any(key not in it for it in items for key in ID_KEYS):
        return {}
    return {key: torch.tensor([int(it[key]) for it in items], dtype=torch.long) for key in ID_KEYS}


def _pad(arrays: list[np.ndarray], dtype: torch.dtype) -> Tensor:
    length = max(len(a) for a in arrays)
    shape = (len(arrays), length, *arrays[0].shape[1:])
    out = torch.zeros(shape, dtype=dtype)
    for k, a in enumerate(arrays):
        out[k, : len(a)] = torch.from_numpy(np.asarray(a))
    return out


def collate_sources(items: list[dict]) -> dict[str, Tensor]:
    """Pad the source side of utterance dicts: what conversion feeds the model.

    Args:
        items: Dicts with ``src_mel`` (T_i, n_mels), ``src_lf0``/``src_energy`` (T_i,) and
            ``src_seg`` (K_i,) reduced frames per segment (targets are not needed), and
            optionally the speaker/emotion ids (:data:`~vc_toolkit.data.labels.ID_KEYS`).

    Returns:
        ``src_mel`` (B, T, n_mels), ``src_lf0``/``src_energy`` (B, T) float32, ``src_lens``
        (B,), ``src_seg`` (B, K) zero-padded and ``n_seg`` (B,) long, as in :class:`Batch`;
        plus the ids (B,) long when every item has them.

    Example:
        >>> z = np.zeros
        >>> b = collate_sources([dict(src_mel=z((4, 2)), src_lf0=z(4), src_energy=z(4),
        ...     src_seg=np.array([2])), dict(src_mel=z((2, 2)), src_lf0=z(2),
        ...     src_energy=z(2), src_seg=np.array([1, 0]))])
        >>> tuple(b["src_mel"].shape), b["src_lens"].tolist(), b["n_seg"].tolist()
        ((2, 4, 2), [4, 2], [1, 2])
    """
    f32, i64 = torch.float32, torch.long
    return {
        "src_mel": _pad([np.asarray(it["src_mel"], np.float32) for it in items], f32),
        "src_lf0": _pad([np.asarray(it["src_lf0"], np.float32) for it in items], f32),
        "src_energy": _pad([np.asarray(it["src_energy"], np.float32) for it in items], f32),
        "src_lens": torch.tensor([len(it["src_mel"]) for it in items], dtype=i64),
        "src_seg": _pad([np.asarray(it["src_seg"], np.int64) for it in items], i64),
        "n_seg": torch.tensor([len(it["src_seg"]) for it in items], dtype=i64),
        **_ids(items),
    }


def collate(items: list[dict]) -> Batch:
    """Pad a list of utterance dicts (as returned by ``DumpSplit[i]``) into a :class:`Batch`.

    Example:
        >>> import numpy as np
        >>> z, o = np.zeros, np.ones
        >>> item = dict(utt_id="u", src_mel=z((4, 2), "f4"), src_lf0=z(4, "f4"),
        ...     src_vuv=o(4, "f4"), src_energy=z(4, "f4"), tgt_mel=z((6, 2), "f4"),
        ...     tgt_lf0=z(6, "f4"), tgt_vuv=o(6, "f4"), tgt_energy=z(6, "f4"),
        ...     duration=np.array([2, 1, 1, 2]), src_seg=np.array([4]), tgt_seg=np.array([6]))
        >>> b = collate([item])
        >>> tuple(b.src_mel.shape), b.tgt_lens.tolist(), b.n_seg.tolist()
        ((1, 4, 2), [6], [1])
    """
    f32, i64 = torch.float32, torch.long
    return Batch(
        utt_ids=[it["utt_id"] for it in items],
        src_mel=_pad([it["src_mel"] for it in items], f32),
        src_lf0=_pad([it["src_lf0"] for it in items], f32),
        src_vuv=_pad([it["src_vuv"] for it in items], f32),
        src_energy=_pad([it["src_energy"] for it in items], f32),
        src_lens=torch.tensor([len(it["src_mel"]) for it in items], dtype=i64),
        tgt_mel=_pad([it["tgt_mel"] for it in items], f32),
        tgt_lf0=_pad([it["tgt_lf0"] for it in items], f32),
        tgt_vuv=_pad([it["tgt_vuv"] for it in items], f32),
        tgt_energy=_pad([it["tgt_energy"] for it in items], f32),
        tgt_lens=torch.tensor([len(it["tgt_mel"]) for it in items], dtype=i64),
        duration=_pad([it["duration"] for it in items], i64),
        src_seg=_pad([it["src_seg"] for it in items], i64),
        tgt_seg=_pad([it["tgt_seg"] for it in items], i64),
        n_seg=torch.tensor([len(it["src_seg"]) for it in items], dtype=i64),
        **_ids(items),
    )
