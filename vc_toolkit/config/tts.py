"""Schema of the text side of a ``model.type: fastspeech2tts`` tag (``model.text``).

The TTS family (:mod:`vc_toolkit.models.fastspeech2tts`) embeds symbol ids, encodes them
with the same block stacks as VC and learns its durations with the aligner
(``model.aligner``, :mod:`vc_toolkit.config.aligner`). This block says what the aligner
sees of the text, and whether a tag trains on durations an earlier tag wrote instead.

Example:
    >>> from vc_toolkit.config.core import build
    >>> cfg = build(TextModel, {"aligner_input": "encoder"})
    >>> cfg.aligner_input, cfg.durations
    ('encoder', None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vc_toolkit.config.aligner import Aligner
from vc_toolkit.config.core import opt

MODEL_TYPES = ("fastspeech2vc", "fastspeech2tts")
"""``model.type`` choices: speech input (voice conversion) or text input (TTS)."""


@dataclass(kw_only=True)
class TextModel:
    """Text side of a TTS model: what the aligner reads, and fixed durations."""

    aligner_input: Literal["embedding", "encoder"] = opt(
        "embedding",
        "text side of the aligner: the token embeddings (as RAD-TTS/FastPitch) or the "
        "encoder output",
    )
    durations: str | None = opt(
        None,
        "train on the durations 'vc-align --tag <this>' wrote "
        "(dump/<SPK>/<split>/durations/<this>.npy) instead of the aligner's MAS durations; "
        "null: learn them",
    )

    def validate(self) -> None:
        if self.durations is not None and not self.durations.strip():
            raise ValueError("model.text.durations is empty; name a tag or use null")


def check_family(model: Any) -> None:
    """Refuse TTS-only keys in a VC model (they would be silently ignored).

    Args:
        model: a :class:`~vc_toolkit.config.tag.ModelConfig`.

    Raises:
        ValueError: ``model.variance_level``, ``model.text`` or ``model.aligner`` differ from
            their defaults while ``model.type`` is not ``fastspeech2tts``.
    """
    if model.type == "fastspeech2tts":
        return
    defaults = {"variance_level": "frame", "text": TextModel(), "aligner": Aligner()}
    for key, default in defaults.items():
        if getattr(model, key) != default:
            raise ValueError(
                f"model.{key} is a fastspeech2tts key and model.type is {model.type}; "
                f"remove model.{key} or set model.type: fastspeech2tts"
            )
