"""Optuna hyper-parameter studies over a tag's resolved config.

* :mod:`~vc_toolkit.tune.study`: schema of ``conf/optuna/<STUDY>.yaml``, search-space
  checks against the tag schema, storage / sampler / pruner.
* :mod:`~vc_toolkit.tune.objective`: one trial (suggested values -> tag config -> the
  shared training loop) and the workers that run trials on a shared storage.
* :mod:`~vc_toolkit.tune.export`: a trial as a new ``conf/tag/<TAG>.yaml``.
* :mod:`~vc_toolkit.tune.summary`: best trials, states, importances, plots.
"""
