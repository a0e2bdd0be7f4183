"""The one place stage 2 tells speech input (VC) from text input (TTS).

A tag's ``model.type`` names its model family (:data:`~vc_toolkit.models.MODEL_FAMILIES`)
and its spk's dump says what the data are: a VC dump (parallel source/target features,
:class:`~vc_toolkit.data.dump.DumpSplit`) or a text dump (symbol ids and the recording's
features, :class:`~vc_toolkit.data.text_dump.TextDumpSplit`, whose spk holds
``symbols.json``). :func:`input_family` checks that the two agree and returns the
:class:`InputFamily` the rest of stage 2 asks for everything that differs: how a split is
read and batched, which lengths the samplers balance (target frames, then source frames
or tokens), how the model is built, what a checkpoint carries beside the weights, the
reference losses and the dev examples. The training loop, its resume, warmup, reports
and Optuna are the same code for both.

Example:
    >>> SPEECH.collate.__name__, TEXT.collate.__name__
    ('collate', 'collate_text')
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from vc_toolkit.config import SpkConfig, TagConfig
from vc_toolkit.data.batch import collate
from vc_toolkit.data.labels import SpeakerTable
from vc_toolkit.data.text_batch import collate_text
from vc_toolkit.errors import UserError
from vc_toolkit.io import atomic_write_text
from vc_toolkit.models import build_model

SYMBOLS_FILE = "symbols.json"
"""The spk's frozen symbol table (``dump/<SPK>/``), copied to ``exp/<TAG>/``."""


class FamilyMismatchError(UserError):
    """The tag's model family cannot read its spk's dump (text vs speech)."""


class InputFamily(ABC):
    """What stage 2 does differently for one kind of input (see the module docstring)."""

    name: str = ""
    collate = staticmethod(collate)

    @abstractmethod
    def open_split(self, split_dir: Path, cfg: TagConfig) -> Any:
        """The reader of ``dump/<SPK>/<split>`` (``len``, ``[i]``, ``utt_ids``, ``labels``)."""

    @abstractmethod
    def lengths(self, split: Any) -> tuple[np.ndarray, np.ndarray]:
        """(target frames, extra lengths) per utterance, for the batch samplers."""

    @abstractmethod
    def build_model(
        self, cfg: TagConfig, spk_cfg: SpkConfig, dump: Path, table: SpeakerTable
    ) -> nn.Module:
        """The tag's model."""

    @abstractmethod
    def padding(self, batch: Any) -> float:
        """Share of a batch's positions (both streams) that are padding."""

    def checkpoint_extras(self, dump: Path) -> dict:
        """What a checkpoint carries beside the weights for inference (default nothing)."""
        return {}

    def write_files(self, dump: Path, exp_dir: Path) -> None:
        """Files of the run folder beside ``speakers.json`` (default none)."""
        return None

    def baselines(self, exp: Any) -> dict[str, dict[str, float]]:
        """Reference dev losses beside the untrained model's, by name (``copy_source``)."""
        return {}

    @abstractmethod
    def log_dev_examples(self, exp: Any, runlog: Any, step: int) -> None:
        """TensorBoard figures and audio of the first ``train.dev_images`` dev utterances."""


class SpeechInput(InputFamily):
    """Parallel speech (``model.type: fastspeech2vc``): source and target features."""

    name = "fastspeech2vc"

    def open_split(self, split_dir: Path, cfg: TagConfig) -> Any:
        from vc_toolkit.data.dump import DumpSplit

        return DumpSplit(split_dir)

    def lengths(self, split: Any) -> tuple[np.ndarray, np.ndarray]:
        return split.tgt_frames, split.src_frames

    def build_model(
        self, cfg: TagConfig, spk_cfg: SpkConfig, dump: Path, table: SpeakerTable
    ) -> nn.Module:
        n_mels = int(spk_cfg.feats.mel.n_mels)
        return build_model(cfg.model, n_mels, spk_cfg.reduction_factor, speakers=table)

    def padding(self, batch: Any) -> float:
        real = float(batch.src_lens.sum() + batch.tgt_lens.sum())
        padded = len(batch) * float(batch.src_lens.max() + batch.tgt_lens.max())
        return 1.0 - real / padded

    def baselines(self, exp: Any) -> dict[str, dict[str, float]]:
        """``copy_source``: the mel L1 of the source itself (see
        :mod:`vc_toolkit.train.baselines`)."""
        from vc_toolkit.train.baselines import copy_source_losses

        batches = (b.to(exp.device) for b in exp.dev_loader())
        return {"copy_source": copy_source_losses(batches, exp.stats, exp.spk_cfg.reduction_factor)}

    def log_dev_examples(self, exp: Any, runlog: Any, step: int) -> None:
        from vc_toolkit.train.devplots import log_dev_examples

        log_dev_examples(exp, runlog, step)


