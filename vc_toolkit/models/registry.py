"""Registries of the model's interchangeable parts, and the loss terms they declare.

A config choice such as ``model.pitch_predictor.type: ar`` names a class in a
:class:`Registry` (one per config slot, in the spirit of ESPnet's class
choices): the model builds ``PITCH_PREDICTORS.get(cfg.pitch_predictor.type)``
without knowing the choices. Every registered class also declares the loss
terms it produces (:class:`LossTerm`: a dev-loss name, the
:class:`~vc_toolkit.config.tag.Loss` field weighting it and how to compute it),
so the loss, the list of loss names and the reports follow from the config
(:mod:`vc_toolkit.models.loss`). The terms every model has (``mel``,
``post_mel``, ``duration``, ``energy``) are in :mod:`vc_toolkit.models.terms`,
``pitch`` is declared by the pitch-predictor base class.

Adding a choice: a class implementing the slot's interface
(:class:`~vc_toolkit.models.interfaces.PitchPredictorBase`,
:class:`~vc_toolkit.models.interfaces.ProsodyBase` or
:class:`~vc_toolkit.models.conditioning.ConditioningBase`), the decorator
``@PITCH_PREDICTORS.register("name")`` on it, and the name in the config's
``Literal``.

Example:
    >>> import vc_toolkit.models  # registers every choice
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
CONDITIONING = Registry("model.conditioning")
ALIGNERS = Registry("model.aligner")
MODEL_FAMILIES = Registry("model")
"""Model families by ``model.type``: ``fastspeech2vc`` (speech input) and ``fastspeech2tts``
(text input); each declares its loss terms (:meth:`Choice.loss_terms` of the whole
:class:`~vc_toolkit.config.tag.ModelConfig`)."""
