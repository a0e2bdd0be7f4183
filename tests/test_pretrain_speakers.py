"""The tag's speaker table, and embedding rows carried across a fine-tune by name."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml
from conftest import TINY_SPK, TINY_TAG, copy_root, write_conf
from factories import tiny_config

from vc_toolkit import checkpoint
from vc_toolkit.config import build
from vc_toolkit.config.tag import Conditioning, Pretrain, TagConfig
from vc_toolkit.data.labels import SpeakerTable
from vc_toolkit.models import build_model
from vc_toolkit.paths import Layout
from vc_toolkit.train import pretrain, speakers
from vc_toolkit.train.setup import setup
from vc_toolkit.train.stage import run as train_tag

PARENT = SpeakerTable(speakers=["a", "b", "c"], emotions=["neutral", "happy"])
SPK = SpeakerTable(speakers=["c", "f2", "a", "m3"], emotions=["neutral", "sad"])
COND = {"type": "embedding", "dim": 4, "sites": ["encoder", "decoder"]}


def _model(table, seed, **cond):
    torch.manual_seed(seed)
    return build_model(tiny_config(conditioning=Conditioning(**cond)), 4, 2, speakers=table)


def _one_line(err) -> str:
    message = str(err.value)
    assert len(message.splitlines()) == 1
    return message


def test_the_child_table_appends_new_names_to_the_parents():
    child = speakers.merge(PARENT, SPK, {"m3": "b"})
    assert child.speakers == ["a", "b", "c", "f2", "m3"]
    assert child.emotions == ["neutral", "happy", "sad"]
    assert child.seeded_from == {"f2": "mean", "m3": "b"}


@pytest.mark.parametrize(
    "init, message",
    [
        (
            {"m3": "zed"},
            "'m3' -> 'zed', but the parent has no speaker 'zed'; choose one of a, b, c",
        ),
        ({"a": "b"}, "'a' is already in the parent's table; list only new speakers (f2, m3)"),
        ({"q": "b"}, "'q' is not a speaker of this spk"),
    ],
)
def test_bad_speaker_init_is_a_one_line_error(init, message):
    with pytest.raises(speakers.SpeakerInitError) as err:
        speakers.merge(PARENT, SPK, init)
    assert message in _one_line(err)


@pytest.mark.parametrize("share", [True, False])
def test_rows_are_copied_by_name_and_new_rows_seeded(share):
    cond = dict(COND, share=share, emotion=True)
    parent = _model(PARENT, 0, **cond)
    child_table = speakers.merge(PARENT, SPK, {"m3": "b"})
    child = _model(child_table, 1, **cond)
    weights = parent.state_dict()
    report = pretrain.load_weights(child, weights, True, [], [], speakers=(PARENT, child_table))
    own = child.state_dict()
    spk_tables = ["speaker"] if share else ["src_speaker", "tgt_speaker"]
    emo_tables = ["emotion"] if share else ["src_emotion", "tgt_emotion"]
    for name in spk_tables:
        theirs, ours = weights[f"conditioning.{name}.weight"], own[f"conditioning.{name}.weight"]
        assert ours.shape == (5, 4)
        assert torch.equal(ours[:3], theirs)  # a, b, c keep their rows
        assert torch.allclose(ours[3], theirs.mean(0))  # f2: mean of the parent's rows
        assert torch.equal(ours[4], theirs[1])  # m3: the row of b
    for name in emo_tables:
        theirs, ours = weights[f"conditioning.{name}.weight"], own[f"conditioning.{name}.weight"]
        assert torch.equal(ours[:2], theirs) and torch.allclose(ours[2], theirs.mean(0))
    rest = [k for k in weights if k not in child.embedding_tables()]
    assert all(torch.equal(own[k], weights[k]) for k in rest)
    assert not (report.missing or report.mismatched or report.unexpected)
    assert "speaker a: parent row 0" in report.lines()
    assert "speaker f2: new row, mean of 3 parent rows" in report.lines()
    assert "speaker m3: new row, parent row 1 (b)" in report.lines()
    assert "emotion sad: new row, mean of 2 parent rows" in report.lines()
    assert report.seeded_rows == {
        "speakers": {"f2": [0, 1, 2], "m3": [1]},
        "emotions": {"sad": [0, 1]},
    }
    with pytest.raises(pretrain.PretrainError, match="new rows") as err:
        pretrain.check_optimizer_transfer(Pretrain(tag="p", reset_optimizer=False), report)
    _one_line(err)


def test_a_parent_without_conditioning_leaves_the_tables_fresh():
    parent = _model(PARENT, 0, type="none")
    child = _model(PARENT, 1, **COND)
    fresh = child.state_dict()["conditioning.speaker.weight"].clone()
    report = pretrain.load_weights(child, parent.state_dict(), False, [], [], (PARENT, PARENT))
    assert torch.equal(child.state_dict()["conditioning.speaker.weight"], fresh)
    assert any("parent has no conditioning" in line for line in report.lines())
    assert "conditioning.speaker.weight" in report.missing


def test_parent_rows_that_do_not_match_its_table_are_refused():
    parent = _model(SpeakerTable(["a", "b"]), 0, **COND)
    with pytest.raises(speakers.SpeakerInitError, match="2 speakers rows but") as err:
        pretrain.load_weights(_model(PARENT, 1, **COND), parent.state_dict(), False, [], [],
                              (PARENT, PARENT))  # fmt: skip
    _one_line(err)


def test_a_resumed_tag_must_keep_its_speakers():
    speakers.check_resumed(None, PARENT, "t")  # checkpoints from before speaker tables
    speakers.check_resumed(PARENT.as_dict(), PARENT, "t")
    with pytest.raises(speakers.SpeakerInitError, match="start the tag over with --force") as err:
        speakers.check_resumed(SpeakerTable(["a"]).as_dict(), PARENT, "t")
    _one_line(err)


def test_a_finetune_across_spks_whose_features_differ_is_refused(tmp_path):
    for spk, n_mels in (("old", 80), ("new", 20)):
        folder = tmp_path / "dump" / spk
        folder.mkdir(parents=True)
        feats = copy.deepcopy(TINY_SPK)
        feats["feats"]["mel"]["n_mels"] = n_mels
        (folder / "config.yaml").write_text(yaml.safe_dump(feats))
    pretrain.check_compatible("new", "new", Layout(tmp_path))
    with pytest.raises(pretrain.PretrainError, match=r"feats.mel.n_mels: 80 \(pretrain\) vs 20"):
        pretrain.check_compatible("new", "old", Layout(tmp_path))
    with pytest.raises(pretrain.PretrainError) as err:
        pretrain.check_compatible("new", "old", Layout(tmp_path))
    _one_line(err)


def test_speaker_init_keeps_old_fingerprints():
    cfg = build(TagConfig, {"spk": "x", "pretrain": {"tag": "p"}})
    assert cfg.pretrain.speaker_init == {}
    from vc_toolkit.config.core import pinned_dict

    assert "speaker_init" not in pinned_dict(cfg)["pretrain"]
    assert "conditioning" not in pinned_dict(cfg)["model"]


def _tag(**extra) -> dict:
    data = copy.deepcopy(TINY_TAG)
    data["model"]["conditioning"] = dict(COND)
    data["train"]["epochs"] = 1
    return {**data, **extra}


def test_training_writes_the_table_and_a_finetune_maps_new_speakers(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    layout = Layout(root)
    write_conf(root, "tag", "p", _tag())
    train_tag("p", layout, device="cpu")
    table = speakers.spk_table("tiny", layout)
    assert SpeakerTable.load(root / "exp/p/speakers.json") == table
    state = torch.load(root / "exp/p/checkpoints/latest.pt", weights_only=False)
    assert state["speakers"] == table.as_dict()
    rebuilt = build_model(build(TagConfig, _tag()).model, 20, 2, speakers=table)
    rebuilt.load_state_dict(checkpoint.weights_only(state))  # what inference does

    exp = setup("p", layout, device="cpu")  # resumes; the batches carry the label ids
    batch = next(iter(exp.train_loader()))
    labels = exp.train_set.labels
    assert batch.tgt_spk.tolist() == [
        table.speaker_id(labels[u].tgt_speaker) for u in batch.utt_ids
    ]
    assert batch.src_spk.tolist() == [
        table.speaker_id(labels[u].src_speaker) for u in batch.utt_ids
    ]

    grown = SpeakerTable(speakers=[*table.speakers, "f2", "m3"], emotions=table.emotions)
    grown.save(root / "dump/tiny/speakers.json")  # the spk now names two more speakers
    first = table.speakers[0]
    write_conf(root, "tag", "c", _tag(pretrain={"tag": "p", "speaker_init": {"m3": first}}))
    child = setup("c", layout, device="cpu")
    assert child.speakers.speakers == [*table.speakers, "f2", "m3"]
    saved = SpeakerTable.load(root / "exp/c/speakers.json")
    assert saved.speakers == child.speakers.speakers
    assert saved.seeded_from == {"f2": "mean", "m3": first}
    theirs = state["model"]["conditioning.speaker.weight"]
    ours = child.core.state_dict()["conditioning.speaker.weight"]
    n = len(table.speakers)
    assert torch.equal(ours[:n], theirs) and torch.equal(ours[n + 1], theirs[0])
    assert torch.allclose(ours[n], theirs.mean(0))
    me = json.loads((root / "exp/c/lineage.json").read_text())[0]
    assert me["seeded_rows"]["speakers"] == {"f2": list(range(n)), "m3": [0]}
    assert me["speakers"]["seeded_from"] == {"f2": "mean", "m3": first}


def test_an_unknown_parent_speaker_stops_setup_with_one_line(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    SpeakerTable(speakers=["src", "tgt", "f2"]).save(root / "dump/tiny/speakers.json")
    write_conf(root, "tag", "c", _tag(pretrain={"tag": "p", "speaker_init": {"f2": "zed"}}))
    with pytest.raises(speakers.SpeakerInitError, match="no speaker 'zed'") as err:
        setup("c", Layout(root), device="cpu")
    _one_line(err)
