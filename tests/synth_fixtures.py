"""A trained tiny text tag for the synthesis, stage 3/4 and alignment tests.

:func:`trained_tts_root` builds a recipe root with the tiny text spk ``tinytts``
(:func:`tts_fixtures.make_text_spk`: 6 train / 2 dev / 2 eval demo sentences, stages 0-1)
and trains the tiny TTS tag ``t`` on it for a few steps (:func:`tts_fixtures.tts_tag`).
"""

from __future__ import annotations

from pathlib import Path

from conftest import copy_root, write_conf
from tts_fixtures import make_text_spk, tts_tag

TAG = "t"


def trained_tts_root(features_root: Path, base: Path, epochs: int = 2) -> Path:
    """A copy of ``features_root`` with the text spk prepared and tag :data:`TAG` trained."""
    from vc_toolkit.paths import Layout
    from vc_toolkit.train.stage import run as train_tag

    root = copy_root(features_root, base)
    make_text_spk(root)
    write_conf(root, "tag", TAG, tts_tag(epochs=epochs))
    train_tag(TAG, Layout(root), device="cpu")
    return root
