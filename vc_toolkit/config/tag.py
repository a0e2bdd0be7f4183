"""Schema of an experiment (``conf/tag/<TAG>.yaml``).

A *tag* pins one experiment: the dataset version it trains on (``spk``), the
model variant, the training recipe, the loss weights and, optionally, the tag
it fine-tunes from. The resolved config is frozen into ``exp/<TAG>/config.yaml``
at the first run.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from vc_toolkit.config.aligner import Aligner
from vc_toolkit.config.core import added_later, opt, sub
from vc_toolkit.config.tts import MODEL_TYPES, TextModel, check_family


@dataclass(kw_only=True)
class Stack:
    """Encoder or decoder: a stack of Conformer or Transformer blocks."""

    type: Literal["conformer", "transformer"] = opt("conformer", "block type")
    layers: int = opt(4, "number of blocks", min=1)
    heads: int = opt(2, "attention heads (must divide model.hidden)", min=1)
    ff_expansion: int = opt(4, "feed-forward width = hidden * ff_expansion", min=1)
    kernel_size: int = opt(7, "depthwise conv kernel of the Conformer conv module (odd)", min=1)
    dropout: float = opt(0.1, "dropout after sub-layers", min=0, max=1)
    attn_dropout: float = opt(0.1, "dropout on attention weights", min=0, max=1)
    pos_enc: Literal["rel", "abs"] = opt("rel", "relative (Transformer-XL style) or sinusoidal")
    macaron: bool = opt(True, "Conformer: two half-step feed-forward modules")


@dataclass(kw_only=True)
class Predictor:
    """FastSpeech2 variance predictor: conv stack + linear."""

    layers: int = opt(2, "conv layers", min=1)
    channels: int = opt(256, "conv channels", min=1)
    kernel_size: int = opt(3, "conv kernel (odd)", min=1)
    dropout: float = opt(0.5, "dropout", min=0, max=1)
    stop_gradient: bool = opt(False, "detach the predictor input from the encoder")
    embed_kernel_size: int = opt(
        9, "conv kernel embedding the value back into the hidden (odd; pitch, energy)", min=1
    )


@dataclass(kw_only=True)
class ARPitch:
    """Autoregressive pitch head (LSTM over reduced frames)."""

    lstm_hidden: int = opt(256, "LSTM units", min=1)
    lstm_layers: int = opt(1, "LSTM layers", min=1)
    zoneout: float = opt(0.1, "zoneout probability on LSTM states", min=0, max=1)
    dropout: float = opt(0.1, "dropout on the LSTM output", min=0, max=1)
    n_prev: int = opt(1, "previous reduced frames of pitch fed back", min=1)


@dataclass(kw_only=True)
class PitchPredictor(Predictor):
    """Pitch predictor: conv stack (``conv``) or conv + autoregressive LSTM (``ar``, ``arnar``).

    ``arnar`` is autoregressive within each sentence segment only (the state restarts at
    every segment); it shares the ``ar`` settings block.
    """

    type: Literal["conv", "ar", "arnar"] = opt(
        "conv",
        "conv (FastSpeech2), ar (autoregressive) or arnar (autoregressive within each segment)",
    )
    ar: ARPitch = sub(ARPitch, "settings of the ar and arnar heads")


@dataclass(kw_only=True)
class Prosody:
    """Segment-level prosody embeddings with a Gaussian-mixture predictor (wGMM)."""

    type: Literal["none", "gmm"] = opt("none", "none, or gmm (segment prosody)")
    dim: int = opt(8, "prosody embedding size", min=1)
    num_gaussians: int = opt(5, "mixture components per segment", min=1)
    extractor_channels: int = opt(128, "conv channels of the reference extractor", min=1)
    extractor_layers: int = opt(2, "conv layers of the reference extractor", min=1)
    extractor_kernel: int = opt(3, "conv kernel of the reference extractor (odd)", min=1)
    gru_hidden: int = opt(128, "GRU units of the autoregressive predictor", min=1)
    use_global: bool = opt(False, "also model an utterance-level (global) embedding")
    global_num_gaussians: int = opt(3, "mixture components of the global embedding", min=1)
    stop_gradient: bool = opt(True, "detach the predictor input from the encoder")


SITES = ("encoder", "adaptor", "decoder")
"""Where the speaker/emotion conditioning can be added (see :class:`Conditioning`)."""


@dataclass(kw_only=True)
class Conditioning:
    """Speaker (and emotion) embeddings added to the hidden sequence (many-to-many spks).

    Rows are the names of the tag's speaker table (``exp/<TAG>/speakers.json``). Sites:
    ``encoder`` (the encoder output: everything downstream sees it), ``adaptor`` (the inputs
    of the duration, pitch and energy predictors only) and ``decoder`` (the decoder input).
    """

    type: Literal["none", "embedding"] = opt(
        "none", "none (one-to-one: no parameters), or embedding (speaker lookup tables)"
    )
    dim: int = opt(64, "embedding size of every table", min=1)
    sites: list[Literal["encoder", "adaptor", "decoder"]] = opt(
        factory=lambda: ["encoder"],
        help="where the projected embedding is added: encoder, adaptor and/or decoder",
    )
    share: bool = opt(
        True, "true: source and target speakers look up one table; false: separate tables"
    )
    emotion: bool = opt(False, "also embed the source and target emotions (style)")

    def validate(self) -> None:
        if self.type == "none":
            return
        if not self.sites:
            raise ValueError(
                "model.conditioning.sites is empty; list at least one of encoder, adaptor, decoder"
            )
        if len(set(self.sites)) != len(self.sites):
            raise ValueError(
                f"model.conditioning.sites {self.sites} repeats a site; list each site once"
            )


@dataclass(kw_only=True)
class Postnet:
    """Conv postnet refining the decoder mel."""

    layers: int = opt(5, "conv layers (0 disables)", min=0)
    channels: int = opt(256, "conv channels", min=1)
    kernel_size: int = opt(5, "conv kernel (odd)", min=1)
    dropout: float = opt(0.5, "dropout", min=0, max=1)


@dataclass(kw_only=True)
class ModelConfig:
    """FastSpeech2-style model: voice conversion (speech input) or TTS (text input)."""

    preset: str | None = opt(None, "conf/model/<preset>.yaml supplies defaults under this block")
    type: Literal[MODEL_TYPES] = added_later(
        opt(
            "fastspeech2vc",
            "model family: fastspeech2vc (speech input) or fastspeech2tts (text input, a text "
            "spk; learns its durations with model.aligner)",
        )
    )
    hidden: int = opt(256, "model width", min=1)
    encoder: Stack = sub(Stack, "encoder blocks")
    decoder: Stack = sub(Stack, "decoder blocks")
    use_source_pitch_energy: bool = opt(True, "embed source log-F0/energy into the input")
    duration_predictor: Predictor = sub(Predictor, "log-duration predictor")
    pitch_predictor: PitchPredictor = sub(PitchPredictor, "pitch predictor")
    energy_predictor: Predictor = sub(Predictor, "energy predictor")
    prosody: Prosody = sub(Prosody, "segment prosody (wGMM)")
    postnet: Postnet = sub(Postnet, "postnet")
    conditioning: Conditioning = added_later(
        sub(Conditioning, "speaker/emotion embeddings (many speakers or styles in one spk)")
    )
    variance_level: Literal["frame", "token"] = added_later(
        opt(
            "frame",
            "fastspeech2tts: pitch and energy predicted per reduced frame (as VC) or averaged "
            "over each token's frames (FastPitch style)",
        )
    )
    text: TextModel = added_later(sub(TextModel, "fastspeech2tts: text side"))
    aligner: Aligner = added_later(sub(Aligner, "fastspeech2tts: learned text-to-mel aligner"))

    def validate(self) -> None:
        """Every constraint the model's parts enforce when they are built (``models/``).

        Kernels are checked only where the model builds a convolution with them: the
        Conformer conv module, the predictors and the value embeddings of pitch and energy,
        the wGMM reference extractor, the postnet.
        """
        self.conditioning.validate()
        check_family(self)
        for name in ("encoder", "decoder"):
            stack = getattr(self, name)
            if self.hidden % stack.heads:
                raise ValueError(
                    f"model.{name}.heads ({stack.heads}) must divide model.hidden ({self.hidden})"
                )
        kernels = {
            f"{name}.kernel_size": getattr(self, name).kernel_size
            for name in ("encoder", "decoder")
            if getattr(self, name).type == "conformer"
        }
        for name in ("duration_predictor", "pitch_predictor", "energy_predictor", "postnet"):
            kernels[f"{name}.kernel_size"] = getattr(self, name).kernel_size
        for name in ("pitch_predictor", "energy_predictor"):
            kernels[f"{name}.embed_kernel_size"] = getattr(self, name).embed_kernel_size
        if self.prosody.type == "gmm":
            kernels["prosody.extractor_kernel"] = self.prosody.extractor_kernel
        for key, k in kernels.items():
            if k % 2 == 0:
                raise ValueError(f"model.{key} must be odd, got {k}")


@dataclass(kw_only=True)
class Optimizer:
    type: Literal["adam", "adamw"] = opt("adam", "optimizer")
    betas: list[float] = opt(factory=lambda: [0.9, 0.98], help="Adam betas")
    eps: float = opt(1e-9, "Adam epsilon", min=0)
    weight_decay: float = opt(0.0, "weight decay", min=0)

    def validate(self) -> None:
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optimizer.betas must be two numbers in [0, 1), got {self.betas}")


@dataclass(kw_only=True)
class Scheduler:
    """Learning-rate schedule whose shape is defined in samples, not steps.

    ``warm_up_step`` is counted at ``ref_batch_size`` utterances per step; the
    scheduler converts it with the actual (global) batch size, so changing only
    the batch size keeps lr as a function of samples seen.
    """

    type: Literal["warmup", "noam", "constant"] = opt(
        "warmup", "warmup: linear up to peak_lr then 1/sqrt decay; noam: legacy; constant"
    )
    peak_lr: float = opt(1e-3, "highest learning rate (warmup, constant)", min=0)
    warm_up_step: int | None = opt(4000, "warmup length in steps of ref_batch_size", min=0)
    warmup_samples: int | None = opt(None, "warmup length in utterances (instead of warm_up_step)")
    ref_batch_size: int = opt(
        16, "batch size at which warm_up_step/anneal_steps are counted", min=1
    )
    base_lr: float = opt(1.0, "noam: lr = base_lr * hidden^-0.5 * min(s^-0.5, s * w^-1.5)", min=0)
    max_lr_scale: float | None = opt(
        None, "noam: cap on the Noam factor, so a short warmup cannot blow the lr up"
    )
    decay: Literal["rsqrt", "none"] = opt("rsqrt", "after warmup: 1/sqrt decay or hold the peak")
    anneal_steps: list[int] = opt(
        factory=list,
        help="steps (at ref_batch_size) after which the lr is multiplied by anneal_rate",
    )
    anneal_rate: float = opt(1.0, "multiplier applied at each anneal step", min=0)
    min_lr: float = opt(0.0, "floor of the learning rate", min=0)

    def validate(self) -> None:
        if self.warm_up_step is not None and self.warmup_samples is not None:
            raise ValueError("give only one of scheduler.warm_up_step and scheduler.warmup_samples")
        if self.type == "noam" and self.max_lr_scale is None:
            raise ValueError(
                "scheduler.type noam needs scheduler.max_lr_scale (a cap on the Noam factor)"
            )
        if sorted(self.anneal_steps) != self.anneal_steps:
            raise ValueError(f"scheduler.anneal_steps must be increasing, got {self.anneal_steps}")

    def warmup_in_samples(self) -> int:
        """Warmup length in utterances seen."""
        if self.warmup_samples is not None:
            return self.warmup_samples
        return (self.warm_up_step or 0) * self.ref_batch_size


@dataclass(kw_only=True)
class Loss:
    """Loss weights: one field per loss term (``term`` metadata names it; default the field)."""

    mel: float = opt(1.0, "weight of the mel L1 before the postnet", min=0)
    post_mel: float = opt(1.0, "weight of the mel L1 after the postnet", min=0)
    duration: float = opt(1.0, "weight of the log-duration MSE", min=0)
    pitch: float = opt(1.0, "weight of the pitch MSE", min=0)
    energy: float = opt(1.0, "weight of the energy MSE", min=0)
    beta: float = opt(0.01, "weight of the segment prosody GMM NLL", min=0, term="gmm")
    g_beta: float = opt(0.01, "weight of the global prosody GMM NLL", min=0, term="global_gmm")
    forward_sum: float = added_later(
        opt(1.0, "fastspeech2tts: weight of the aligner's forward-sum (CTC) loss", min=0)
    )
    bin: float = added_later(
        opt(
            1.0,
            "fastspeech2tts: weight of the alignment binarisation loss (ramped in from "
            "model.aligner.bin_start_steps)",
            min=0,
        )
    )


def loss_term_names() -> tuple[str, ...]:
    """The loss term each :class:`Loss` field weights, in field order.

    Example:
        >>> loss_term_names()[-4:-2]
        ('gmm', 'global_gmm')
    """
    return tuple(f.metadata.get("term", f.name) for f in fields(Loss))


LOSS_NAMES = (*loss_term_names(), "total")
"""Every dev-loss name: the weighted terms and their weighted sum ``total``."""


@dataclass(kw_only=True)
class Budget:
    """How long a training run goes and what it keeps: shared by tags and vocoders."""

    epochs: int = opt(
        100, "epoch budget (0: keep the pretrain weights as they are, an inference variant)", min=0
    )
    max_steps: int | None = opt(None, "optional step budget (stops earlier than epochs)")
    seed: int = opt(1234, "seed of initialisation, sampling and dropout")
    num_workers: int = opt(0, "data-loader workers", min=0)
    num_threads: int | None = opt(None, "torch CPU threads (null: all cores)")
    eval_interval: int = opt(1, "dev evaluation every N epochs", min=1)
    ckpt_interval: int = opt(10, "keep an epochN checkpoint every N epochs", min=1)
    save_interval_steps: int | None = opt(
        None, "also refresh 'latest' every N steps (mid-epoch resume)"
    )
    keep_checkpoints: int = opt(5, "epochN checkpoints kept (older ones deleted)", min=1)
    max_nonfinite: int = opt(10, "abort after this many non-finite losses in a row", min=1)
    max_dev_ratio: float = added_later(
        opt(
            10.0,
            "stop as diverged when the dev best_metric exceeds this many times the untrained "
            "model's (0: never)",
            min=0,
        )
    )
    amp: bool = opt(False, "mixed precision (CUDA only)")
    log_interval: int = opt(10, "steps between text-log lines", min=1)


@dataclass(kw_only=True)
class Train(Budget):
    """Training recipe: batches, optimizer, schedule.

    Batches come in one of two ways. ``batch_size`` (with ``group_size`` and
    ``max_frames``) gives every step the same number of utterances. ``batch_frames``
    (ESPnet's ``batch_bins``) gives every step about the same number of padded frames,
    source and target together: short utterances make big batches, long ones small
    (:mod:`vc_toolkit.train.frame_sampler`). The two are alternatives: with
    ``batch_frames`` set, leave ``batch_size``, ``group_size`` and ``max_frames`` at
    their defaults, e.g. ``train: {batch_frames: 8000}`` (about 14 sentences of 3 s).
    """

    batch_size: int = opt(
        16, "utterances per optimizer step (per process); unused with batch_frames", min=1
    )
    group_size: int = opt(
        4, "batches sorted by length together (FastSpeech2 style); unused with batch_frames", min=1
    )
    max_frames: int | None = opt(None, "cap on target frames per batch; larger batches are split")
    batch_frames: int | None = added_later(
        opt(
            None,
            "padded frames (source + target) per optimizer step and process, instead of "
            "batch_size (null: batch_size)",
            min=1,
        )
    )
    optimizer: Optimizer = sub(Optimizer, "optimizer")
    scheduler: Scheduler = sub(Scheduler, "learning-rate schedule")
    grad_clip: float = opt(1.0, "max gradient norm (0 disables)", min=0)
    best_metric: Literal[LOSS_NAMES] = opt("post_mel", "dev loss that selects 'best'")
    dev_images: int = opt(2, "dev utterances drawn to TensorBoard", min=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = added_later(
        opt(
            "auto",
            "autocast dtype of training steps: auto (CUDA: bf16 where supported, else fp16 with "
            "a loss scaler; CPU: fp32), fp32, bf16 (CUDA or CPU), fp16 (CUDA only)",
        )
    )
    compile: bool = added_later(
        opt(False, "torch.compile the encoder and decoder stacks (kernels cached in the run)")
    )

    def validate(self) -> None:
        """``batch_frames`` excludes the keys of the ``batch_size`` scheme.

        They are told apart from their defaults: a tag that sets ``batch_frames`` and a
        ``batch_size`` other than 16 (or a ``group_size`` other than 4, or a ``max_frames``)
        names two batching schemes, and is refused rather than one of them ignored.
        """
        if self.batch_frames is None:
            return
        defaults = {f.name: f.default for f in fields(Train)}
        for key in ("batch_size", "group_size", "max_frames"):
            if getattr(self, key) != defaults[key]:
                raise ValueError(
                    f"train.{key} belongs to batch_size batching and train.batch_frames is "
                    f"set; remove train.{key} (or batch_frames)"
                )


@dataclass(kw_only=True)
class Pretrain:
    tag: str = opt(help="tag to initialise from")
    checkpoint: str = opt("latest", "latest, best, epochN, or a path to a .pt file")
    reset_optimizer: bool = opt(True, "false: also restore optimizer and scheduler state")
    strict: bool = opt(False, "true: any missing/unexpected/mismatched parameter is an error")
    exclude: list[str] = opt(factory=list, help="parameter-name prefixes not loaded")
    freeze: list[str] = opt(factory=list, help="parameter-name prefixes kept fixed in training")
    speaker_init: dict[str, str] = added_later(
        opt(
            factory=dict,
            help="{new speaker: parent speaker} whose embedding row seeds it (default: the "
            "mean of the parent's rows)",
        )
    )


@dataclass(kw_only=True)
class Vocoder:
    type: Literal["griffin_lim", "hifigan", "world"] = opt("griffin_lim", "vocoder")
    voc: str | None = added_later(
        opt(
            None,
            "hifigan: a vocoder trained here (exp/voc/<voc>); checkpoint: best, latest, epochN",
        )
    )
    checkpoint: str | None = opt(
        None, "hifigan: generator checkpoint (.pt / .pkl), or with voc: best, latest, epochN"
    )
    config: str | None = opt(None, "hifigan: its config (.json / .yaml); null: next to checkpoint")
    gl_iters: int = opt(32, "griffin_lim: iterations", min=1)
    gl_power: float = opt(1.2, "griffin_lim: magnitude exponent before phase recovery", min=0.1)
    world_ap_db: float = added_later(
        opt(-40.0, "world: aperiodicity of voiced frames below world_max_voiced_hz, dB", max=0)
    )
    world_max_voiced_hz: float = added_later(
        opt(6000.0, "world: voiced frames turn to noise around this frequency, Hz", min=1)
    )


@dataclass(kw_only=True)
class Infer:
    vocoder: Vocoder = sub(Vocoder, "vocoder for stage 3")
    pitch_scale: float = opt(1.0, "multiply predicted F0 (in Hz) by this", min=0)
    energy_scale: float = opt(1.0, "multiply predicted energy by this", min=0)
    duration_scale: float = opt(1.0, "multiply predicted durations by this", min=0)
    prosody: Literal["mean", "sample"] = opt("mean", "wGMM: most likely mean, or a sample")
    temperature: float = opt(1.0, "wGMM sampling temperature", min=0)
    batch_size: int = opt(8, "utterances converted at once", min=1)

    def validate(self) -> None:
        for name in ("pitch_scale", "energy_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"infer.{name} must be > 0, got {getattr(self, name)}")


@dataclass(kw_only=True)
class Eval:
    mcep_order: int | None = opt(None, "mel-cepstrum order (null: by sample rate, as ESPnet)")
    mcep_alpha: float | None = opt(None, "all-pass constant (null: by sample rate)")
    use_c0: bool = opt(False, "include c0 (energy) in MCD")
    f0_floor: float = opt(40.0, "F0 search floor for scoring, Hz", min=1)
    f0_ceil: float = opt(800.0, "F0 search ceiling for scoring, Hz", min=1)


@dataclass(kw_only=True)
class TagConfig:
    """An experiment."""

    spk: str = opt(help="dataset version (conf/spk/<spk>.yaml)")
    note: str = opt("", "free text shown in reports")
    model: ModelConfig = sub(ModelConfig, "model")
    train: Train = sub(Train, "training")
    loss: Loss = sub(Loss, "loss weights")
    pretrain: Pretrain | None = opt(None, "fine-tune from another tag")
    infer: Infer = sub(Infer, "conversion")
    eval: Eval = sub(Eval, "objective evaluation")

    def validate(self) -> None:
        if self.train.epochs == 0 and self.pretrain is None:
            raise ValueError(
                "train.epochs 0 keeps the pretrain tag's weights; set pretrain.tag, or epochs >= 1"
            )
