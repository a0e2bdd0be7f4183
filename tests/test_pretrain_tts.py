"""TTS → VC pretraining: the shared parts load, the text side is excluded and reported."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from conftest import TINY_TAG, copy_root, write_conf
from factories import tiny_config
from tts_fixtures import make_text_spk, tiny_tts_config, tts_tag

from vc_toolkit.models import build_model
from vc_toolkit.models.fs2base import SHARED_PARTS
from vc_toolkit.paths import Layout
from vc_toolkit.train import pretrain
from vc_toolkit.train.setup import setup
from vc_toolkit.train.stage import run as train_tag

TEXT_SIDE = ("token_embed.", "encoder.", "aligner.")
VC_INPUT = ("input_proj.", "src_pitch_embed.", "src_energy_embed.", "encoder.")


def _load(parent_cfg, child_cfg, r=2, strict=False):
    torch.manual_seed(0)
    parent = build_model(parent_cfg, 4, r, vocab_size=12)
    torch.manual_seed(1)
    child = build_model(child_cfg, 4, r)
    before = {k: v.clone() for k, v in child.state_dict().items()}
    cross, notes = pretrain.family_exclusions(parent_cfg, child_cfg)
    report = pretrain.load_weights(child, parent.state_dict(), strict, cross, [])
    report.notes += notes
    return parent.state_dict(), before, child.state_dict(), report


def test_shared_parts_load_and_the_text_side_is_excluded():
    theirs, before, after, report = _load(tiny_tts_config(), tiny_config())
    shared = [k for k in after if k.split(".")[0] in SHARED_PARTS]
    assert shared and sorted(report.loaded) == sorted(shared)
    for k in shared:  # values equal after the load
        assert torch.equal(after[k], theirs[k]), k
    assert set(report.excluded) == {k for k in theirs if k.startswith(TEXT_SIDE)}
    for k in after:  # the VC input side (its encoder too, same shapes) keeps its own init
        if k.startswith(VC_INPUT):
            assert torch.equal(after[k], before[k]), k
    enc = [k for k in after if k.startswith("encoder.") and k in theirs]
    assert enc and any(not torch.equal(theirs[k], after[k]) for k in enc)
    assert not (report.missing or report.unexpected or report.mismatched)
    text = "\n".join(report.lines())
    assert "fastspeech2tts" in text and "token_embed, encoder, aligner" in text
    assert "excluded" in text and "starts fresh" in text


def test_strict_passes_when_only_the_input_sides_differ():
    _, _, _, report = _load(tiny_tts_config(), tiny_config(), strict=True)
    assert report.loaded


def test_token_level_pitch_and_energy_are_mismatched_at_r_above_one():
    _, before, after, report = _load(tiny_tts_config(level="token"), tiny_config(), r=2)
    bad = {m.split(" ")[0] for m in report.mismatched}
    assert "pitch_predictor.proj.weight" in bad and "energy_embed.conv.conv.weight" in bad
    assert "decoder.final_norm.weight" not in bad
    assert any("per token" in line for line in report.lines())
    _, _, _, same = _load(tiny_tts_config(level="token"), tiny_config(), r=1)
    assert not same.mismatched  # one value per reduced frame: the shapes agree


def test_same_family_excludes_nothing():
    assert pretrain.family_exclusions(tiny_config(), tiny_config()) == ([], [])
    tts = tiny_tts_config()
    assert pretrain.family_exclusions(tts, dataclasses.replace(tts, hidden=8)) == ([], [])


@pytest.fixture(scope="module")
def chain_root(tiny_features_root, tmp_path_factory):
    """Spk 'tiny' (speech) and 'tinytts' (text, same features); TTS tag 'p' trained on it."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("chain"))
    make_text_spk(root)
    write_conf(root, "tag", "p", tts_tag(epochs=2))
    train_tag("p", Layout(root), device="cpu")
    return root


def test_a_vc_tag_fine_tunes_from_a_tts_tag(chain_root, tmp_path, caplog):
    root = copy_root(chain_root, tmp_path)
    child = copy.deepcopy(TINY_TAG)
    child["pretrain"] = {"tag": "p"}
    child["train"]["epochs"] = 1
    write_conf(root, "tag", "c", child)
    caplog.set_level("INFO")
    exp = setup("c", Layout(root), device="cpu")
    report = exp.pretrain_report
    parent = torch.load(root / "exp/p/checkpoints/latest.pt", weights_only=False)["model"]
    own = exp.core.state_dict()
    assert report.loaded and all(torch.equal(own[k], parent[k]) for k in report.loaded)
    assert {k.split(".")[0] for k in report.loaded} == {"decoder", "duration_predictor",
        "pitch_predictor", "pitch_embed", "energy_predictor", "energy_embed", "mel_proj",
        "postnet"}  # fmt: skip
    assert "token_embed.weight" in report.family_excluded
    assert any(k.startswith("aligner.") for k in report.family_excluded)
    assert "excluded" in caplog.text and "fastspeech2tts (text input)" in caplog.text
    summary = train_tag("c", Layout(root), device="cpu")
    assert summary["steps"] == 3


def test_keeping_the_optimizer_of_a_tts_parent_is_refused(chain_root, tmp_path):
    root = copy_root(chain_root, tmp_path)
    child = copy.deepcopy(TINY_TAG)
    child["pretrain"] = {"tag": "p", "reset_optimizer": False}
    write_conf(root, "tag", "c", child)
    with pytest.raises(pretrain.PretrainError, match="another model family"):
        setup("c", Layout(root), device="cpu")
