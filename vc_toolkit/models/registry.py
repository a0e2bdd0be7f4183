"""Registries of the model's interchangeable parts, and the loss terms they declare.

A config choice such as ``model.pitch_predictor.type: ar`` names a class in a
:class:`Registry` (one per config slot, in the spirit of ESPnet's class
choices): the model builds ``PITCH_PREDICTORS.get(cfg.pitch_predictor.type)``
without knowing the choices. Every registered class also declares the loss
terms it produces (:class:`LossTerm`: a dev-loss name, the
:class:`~vc_toolkit.config.tag.Loss` field weighting it and how to compute it),
so the loss, the list of loss names and the reports follow from the config.
The terms every model has (``mel``, ``post_mel``, ``duration``, ``energy``)
are declared by the model skeleton
(:meth:`~vc_toolkit.models.fastspeech2vc.FastSpeech2VC.loss_terms`), ``pitch``
by the pitch-predictor base class.

Adding a choice: a class implementing the slot's interface
(:class:`~vc_toolkit.models.interfaces.PitchPredictorBase` or
:class:`~vc_toolkit.models.interfaces.ProsodyBase`), the decorator
``@PITCH_PREDICTORS.register("name")`` on it, and the name in the config's
``Literal``.

Example:
    >>> from vc_toolkit.config.tag import ModelConfig, PitchPredictor
    >>> loss_names(ModelConfig(pitch_predictor=PitchPredictor(type="ar")))
    ('mel', 'post_mel', 'duration', 'pitch', 'energy', 'total')
    >>> describe(ModelConfig())
    {'pitch': 'conv', 'prosody': 'none'}
    >>> loss_sources("gmm")
    ['model.prosody.type: gmm']
    >>> try:
    ...     PITCH_PREDICTORS.get("lstm")
    ... except ValueError as err:
    ...     print(err)
    model.pitch_predictor.type: unknown choice 'lstm' (choices: 'conv', 'ar', 'arnar')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from vc_toolkit.config.tag import ModelConfig
from vc_toolkit.data.batch import Batch
from vc_toolkit.registry import Registry


@dataclass(frozen=True)
class LossTerm:
    """One weighted training-loss term.

    Attributes:
        name (str): dev-loss name (``pitch``, ``gmm``, ...), a key of ``VCLoss``'s terms.
        weight (str): the :class:`~vc_toolkit.config.tag.Loss` field that weights it.
        fn (Callable[[dict[str, Tensor], Batch], Tensor]): the scalar term from the model's
            forward outputs and the batch.
        header (str | None): its leaderboard column (best dev value); None: not shown.
    """

    name: str
    weight: str
    fn: Callable[[dict[str, Tensor], Batch], Tensor]
    header: str | None = None


class Choice:
    """What a registered class declares about itself (mixed into every interface).

    ``registry_name`` is set by :meth:`Registry.register`.
    """

    registry_name: ClassVar[str] = ""

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[LossTerm, ...]:
        """The loss terms a part built from config block ``cfg`` produces (default none)."""
        return ()

    @classmethod
    def all_loss_terms(cls) -> tuple[LossTerm, ...]:
        """Every term :meth:`loss_terms` can produce, for any config block."""
        return ()

    @classmethod
    def loss_names(cls) -> tuple[str, ...]:
        """Names of :meth:`all_loss_terms`."""
        return tuple(term.name for term in cls.all_loss_terms())

    @classmethod
    def loss_condition(cls, name: str) -> str:
        """The setting of the config block a loss name also needs (``""``: none)."""
        return ""

    @classmethod
    def label(cls, cfg: Any) -> str:
        """Short label for reports (default: the registry name)."""
        return cls.registry_name


PITCH_PREDICTORS = Registry("model.pitch_predictor")
PROSODY = Registry("model.prosody")


def _skeleton() -> Any:
    # the model imports this module, so it is looked up when asked for (always loaded by then)
    from vc_toolkit.models.fastspeech2vc import FastSpeech2VC

    return FastSpeech2VC


def loss_terms(cfg: ModelConfig) -> tuple[LossTerm, ...]:
    """The loss terms a model of this config produces, in order.

    ``mel``, ``post_mel``, ``duration``, the pitch predictor's (``pitch``), ``energy``,
    then the prosody module's (``gmm``, and ``global_gmm`` with ``use_global``).
    """
    return _skeleton().loss_terms(cfg)


def loss_names(cfg: ModelConfig) -> tuple[str, ...]:
    """Names of :func:`loss_terms` and ``total``: the dev losses a model of ``cfg`` logs."""
    return (*(term.name for term in loss_terms(cfg)), "total")


def all_loss_terms() -> tuple[LossTerm, ...]:
    """Every term any registered choice can produce, in the canonical order."""
    return _skeleton().all_loss_terms()


def all_loss_names() -> tuple[str, ...]:
    """Every loss name any registered choice can produce, in the canonical order, + ``total``."""
    return (*(term.name for term in all_loss_terms()), "total")


def loss_slots(name: str) -> list[str]:
    """The config blocks whose choice decides whether loss ``name`` exists (``[]``: always)."""
    if name in _skeleton().core_loss_names():
        return []
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
        ``"model.prosody.type: gmm (with model.prosody.use_global)"``; ``[]`` if none.
    """
    if name in _skeleton().core_loss_names():
        return ["every model"]
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