class TextInput(InputFamily):
    """Text (``model.type: fastspeech2tts``): symbol ids and the recording's features.

    Batches are :class:`~vc_toolkit.data.text_batch.TextBatch`; the samplers balance
    target frames and tokens; the vocabulary is the spk's ``symbols.json``, which every
    checkpoint carries (``state["symbols"]``) and the run folder keeps a copy of.
    """

    name = "fastspeech2tts"
    collate = staticmethod(collate_text)

    def open_split(self, split_dir: Path, cfg: TagConfig) -> Any:
        from vc_toolkit.data.text_dump import TextDumpSplit

        durations = cfg.model.text.durations
        if durations is None:
            return TextDumpSplit(split_dir)
        if not (split_dir / "durations" / f"{durations}.npy").is_file():
            raise UserError(
                f"model.text.durations '{durations}': {split_dir}/durations/{durations}.npy "
                f"is missing; write it with vc-align --tag {durations}, or set "
                "model.text.durations: null to learn the durations"
            )
        return TextDumpSplit(split_dir, durations=durations)

    def lengths(self, split: Any) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(split.tgt_frames), np.asarray(split.token_counts)

    def vocab_size(self, dump: Path) -> int:
        from vc_toolkit.text.symbols import SymbolTable

        path = dump / SYMBOLS_FILE
        if not path.is_file():
            spk = dump.name
            raise UserError(
                f"{path} is missing: the text spk's symbol table; run "
                f"./run.sh --stage 1 --stop_stage 1 --spk {spk}"
            )
        return len(SymbolTable.load(path))

    def build_model(
        self, cfg: TagConfig, spk_cfg: SpkConfig, dump: Path, table: SpeakerTable
    ) -> nn.Module:
        n_mels, r = int(spk_cfg.feats.mel.n_mels), spk_cfg.reduction_factor
        return build_model(cfg.model, n_mels, r, speakers=table, vocab_size=self.vocab_size(dump))

    def padding(self, batch: Any) -> float:
        real = float(batch.token_lens.sum() + batch.tgt_lens.sum())
        padded = len(batch) * float(batch.token_lens.max() + batch.tgt_lens.max())
        return 1.0 - real / padded

    def checkpoint_extras(self, dump: Path) -> dict:
        """``symbols``: the frozen symbol table (the JSON of ``symbols.json``)."""
        return {"symbols": json.loads((dump / SYMBOLS_FILE).read_text(encoding="utf-8"))}

    def write_files(self, dump: Path, exp_dir: Path) -> None:
        text = (dump / SYMBOLS_FILE).read_text(encoding="utf-8")
        atomic_write_text(exp_dir / SYMBOLS_FILE, text)

    def log_dev_examples(self, exp: Any, runlog: Any, step: int) -> None:
        from vc_toolkit.train.devplots_tts import log_tts_dev_examples

        log_tts_dev_examples(exp, runlog, step)


SPEECH, TEXT = SpeechInput(), TextInput()
FAMILIES = {family.name: family for family in (SPEECH, TEXT)}


def is_text_spk(dump: Path) -> bool:
    """Whether ``dump/<SPK>`` was made from a text spk (A's :func:`is_text_dump`)."""
    from vc_toolkit.data.text_dump import is_text_dump

    return bool(is_text_dump(dump))


def input_family(cfg: TagConfig, dump: Path) -> InputFamily:
    """The input family of a tag, checked against its spk's dump.

    Args:
        cfg: The tag config (``model.type``).
        dump: ``dump/<SPK>`` of its spk (stage 1 done).

    Raises:
        FamilyMismatchError: a TTS model on a speech spk, or a VC model on a text spk.
    """
    family = FAMILIES[cfg.model.type]
    text = is_text_spk(dump)
    if text != (family is TEXT):
        kind = "a text spk (tokens, no source speech)" if text else "a speech spk (no text)"
        want = "fastspeech2tts" if text else "fastspeech2vc"
        raise FamilyMismatchError(
            f"model.type {cfg.model.type} cannot train on spk '{cfg.spk}', {kind}; set "
            f"model.type: {want}, or a spk of the other kind"
        )
    return family
