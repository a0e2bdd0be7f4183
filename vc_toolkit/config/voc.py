"""Schema of a vocoder experiment (``conf/voc/<VOC>.yaml``).

A *voc* trains a neural vocoder (HiFi-GAN [Kong et al., NeurIPS 2020]) for one
dataset version: it names its ``spk``, whose sample rate and mel analysis the
vocoder then takes by construction (they can never mismatch), the generator and
discriminator sizes, the data it learns from and its training budget. Like a tag
it is frozen into ``exp/voc/<VOC>/config.yaml`` at its first run and resumes
exactly; a tag uses it with ``infer.vocoder: {type: hifigan, voc: <VOC>}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vc_toolkit.config.core import opt, sub
from vc_toolkit.config.tag import Budget


@dataclass(kw_only=True)
class VocGenerator:
    """HiFi-GAN generator: a preset of the paper (V1-V3) or the CPU-sized ``tiny``."""

    preset: Literal["v1", "v2", "v3", "tiny"] = opt("v1", "generator size: v1, v2, v3 or tiny")
    upsample_rates: list[int] | None = opt(
        None, "upsampling per stage (product = hop_length); null: the preset's, refit to the hop"
    )
    channels: int | None = opt(None, "channels after the input conv (null: the preset's)", min=1)


@dataclass(kw_only=True)
class VocDiscriminator:
    """Multi-period and multi-scale discriminators."""

    preset: Literal["paper", "tiny"] = opt("paper", "discriminator widths: paper or tiny")


@dataclass(kw_only=True)
class GtaData:
    """Ground-truth-aligned fine-tuning data: the acoustic model's teacher-forced mels."""

    tag: str = opt(help="acoustic-model tag whose teacher-forced mels replace the real ones")
    checkpoint: str = opt("best", "its checkpoint: best, latest or epochN")


@dataclass(kw_only=True)
class VocData:
    """What the vocoder learns from: (log-mel, audio) pairs of the spk's recordings."""

    sides: Literal["target", "source", "both"] = opt(
        "target", "recordings of the spk's pairs used: target, source or both"
    )
    finetune: GtaData | None = opt(
        None, "train on a tag's teacher-forced mels paired with the target audio"
    )


@dataclass(kw_only=True)
class VocTrain(Budget):
    """GAN training: AdamW for both sides, exponential learning-rate decay per epoch."""

    batch_size: int = opt(16, "segments per step", min=1)
    segment_frames: int = opt(32, "mel frames per training segment (x hop samples)", min=1)
    lr: float = opt(2e-4, "initial learning rate of generator and discriminators", min=0)
    betas: list[float] = opt(factory=lambda: [0.8, 0.99], help="AdamW betas")
    weight_decay: float = opt(0.01, "AdamW weight decay", min=0)
    lr_decay: float = opt(0.999, "learning rate multiplied by this after every epoch", min=0)
    lambda_mel: float = opt(45.0, "weight of the mel L1 loss", min=0)
    lambda_fm: float = opt(2.0, "weight of the feature-matching loss", min=0)
    best_metric: Literal["mel"] = opt("mel", "dev loss that selects 'best' (mel L1)")
    dev_audio: int = opt(2, "dev utterances written to TensorBoard", min=0)

    def validate(self) -> None:
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"train.betas must be two numbers in [0, 1), got {self.betas}")


@dataclass(kw_only=True)
class VocPretrain:
    """Start from another voc's weights (fine-tuning)."""

    voc: str = opt(help="voc to initialise from")
    checkpoint: str = opt("latest", "its checkpoint: latest, best or epochN")


@dataclass(kw_only=True)
class VocConfig:
    """A vocoder experiment."""

    spk: str = opt(help="dataset version whose audio and mel analysis the vocoder uses")
    note: str = opt("", "free text shown in reports")
    generator: VocGenerator = sub(VocGenerator, "generator")
    discriminator: VocDiscriminator = sub(VocDiscriminator, "discriminators")
    data: VocData = sub(VocData, "training data")
    train: VocTrain = sub(VocTrain, "training")
    pretrain: VocPretrain | None = opt(None, "fine-tune from another voc")

    def validate(self) -> None:
        if self.train.epochs == 0 and self.pretrain is None:
            raise ValueError(
                "train.epochs 0 keeps the pretrain voc's weights; set pretrain.voc, or epochs >= 1"
            )
