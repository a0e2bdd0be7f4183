"""A sampler seeded per trial, so separately started workers never repeat each other.

Every worker process (on this machine or another) builds its own sampler. Seeded once
per process, two processes started at the same time draw the same random numbers and
propose the same parameters. :class:`TrialSeededSampler` instead samples trial ``N``
with a fresh sampler seeded from ``(study seed, N)``: the numbers of the trials differ,
so do their proposals, whichever process runs them. A single worker reproduces a study
from its seed; with several, a trial's proposal depends only on the trials finished when
it starts (the model-based samplers' history), as with any parallel optimisation.

Example:
    >>> import optuna
    >>> def make(seed):
    ...     return optuna.samplers.RandomSampler(seed=seed)
    >>> def first_two():  # a fresh process: its own sampler, the same study
    ...     study = optuna.create_study(sampler=TrialSeededSampler(make, seed=0))
    ...     return [study.ask().suggest_float("x", 0, 1) for _ in range(2)]
    >>> a, b = first_two(), first_two()
    >>> a == b and a[0] != a[1]
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number`` of a study seeded ``seed`` (well mixed, 32 bits).

    Example:
        >>> trial_seed(0, 1) == trial_seed(0, 1) != trial_seed(0, 2)
        True
    """
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """Delegates each trial to a sampler made by ``factory(trial_seed(seed, trial.number))``.

    Args:
        factory: Builds the underlying sampler (TPE, random, CMA-ES) from a seed.
        seed: The study's sampler seed.
    """

    def __init__(self, factory: Callable[[int], BaseSampler], seed: int) -> None:
        self._factory, self._seed = factory, seed
        self._samplers: dict[int, BaseSampler] = {}
        self._guard = threading.Lock()

    def __str__(self) -> str:
        return f"TrialSeededSampler({self._factory(self._seed)}, seed={self._seed})"

    def _of(self, trial: FrozenTrial) -> BaseSampler:
        with self._guard:
            sampler = self._samplers.get(trial.number)
            if sampler is None:
                sampler = self._factory(trial_seed(self._seed, trial.number))
                self._samplers[trial.number] = sampler
            return sampler

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._of(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._of(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._of(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._of(trial).before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._of(trial).after_trial(study, trial, state, values)
        with self._guard:
            self._samplers.pop(trial.number, None)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial's sampler is seeded from the trial's number."""
