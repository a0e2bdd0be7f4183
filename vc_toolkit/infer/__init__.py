"""Stage 3: conversion with a trained tag or a pack.

:func:`vc_toolkit.infer.stage.run` converts the dev/eval sets of a tag's spk;
:mod:`~vc_toolkit.infer.convert` (acoustic model + vocoder, timed),
:mod:`~vc_toolkit.infer.pack` (self-contained model directories) and
:mod:`~vc_toolkit.infer.source` (any audio file through the spk's front-end)
serve ``vc-convert`` and ``vc-pack``.
"""
