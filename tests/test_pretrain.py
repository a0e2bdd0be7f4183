"""Pretrain → fine-tune chains: load report, strict, exclude/freeze, optimizer, errors, lineage."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import TINY_SPK, TINY_TAG, copy_root, write_conf

from vc_toolkit.paths import Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.preprocess import stage as preprocess
from vc_toolkit.records import read_history
from vc_toolkit.train import pretrain
from vc_toolkit.train.setup import setup
from vc_toolkit.train.stage import run as train_tag


def _child(**pre) -> dict:
    cfg = copy.deepcopy(TINY_TAG)
    cfg["pretrain"] = {"tag": "p", **pre}
    return cfg


@pytest.fixture(scope="module")
def parent_root(tiny_features_root, tmp_path_factory):
    """A root where tag 'p' (the tiny tag, 4 epochs) is trained."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("parent"))
    write_conf(
        root,
        "tag",
        "p",
        {**TINY_TAG, "train": {**TINY_TAG["train"], "epochs": 4, "ckpt_interval": 2}},
    )
    train_tag("p", Layout(root), device="cpu")
    return root


@pytest.fixture
def root(parent_root, tmp_path):
    return copy_root(parent_root, tmp_path)


def _parent_weights(root, name="latest"):
    return torch.load(root / f"exp/p/checkpoints/{name}.pt", weights_only=False)


def test_finetune_loads_everything_and_starts_far_better(root, caplog):
    write_conf(root, "tag", "c", _child(checkpoint="epoch4"))
    write_conf(root, "tag", "scratch", {**TINY_TAG, "train": {**TINY_TAG["train"], "epochs": 1}})
    caplog.set_level("INFO")
    exp = setup("c", Layout(root), device="cpu")
    report = exp.pretrain_report
    assert not (report.missing or report.unexpected or report.mismatched)
    assert len(report.loaded) == len(exp.core.state_dict())
    assert "initialised from pretrain tag 'p'" in caplog.text and "loaded:" in caplog.text
    parent = _parent_weights(root, "epoch4")["model"]
    assert all(torch.equal(v, parent[k]) for k, v in exp.core.state_dict().items())

    train_tag("c", Layout(root), device="cpu")
    train_tag("scratch", Layout(root), device="cpu")
    tuned = read_history(root / "exp/c")[0]["dev"]["post_mel"]
    scratch = read_history(root / "exp/scratch")[0]["dev"]["post_mel"]
    assert tuned < 0.9 * scratch


def test_report_lists_missing_unexpected_and_mismatched(root):
    cfg = _child()
    cfg["model"]["postnet"] = {"layers": 3, "channels": 24}  # one more layer, other width
    write_conf(root, "tag", "c", cfg)
    exp = setup("c", Layout(root), device="cpu")
    r = exp.pretrain_report
    assert any(n.startswith("postnet.") for n in r.missing)  # the third layer
    assert any(n.startswith("postnet.") and "->" in n for n in r.mismatched)
    assert any(n.startswith("encoder.") for n in r.loaded)

    cfg["pretrain"]["strict"] = True
    write_conf(root, "tag", "c", cfg)
    with pytest.raises(
        pretrain.PretrainError, match="pretrain.strict is true but the weights differ"
    ):
        setup("c", Layout(root), device="cpu", force=True)


def test_unexpected_names_when_the_child_is_smaller(root):
    cfg = _child()
    cfg["model"]["postnet"] = {"layers": 1, "channels": 32}
    write_conf(root, "tag", "c", cfg)
    r = setup("c", Layout(root), device="cpu").pretrain_report
    assert any(n.startswith("postnet.") for n in r.unexpected)
    assert not r.missing


def test_exclude_and_freeze(root):
    write_conf(root, "tag", "c", _child(exclude=["postnet"], freeze=["encoder"]))
    exp = setup("c", Layout(root), device="cpu")
    parent = _parent_weights(root)["model"]
    assert exp.pretrain_report.excluded and all(
        n.startswith("postnet.") for n in exp.pretrain_report.excluded
    )
    post = [k for k in parent if k.startswith("postnet.") and k.endswith("weight")]
    assert not torch.equal(exp.core.state_dict()[post[0]], parent[post[0]])
    train_tag("c", Layout(root), device="cpu")
    tuned = torch.load(root / "exp/c/checkpoints/latest.pt", weights_only=False)["model"]
    enc = [k for k in parent if k.startswith("encoder.")]
    assert enc and all(torch.equal(tuned[k], parent[k]) for k in enc)  # frozen
    dec = [k for k in parent if k.startswith("decoder.") and k.endswith("weight")]
    assert any(not torch.equal(tuned[k], parent[k]) for k in dec)  # trained


