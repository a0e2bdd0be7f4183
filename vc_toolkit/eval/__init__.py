"""Stage 4 and reports: objective scores of converted speech, leaderboard, memo, tag diffs.

:func:`vc_toolkit.eval.stage.run` scores a tag's conversions (MCD, F0, V/UV,
duration) against the recordings and the no-conversion floor; the ``report*``
modules read what every stage left in ``exp/``.
"""
