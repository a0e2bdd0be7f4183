"""Every model choice goes through training, conversion, reports and tuning unchanged.

The stages learn what a model logs and outputs from the model registry; these runs
check that a choice the stages never name (arnar pitch, gmm prosody) trains with its own
loss terms, converts with its own per-segment outputs and is labelled in the reports.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import TINY_TAG, copy_root, write_conf

from vc_toolkit.config import build
from vc_toolkit.config.tag import TagConfig
from vc_toolkit.errors import UserError
from vc_toolkit.eval.report import leaderboard
from vc_toolkit.infer.stage import run as convert_tag
from vc_toolkit.models import loss_names
from vc_toolkit.paths import Layout
from vc_toolkit.records import read_history
from vc_toolkit.train.stage import run as train_tag

CHOICES = {
    "arnar": ({"type": "arnar"}, {"type": "none"}, "arnar", "none"),
    "gmm": ({"type": "conv"}, {"type": "gmm", "use_global": True}, "conv", "gmm+global"),
}


def _tag(pitch: dict, prosody: dict) -> dict:
    data = copy.deepcopy(TINY_TAG)
    data["model"]["pitch_predictor"].update(pitch)
    data["model"]["prosody"].update(prosody)
    data["train"]["epochs"] = 1
    return data


@pytest.mark.parametrize("choice", list(CHOICES))
def test_a_choice_trains_converts_and_is_reported(tiny_features_root, tmp_path, choice):
    pitch, prosody, pitch_label, prosody_label = CHOICES[choice]
    root = copy_root(tiny_features_root, tmp_path)
    data = _tag(pitch, prosody)
    write_conf(root, "tag", "t", data)
    layout = Layout(root)
    train_tag("t", layout, device="cpu")
    cfg = build(TagConfig, data)
    dev = read_history(root / "exp/t")[-1]["dev"]
    assert set(dev) == set(loss_names(cfg.model))
    assert ("gmm" in dev) == (choice == "gmm") and ("global_gmm" in dev) == (choice == "gmm")
    convert_tag(layout, "t", "best", device="cpu", progress=False)
    for npz in (root / "exp/t/convert/best/dev").glob("*.npz"):
        with np.load(npz) as z:
            assert ("prosody" in z.files) == (choice == "gmm")
            if choice == "gmm":
                assert z["prosody"].shape[1] == 4  # the tiny tag's prosody.dim
    (row,) = leaderboard(layout)
    assert row.choices == {"pitch": pitch_label, "prosody": prosody_label}


def test_a_best_metric_the_model_does_not_log_is_refused_before_anything_is_frozen(
    tiny_features_root, tmp_path
):
    root = copy_root(tiny_features_root, tmp_path)
    data = _tag({"type": "conv"}, {"type": "none"})
    data["train"]["best_metric"] = "gmm"
    write_conf(root, "tag", "t", data)
    with pytest.raises(UserError, match=r"best_metric 'gmm' is not logged.*model\.prosody"):
        train_tag("t", Layout(root), device="cpu")
    assert not (root / "exp/t/config.yaml").exists()


def test_dev_audio_through_a_vocoder_that_needs_f0(tiny_features_root, tmp_path):
    """TensorBoard's dev audio is vocoded as stage 3 would, also by WORLD (needs F0)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = copy_root(tiny_features_root, tmp_path)
    data = _tag({"type": "conv"}, {"type": "none"})
    data["train"]["dev_images"] = 1
    data["infer"] = {"vocoder": {"type": "world"}}
    write_conf(root, "tag", "t", data)
    train_tag("t", Layout(root), device="cpu")
    acc = EventAccumulator(str(root / "exp/t/tensorboard"), size_guidance={"audio": 0})
    acc.Reload()
    assert any(t.startswith("dev_audio/") for t in acc.Tags()["audio"])