@pytest.mark.parametrize("reset", [True, False])
def test_reset_optimizer(root, reset):
    write_conf(root, "tag", "c", _child(reset_optimizer=reset))
    exp = setup("c", Layout(root), device="cpu")
    parent = _parent_weights(root)
    if reset:
        assert exp.scheduler.steps == 0
        assert not exp.optimizer.state_dict()["state"]
    else:
        assert exp.scheduler.steps == parent["scheduler"]["steps"] == 12
        ours = exp.optimizer.state_dict()["state"][0]["exp_avg"]
        assert torch.equal(ours, parent["optimizer"]["state"][0]["exp_avg"])


def test_untrained_pretrain_names_the_command_and_with_pretrain_trains_it(root):
    write_conf(root, "tag", "mid", {**_child(), "pretrain": {"tag": "fresh"}})
    write_conf(root, "tag", "fresh", TINY_TAG)
    with pytest.raises(
        pretrain.PretrainError,
        match=r"train it first: ./run.sh --stage 2 --stop_stage 2 --tag fresh",
    ):
        train_tag("mid", Layout(root), device="cpu")
    train_tag("mid", Layout(root), device="cpu", with_pretrain=True)
    assert (root / "exp/fresh/checkpoints/latest.pt").is_file()
    assert (root / "exp/mid/checkpoints/latest.pt").is_file()


def test_cycles_are_errors(root):
    write_conf(root, "tag", "a", {**_child(), "pretrain": {"tag": "b"}})
    write_conf(root, "tag", "b", {**_child(), "pretrain": {"tag": "a"}})
    with pytest.raises(pretrain.PretrainError, match="cycle: a -> b -> a"):
        train_tag("a", Layout(root), device="cpu")


def test_incompatible_spk_is_refused(root):
    spk = copy.deepcopy(TINY_SPK)
    spk["feats"]["mel"]["hop_length"] = 200
    write_conf(root, "spk", "tiny_hop", spk)
    prepare.run("tiny_hop", Layout(root))
    preprocess.run("tiny_hop", Layout(root), nj=1)
    write_conf(root, "tag", "c", {**_child(), "spk": "tiny_hop"})
    with pytest.raises(
        pretrain.PretrainError,
        match=r"incompatible features: feats.mel.hop_length: 160 \(pretrain\) vs 200",
    ):
        setup("c", Layout(root), device="cpu")


def test_lineage_records_the_whole_chain(root):
    write_conf(root, "tag", "b", _child(checkpoint="epoch2"))
    write_conf(root, "tag", "c", {**_child(), "pretrain": {"tag": "b", "checkpoint": "best"}})
    train_tag("c", Layout(root), device="cpu", with_pretrain=True)
    rows = json.loads((root / "exp/c/lineage.json").read_text())
    assert [r["tag"] for r in rows] == ["c", "b", "p"]
    assert rows[1]["checkpoint"].endswith("exp/b/checkpoints/best.pt")
    assert rows[2]["checkpoint"].endswith("exp/p/checkpoints/epoch2.pt") and rows[2]["epoch"] == 2
    fp = json.loads((root / "dump/tiny/fingerprint.json").read_text())["fingerprint"]
    assert all(r["spk_fingerprint"] == fp for r in rows)
    assert pretrain.chain("c", Layout(root)) == ["p", "b"]


def test_a_missing_pretrain_tag_says_it_comes_from_pretrain_tag(root, capsys):
    from vc_toolkit.bin import train as train_cli

    write_conf(root, "tag", "c", {**_child(), "pretrain": {"tag": "ghost"}})
    with pytest.raises(pretrain.PretrainError, match=r"pretrain.tag of tag 'c' .*'ghost'"):
        train_tag("c", Layout(root), device="cpu")
    with pytest.raises(pretrain.PretrainError, match=r"pretrain.tag of tag 'c' .*'ghost'"):
        setup("c", Layout(root), device="cpu")  # the path Optuna trials take
    assert train_cli.main(["--tag", "c", "--root", str(root), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert "pretrain.tag" in err and "conf/tag/c.yaml" in err and len(err.splitlines()) == 1


def test_keeping_the_optimizer_names_the_parameters_that_differ(root):
    cfg = _child(reset_optimizer=False)
    cfg["model"]["postnet"] = {"layers": 2, "channels": 24}  # other width, same names
    write_conf(root, "tag", "c", cfg)
    with pytest.raises(pretrain.PretrainError) as info:
        setup("c", Layout(root), device="cpu")
    message = str(info.value)
    assert "shape" in message and "postnet." in message and "reset_optimizer: true" in message
    assert "exclude" not in message and "freeze" not in message
