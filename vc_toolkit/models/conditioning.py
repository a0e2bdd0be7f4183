"""Speaker and emotion conditioning of the hidden sequence (``model.conditioning``).

A spk may hold many source/target speakers and speaking styles; the model learns one
embedding row per name of the tag's :class:`~vc_toolkit.data.labels.SpeakerTable` and
adds a projection of the utterance's conditioning vector to the hidden sequence, as in
multi-speaker FastSpeech2 [Ren et al., ICLR 2021] and ESPnet's FastSpeech2 with
``spk_embed_integration_type: add`` (there a speaker embedding is projected to the
model width and added to the encoder output). Here the vector holds both sides of the
conversion: the source and target speaker rows, and optionally the source and target
emotion rows, concatenated.

The sites (:data:`~vc_toolkit.config.tag.SITES`):

- ``encoder``: the encoder output, before segment prosody; everything downstream sees it.
- ``adaptor``: the inputs of the duration, pitch and energy predictors only; the
  sequence passed on to the decoder is left as it is.
- ``decoder``: the decoder input (after the pitch and energy embeddings).

Each site has its own ``Linear(vector, hidden)``; padded positions stay zero.

Choices are registered in :data:`~vc_toolkit.models.registry.CONDITIONING` and built as
``cls(hidden, cfg, speakers)``; ``none`` has no parameters and returns its input.

Example:
    >>> from vc_toolkit.config.tag import Conditioning
    >>> from vc_toolkit.data.labels import SpeakerTable
    >>> table = SpeakerTable(speakers=["a", "b", "c"])
    >>> emb = EmbeddingConditioning(8, Conditioning(type="embedding", dim=4), table)
    >>> x, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    >>> cond = {"src_spk": torch.tensor([0, 1]), "tgt_spk": torch.tensor([2, 2])}
    >>> tuple(emb(x, mask, "encoder", cond).shape), emb.tables()
    ((2, 5, 8), {'speaker.weight': 'speakers'})
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from vc_toolkit.config.tag import Conditioning
from vc_toolkit.data.labels import ID_KEYS, SpeakerTable
from vc_toolkit.models.registry import CONDITIONING, Choice

Cond = Mapping[str, Tensor]
"""Speaker/emotion ids: keys of :data:`~vc_toolkit.data.labels.ID_KEYS`, each (B,) long."""


def default_table() -> SpeakerTable:
    """The table of a one-to-one spk: speakers ``src`` and ``tgt``, emotion neutral."""
    return SpeakerTable(speakers=["src", "tgt"])


class ConditioningBase(Choice, nn.Module, ABC):
    """Adds speaker/emotion information to the hidden sequence at named sites."""

    @abstractmethod
    def forward(self, x: Tensor, mask: Tensor, site: str, cond: Cond | None) -> Tensor:
        """The sequence at ``site`` with the conditioning added.

        Args:
            x (Tensor): hidden sequence, (B, L, hidden).
            mask (Tensor): real positions, (B, L) bool.
            site (str): ``encoder``, ``adaptor`` or ``decoder``.
            cond (Cond | None): ids (B,) long by :data:`ID_KEYS`; a missing key is id 0.

        Returns:
            Tensor: (B, L, hidden); ``x`` itself where the site is not conditioned.
        """

    def tables(self) -> dict[str, str]:
        """Parameter names (relative to this module) of the embedding tables, each mapped
        to the :class:`SpeakerTable` list naming its rows (``speakers`` or ``emotions``)."""
        return {}


@CONDITIONING.register("none")
class NoConditioning(ConditioningBase):
    """One-to-one conversion: no parameters, the sequence is returned unchanged."""

    def __init__(self, hidden: int, cfg: Conditioning, speakers: SpeakerTable) -> None:
        super().__init__()

    def forward(self, x: Tensor, mask: Tensor, site: str, cond: Cond | None) -> Tensor:
        return x


@CONDITIONING.register("embedding")
class EmbeddingConditioning(ConditioningBase):
    """Lookup tables of speakers (and emotions) projected and added per site.

    Args:
        hidden (int): model width.
        cfg (Conditioning): ``dim`` (row size), ``sites``, ``share`` (one speaker table for
            both sides, else ``src_speaker``/``tgt_speaker``), ``emotion`` (also the
            ``emotion`` or ``src_emotion``/``tgt_emotion`` tables).
        speakers (SpeakerTable): names of the rows (``len(speakers.speakers)`` speaker rows,
            ``len(speakers.emotions)`` emotion rows).
    """

    def __init__(self, hidden: int, cfg: Conditioning, speakers: SpeakerTable) -> None:
        super().__init__()
        self.sizes = {"speakers": len(speakers.speakers), "emotions": len(speakers.emotions)}
        kinds = [("spk", "speaker", "speakers")]
        if cfg.emotion:
            kinds.append(("emo", "emotion", "emotions"))
        self.lookups: list[tuple[str, str]] = []  # (id key, table attribute), vector order
        self._kind: dict[str, str] = {}
        for short, name, kind in kinds:
            attrs = [name, name] if cfg.share else [f"src_{name}", f"tgt_{name}"]
            for side, attr in zip(("src", "tgt"), attrs):
                if attr not in self._kind:
                    table = nn.Embedding(self.sizes[kind], cfg.dim)
                    nn.init.normal_(table.weight, std=cfg.dim**-0.5)
                    self.add_module(attr, table)
                    self._kind[attr] = kind
                self.lookups.append((f"{side}_{short}", attr))
        width = cfg.dim * len(self.lookups)
        self.proj = nn.ModuleDict({site: nn.Linear(width, hidden) for site in cfg.sites})

    def tables(self) -> dict[str, str]:
        return {f"{attr}.weight": kind for attr, kind in self._kind.items()}

    def _ids(self, cond: Cond | None, key: str, attr: str, like: Tensor) -> Tensor:
        ids = (cond or {}).get(key)
        if ids is None:
            return torch.zeros(like.shape[0], dtype=torch.long, device=like.device)
        if ids.shape != (like.shape[0],):
            raise ValueError(
                f"cond[{key!r}] must have shape ({like.shape[0]},), got {tuple(ids.shape)}"
            )
        rows = self.sizes[self._kind[attr]]
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= rows):
            raise ValueError(
                f"cond[{key!r}] holds ids {ids.tolist()} but the {self._kind[attr]} table has "
                f"{rows} rows; use the ids of the tag's speakers.json"
            )
        return ids.to(like.device)

    def vector(self, cond: Cond | None, like: Tensor) -> Tensor:
        """The conditioning vector of every utterance, (B, dim * tables looked up).

        Args:
            cond (Cond | None): ids (B,) long; missing keys are id 0.
            like (Tensor): a (B, ...) tensor giving the batch size and device.
        """
        rows = [getattr(self, attr)(self._ids(cond, key, attr, like)) for key, attr in self.lookups]
        return torch.cat(rows, dim=-1)

    def forward(self, x: Tensor, mask: Tensor, site: str, cond: Cond | None) -> Tensor:
        if site not in self.proj:
            return x
        c = self.proj[site](self.vector(cond, x))  # (B, hidden)
        return (x + c[:, None, :]).masked_fill(~mask[..., None], 0.0)


__all__ = [
    "ID_KEYS",
    "Cond",
    "ConditioningBase",
    "EmbeddingConditioning",
    "NoConditioning",
    "default_table",
]
