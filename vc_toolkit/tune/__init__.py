"""Optuna hyper-parameter studies over a tag's resolved config.

* :mod:`~vc_toolkit.tune.study`: schema of ``conf/optuna/<STUDY>.yaml``, storage / sampler /
  pruner, the settings pinned at a study's start.
* :mod:`~vc_toolkit.tune.space`: the search space, checked against the tag schema.
* :mod:`~vc_toolkit.tune.storage`: journal or database storages opened without races, and
  the lock shared by the workers of a study (on one machine or several).
* :mod:`~vc_toolkit.tune.sampling`: a sampler seeded per trial, so workers never repeat
  each other's proposals.
* :mod:`~vc_toolkit.tune.trial`: one trial (suggested values -> tag config -> the shared
  training loop) and its outcome.
* :mod:`~vc_toolkit.tune.objective`: the workers that run trials on a shared storage.
* :mod:`~vc_toolkit.tune.export`: a trial as a new ``conf/tag/<TAG>.yaml``.
* :mod:`~vc_toolkit.tune.summary`: best trials, states, importances, plots.
"""
