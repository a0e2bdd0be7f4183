"""Stage 0: a spk's corpus → parallel lists (``data/<SPK>/``), and the spk pinned.

:func:`vc_toolkit.prepare.stage.run` is the stage; the corpus recipes live in
:mod:`vc_toolkit.prepare.corpora`.
"""
