"""Training loss of the FastSpeech2-style models (VC and TTS families).

Every term is a mean over real (unpadded) elements only, so padding never
changes a loss:

- ``mel``, ``post_mel``: L1 between predicted and target mel, before/after the postnet;
- ``pitch``, ``energy``: MSE of the normalised log-F0 / log energy per frame;
- ``duration``: MSE between the predicted and ``log(d + 1)`` target durations
  [Ren et al., "FastSpeech 2", ICLR 2021];
- ``gmm``, ``global_gmm``: negative log-likelihood of the extracted prosody
  embeddings under the predicted mixtures (per real segment / per utterance),
  with ``model.prosody.type: gmm`` (and ``use_global``);
- ``total``: the weighted sum, weights from :class:`~vc_toolkit.config.tag.Loss`
  (``beta`` and ``g_beta`` for the two NLLs).

Which terms a model has is declared by its parts: the terms every model has
(:data:`~vc_toolkit.models.terms.CORE_LOSS_TERMS`), then those of the chosen pitch
predictor and prosody module (:mod:`vc_toolkit.models.registry`). :func:`loss_terms`
composes them for a config and :class:`VCLoss` sums exactly those; the dev-loss
names of a config, of every choice, and where each comes from follow from the same
declarations (:func:`loss_names`, :func:`all_loss_names`, :func:`loss_sources`).

Example:
    >>> from vc_toolkit.config.tag import PitchPredictor
    >>> loss_names(ModelConfig(pitch_predictor=PitchPredictor(type="ar")))
    ('mel', 'post_mel', 'duration', 'pitch', 'energy', 'total')
    >>> describe(ModelConfig())
    {'pitch': 'conv', 'prosody': 'none'}
    >>> loss_sources("gmm")
    ['model.prosody.type: gmm']
"""

from __future__ import annotations

from torch import Tensor, nn

from vc_toolkit.config.tag import Loss, ModelConfig
from vc_toolkit.data.batch import Batch
from vc_toolkit.models.registry import MODEL_FAMILIES, PITCH_PREDICTORS, PROSODY, LossTerm
from vc_toolkit.models.terms import CORE_LOSS_TERMS

_CORE_NAMES = tuple(term.name for term in CORE_LOSS_TERMS)


class VCLoss(nn.Module):
    """Weighted sum of the loss terms a model declares.

    Args:
        cfg (Loss): loss weights (each term is weighted by the field its ``weight`` names).
        model (ModelConfig | None): the model whose terms are summed
            (:func:`~vc_toolkit.models.registry.loss_terms`); ``None``: the default model
            (``conv`` pitch, no prosody).
    """

    def __init__(self, cfg: Loss, model: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.terms = loss_terms(model if model is not None else ModelConfig())

    def forward(self, outputs: dict[str, Tensor], batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Compute the losses.

        Args:
            outputs (dict[str, Tensor]): :meth:`FastSpeech2VC.forward` outputs; the masks
                ``src_mask`` (B, Ls) reduced and ``tgt_mask`` (B, Tt) select the real elements.
            batch (Batch): the batch the outputs were computed from.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: ``total`` and every declared term by its name
            (in declaration order), then ``total``.
        """
        terms = {term.name: term.fn(outputs, batch) for term in self.terms}
        total = sum(getattr(self.cfg, term.weight) * terms[term.name] for term in self.terms)
        terms["total"] = total
        return total, terms


def loss_terms(cfg: ModelConfig) -> tuple[LossTerm, ...]:
    """The loss terms a model of this config produces, in order (its family's declaration).

    VC (``fastspeech2vc``): ``mel``, ``post_mel``, ``duration``, the pitch predictor's
    (``pitch``), ``energy``, then the prosody module's (``gmm``, and ``global_gmm`` with
    ``use_global``). TTS (``fastspeech2tts``) adds ``forward_sum`` and ``bin``
    (:mod:`vc_toolkit.models.tts_terms`).
    """
    return MODEL_FAMILIES.get(cfg.type).loss_terms(cfg)


def loss_names(cfg: ModelConfig) -> tuple[str, ...]:
    """Names of :func:`loss_terms` and ``total``: the dev losses a model of ``cfg`` logs."""
    return (*(term.name for term in loss_terms(cfg)), "total")


def all_loss_terms() -> tuple[LossTerm, ...]:
    """Every term any family with any registered choice can produce, in the canonical order
    (the order of the :class:`~vc_toolkit.config.tag.Loss` weights)."""
    found: dict[str, LossTerm] = {}
    for _, family in MODEL_FAMILIES:
        for term in family.all_loss_terms():
            found.setdefault(term.name, term)
    return tuple(found.values())


def all_loss_names() -> tuple[str, ...]:
    """Every loss name any registered choice can produce, in the canonical order, + ``total``."""
    return (*(term.name for term in all_loss_terms()), "total")


def _family_producers(name: str) -> list[str]:
    """The model families whose own terms (no part's) include ``name``."""
    return [
        choice
        for choice, family in MODEL_FAMILIES
        if name in (t.name for t in family.own_loss_terms())
    ]


def loss_slots(name: str) -> list[str]:
    """The config blocks whose choice decides whether loss ``name`` exists (``[]``: always)."""
    if name in _CORE_NAMES:
        return []
    if _family_producers(name):
        return [f"{MODEL_FAMILIES.slot}.type"]
    return [
        registry.slot
        for registry in (PITCH_PREDICTORS, PROSODY)
        if any(name in cls.loss_names() for _, cls in registry)
        and not all(
            name in cls.loss_names() and not cls.loss_condition(name) for _, cls in registry
        )
    ]


def loss_sources(name: str) -> list[str]:
    """Which config choices produce loss ``name``, as readable settings.

    Returns:
        list[str]: ``["every model"]`` for the terms every model has (the skeleton's, or one
        every choice of a slot produces); else one entry per choice, e.g.
        ``"model.prosody.type: gmm (with model.prosody.use_global)"`` or
        ``"model.type: fastspeech2tts"``; ``[]`` if none.
    """
    if name in _CORE_NAMES:
        return ["every model"]
    families = _family_producers(name)
    if families:
        return [f"{MODEL_FAMILIES.slot}.type: {choice}" for choice in families]
    sources = []
    for registry in (PITCH_PREDICTORS, PROSODY):
        producers = [(choice, cls) for choice, cls in registry if name in cls.loss_names()]
        conditions = [cls.loss_condition(name) for _, cls in producers]
        if producers and len(producers) == len(registry) and not any(conditions):
            return ["every model"]
        for (choice, _), condition in zip(producers, conditions):
            text = f"{registry.slot}.type: {choice}"
            sources.append(f"{text} (with {registry.slot}.{condition})" if condition else text)
    return sources


def describe(cfg: ModelConfig) -> dict[str, str]:
    """Short labels of a config's choices for reports.

    Returns:
        dict[str, str]: ``pitch`` (``conv``, ``ar``, ``arnar``) and ``prosody`` (``none``,
        ``gmm``, ``gmm+global``).
    """
    return {
        "pitch": PITCH_PREDICTORS.get(cfg.pitch_predictor.type).label(cfg.pitch_predictor),
        "prosody": PROSODY.get(cfg.prosody.type).label(cfg.prosody),
    }
