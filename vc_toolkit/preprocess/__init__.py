"""Stage 1: features of every pair of a spk (``dump/<SPK>/``), and the threshold explorer.

:func:`vc_toolkit.preprocess.stage.run` is the stage; :mod:`vc_toolkit.preprocess.explore`
shows how silence settings trim and segment a sample of the spk.
"""
