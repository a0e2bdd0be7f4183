"""Training loop: outputs, determinism, config pinning, non-finite losses, logging."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import TINY_TAG, copy_root, write_conf

from vc_toolkit.config.pin import ConfigChangedError
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout
from vc_toolkit.records import read_history
from vc_toolkit.train.loop import Trainer, TrainingDivergedError
from vc_toolkit.train.setup import setup
from vc_toolkit.train.stage import run as train_tag


@pytest.fixture
def troot(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    write_conf(root, "tag", "t", TINY_TAG)
    return root


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_writes_everything(troot):
    summary = train_tag("t", Layout(troot), device="cpu")
    exp = troot / "exp/t"
    assert summary["epochs_done"] == 2 and summary["steps"] == 6
    for name in ("config.yaml", "summary.json", "history.jsonl", "lineage.json", "train.log"):
        assert (exp / name).is_file(), name
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == [
        "best.pt",
        "epoch1.pt",
        "epoch2.pt",
        "latest.pt",
    ]
    assert any((exp / "tensorboard").iterdir())
    saved = json.loads((exp / "summary.json").read_text())
    assert saved["best"]["losses"]["post_mel"] == saved["best"]["value"]
    assert (
        saved["spk_fingerprint"]
        == json.loads((troot / "dump/tiny/fingerprint.json").read_text())["fingerprint"]
    )
    rows = read_history(exp)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]["dev"]) >= {"mel", "post_mel", "pitch", "energy", "duration", "total"}
    log = (exp / "train.log").read_text()
    assert "epoch 2 dev:" in log


def test_same_tag_same_machine_identical_losses(tiny_features_root, tmp_path):
    results = []
    for k in range(2):
        root = copy_root(tiny_features_root, tmp_path / str(k))
        write_conf(root, "tag", "t", TINY_TAG)
        train_tag("t", Layout(root), device="cpu")
        results.append(
            (read_history(root / "exp/t"), _weights(root / "exp/t/checkpoints/latest.pt"))
        )
    (h1, w1), (h2, w2) = results
    assert [r["train"] for r in h1] == [r["train"] for r in h2]
    assert [r["dev"] for r in h1] == [r["dev"] for r in h2]
    assert _same_weights(w1, w2)


def test_a_different_seed_gives_different_losses(tiny_features_root, tmp_path):
    histories = []
    for seed in (1, 2):
        root = copy_root(tiny_features_root, tmp_path / str(seed))
        write_conf(
            root,
            "tag",
            "t",
            {**TINY_TAG, "train": {**TINY_TAG["train"], "seed": seed, "epochs": 1}},
        )
        train_tag("t", Layout(root), device="cpu")
        histories.append(read_history(root / "exp/t")[0]["train"])
    assert histories[0] != histories[1]


def test_changed_tag_is_refused_and_force_starts_over(troot):
    train_tag("t", Layout(troot), device="cpu")
    changed = copy.deepcopy(TINY_TAG)
    changed["train"]["batch_size"] = 3
    write_conf(troot, "tag", "t", changed)
    with pytest.raises(ConfigChangedError) as info:
        train_tag("t", Layout(troot), device="cpu")
    assert "train.batch_size: 2 -> 3" in str(info.value)
    assert (troot / "exp/t/checkpoints/latest.pt").is_file()  # nothing lost
    summary = train_tag("t", Layout(troot), device="cpu", force=True)
    assert summary["steps"] == 4  # 6 utterances in batches of 3, two epochs, from scratch
    assert "batch_size: 3" in (troot / "exp/t/config.yaml").read_text()


def test_rerun_of_a_finished_tag_is_a_noop(troot):
    train_tag("t", Layout(troot), device="cpu")
    before = _weights(troot / "exp/t/checkpoints/latest.pt")
    summary = train_tag("t", Layout(troot), device="cpu")
    assert summary["epochs_done"] == 2 and summary["steps"] == 6
    assert _same_weights(before, _weights(troot / "exp/t/checkpoints/latest.pt"))


def test_more_epochs_continue_from_latest(troot):
    train_tag("t", Layout(troot), device="cpu")
    longer = copy.deepcopy(TINY_TAG)
    longer["train"]["epochs"] = 3
    write_conf(troot, "tag", "t", longer)
    with pytest.raises(ConfigChangedError):  # the budget is part of the pinned config
        train_tag("t", Layout(troot), device="cpu")


def test_group_size_does_not_change_the_lr_schedule(troot):
    a = setup("t", Layout(troot), device="cpu", write=False)
    other = copy.deepcopy(TINY_TAG)
    other["train"]["group_size"] = 3
    write_conf(troot, "tag", "g", other)
    b = setup("g", Layout(troot), device="cpu", write=False)
    assert [a.scheduler.lr_at_step(k) for k in range(1, 50)] == [
        b.scheduler.lr_at_step(k) for k in range(1, 50)
    ]


def test_nonfinite_loss_skips_then_aborts(troot, caplog):
    exp = setup("t", Layout(troot), device="cpu")
    real = exp.criterion.forward
    calls = {"n": 0}

    def first_nan(outputs, batch):
        calls["n"] += exp.core.training  # the first training step (not the dev baseline)
        total, terms = real(outputs, batch)
        return (total * float("nan"), terms) if calls["n"] == 1 else (total, terms)

    exp.criterion.forward = first_nan
    caplog.set_level("WARNING")
    summary = Trainer(exp).run(max_epochs=1)
    assert "loss is nan; step skipped" in caplog.text
    assert summary["steps"] == 2  # 3 batches, one skipped

    strict = copy.deepcopy(TINY_TAG)
    strict["train"]["max_nonfinite"] = 4
    write_conf(troot, "tag", "t", strict)
    exp = setup("t", Layout(troot), device="cpu", force=True)
    exp.criterion.forward = lambda o, b: (real(o, b)[0] * float("nan"), real(o, b)[1])
    with pytest.raises(
        TrainingDivergedError, match=r"4 non-finite losses in a row at step 1 \(last lr"
    ):
        Trainer(exp).run()


def test_missing_features_name_the_command(root):
    write_conf(
        root,
        "spk",
        "tiny",
        {"corpus": {"name": "demo", "num_utts": 10}, "split": {"dev": 2, "eval": 2}},
    )
    write_conf(root, "tag", "t", TINY_TAG)
    with pytest.raises(
        UserError, match=r"features of spk 'tiny' are missing.*--stage 0 --stop_stage 1"
    ):
        train_tag("t", Layout(root), device="cpu")


def test_summary_has_the_untrained_and_copy_source_baselines(troot):
    from vc_toolkit.train.loop import evaluate

    untrained = evaluate(setup("t", Layout(troot), device="cpu", write=False))
    summary = train_tag("t", Layout(troot), device="cpu")
    base = summary["baselines"]
    assert set(base) == {"initial", "copy_source"}
    assert base["initial"] == pytest.approx(untrained)  # what the model scored before step 1
    assert base["copy_source"]["post_mel"] > 0 and base["copy_source"]["mel"] > 0
    assert "before training" in (troot / "exp/t/train.log").read_text()


def test_copy_source_of_an_utterance_against_itself_costs_nothing(tiny_features_root):
    import dataclasses

    from vc_toolkit.data.batch import collate
    from vc_toolkit.data.dump import DumpSplit
    from vc_toolkit.features.stats import load_stats
    from vc_toolkit.models.frames import lengths_to_mask
    from vc_toolkit.train.baselines import copy_source_losses, copy_source_mel

    dump_dir = tiny_features_root / "dump/tiny"
    st = load_stats(dump_dir / "stats.npz")
    ds = DumpSplit(dump_dir / "dev")
    batch = collate([ds[i] for i in range(len(ds))])
    assert copy_source_losses([batch], st, r=2)["mel"] > 0.3  # two voices differ
    # target := the source itself, same statistics, one reduced frame per reduced frame
    same_stats = {**st, "tgt_mel_mean": st["src_mel_mean"], "tgt_mel_std": st["src_mel_std"]}
    one_each = lengths_to_mask(batch.src_lens // 2, batch.duration.shape[1]).long()
    same = dataclasses.replace(
        batch, tgt_mel=batch.src_mel, tgt_lens=batch.src_lens, duration=one_each
    )
    assert copy_source_losses([same], same_stats, r=2)["mel"] == pytest.approx(0.0, abs=1e-6)
    assert copy_source_mel(same, same_stats, 2).shape == batch.src_mel.shape


def _scalar_steps(exp_dir, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(exp_dir / "tensorboard"))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_a_mid_epoch_resume_keeps_epoch_means_and_every_tensorboard_point(
    tiny_features_root, tmp_path, monkeypatch
):
    data = copy.deepcopy(TINY_TAG)
    data["train"].update(epochs=2, save_interval_steps=1)  # 3 steps per epoch
    ref = copy_root(tiny_features_root, tmp_path / "ref")
    write_conf(ref, "tag", "t", data)
    train_tag("t", Layout(ref), device="cpu")

    root = copy_root(tiny_features_root, tmp_path / "cut")
    write_conf(root, "tag", "t", data)
    real, calls = Trainer._step, []

    def crash_at_step_5(self, batch):
        calls.append(1)
        if len(calls) == 5:  # epoch 2, after step 4 was saved as latest
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(Trainer, "_step", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train_tag("t", Layout(root), device="cpu")
    monkeypatch.setattr(Trainer, "_step", real)
    train_tag("t", Layout(root), device="cpu")

    def rows(path):  # wall-clock seconds aside, the records must be the same
        return [{k: v for k, v in r.items() if k != "seconds"} for r in read_history(path)]

    assert rows(root / "exp/t") == rows(ref / "exp/t")
    assert _scalar_steps(root / "exp/t", "train/total") == [1, 2, 3, 4, 5, 6]
    assert _scalar_steps(root / "exp/t", "dev/post_mel") == [0, 3, 6]


def test_a_dev_loss_far_worse_than_the_untrained_model_stops_without_saving(troot):
    data = copy.deepcopy(TINY_TAG)
    data["train"]["scheduler"]["peak_lr"] = 10.0
    write_conf(troot, "tag", "t", data)
    with pytest.raises(TrainingDivergedError, match="training diverged") as err:
        train_tag("t", Layout(troot), device="cpu")
    text = str(err.value)
    assert "before training" in text and "--force" in text and "\n" not in text
    assert not (troot / "exp/t/checkpoints").exists()  # nothing of the diverged run kept


def test_non_finite_weights_are_never_saved_and_the_way_back_is_named(troot, monkeypatch):
    data = copy.deepcopy(TINY_TAG)
    data["train"]["epochs"] = 3
    write_conf(troot, "tag", "t", data)
    real, calls = Trainer._step, []

    def break_weights_in_epoch_3(self, batch):
        calls.append(1)
        out = real(self, batch)
        if len(calls) == 7:
            with torch.no_grad():
                next(self.exp.core.parameters()).fill_(float("inf"))
        return out

    monkeypatch.setattr(Trainer, "_step", break_weights_in_epoch_3)
    with pytest.raises(TrainingDivergedError, match="--resume_from best"):
        train_tag("t", Layout(troot), device="cpu")
    latest = torch.load(troot / "exp/t/checkpoints/latest.pt", weights_only=False)
    assert latest["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in latest["model"].values())


def test_a_finished_step_budget_is_not_exceeded_by_a_rerun(troot):
    data = copy.deepcopy(TINY_TAG)
    data["train"].update(epochs=5, max_steps=4)
    write_conf(troot, "tag", "t", data)
    assert train_tag("t", Layout(troot), device="cpu")["steps"] == 4
    again = train_tag("t", Layout(troot), device="cpu")
    assert again["steps"] == 4
    assert torch.load(troot / "exp/t/checkpoints/latest.pt", weights_only=False)["step"] == 4
