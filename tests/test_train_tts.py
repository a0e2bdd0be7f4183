"""Stage 2 of a TTS tag: the generic loop on a tiny text dump, checkpoints, resume, images."""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest
import torch
from conftest import TINY_TAG, copy_root, write_conf
from tts_fixtures import make_text_spk, tts_tag

from vc_toolkit.data.text_dump import TextDumpSplit, write_durations
from vc_toolkit.paths import Layout
from vc_toolkit.records import read_history
from vc_toolkit.train.family import FamilyMismatchError
from vc_toolkit.train.loop import Trainer
from vc_toolkit.train.setup import setup
from vc_toolkit.train.stage import run as train_tag


@pytest.fixture(autouse=True)
def _console_logging_restored():
    """vc-align points logging at the (captured) stderr; later tests log elsewhere."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def text_root(tiny_features_root, tmp_path_factory):
    """A root with the speech spk 'tiny' and the text spk 'tinytts' (stage 1 done)."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("text"))
    make_text_spk(root)
    return root


@pytest.fixture
def troot(text_root, tmp_path):
    root = copy_root(text_root, tmp_path)
    write_conf(root, "tag", "t", tts_tag())
    return root


def _state(root, name="latest"):
    return torch.load(root / f"exp/t/checkpoints/{name}.pt", map_location="cpu", weights_only=False)


def test_tts_tag_trains_through_the_generic_loop(troot):
    summary = train_tag("t", Layout(troot), device="cpu")
    assert summary["epochs_done"] == 2 and summary["steps"] == 6
    rows = read_history(troot / "exp/t")
    dev = rows[-1]["dev"]
    assert set(dev) == {
        "mel", "post_mel", "duration", "pitch", "energy", "forward_sum", "bin", "total"
    }  # fmt: skip
    assert all(np.isfinite(v) for v in dev.values())
    state = _state(troot)
    symbols = json.loads((troot / "dump/tinytts/symbols.json").read_text())
    assert state["symbols"] == symbols  # inference needs the table
    assert json.loads((troot / "exp/t/symbols.json").read_text()) == symbols
    assert "token_embed.weight" in state["model"] and "aligner" in " ".join(state["model"])
    saved = json.loads((troot / "exp/t/summary.json").read_text())
    assert "copy_source" not in saved["baselines"] and "initial" in saved["baselines"]


def test_training_lowers_the_dev_losses(troot):
    data = tts_tag(epochs=6)
    write_conf(troot, "tag", "t", data)
    train_tag("t", Layout(troot), device="cpu")
    saved = json.loads((troot / "exp/t/summary.json").read_text())
    initial, last = saved["baselines"]["initial"], saved["last_dev"]
    for name in ("mel", "forward_sum"):
        assert last[name] < initial[name], name


def test_the_trainer_tells_the_model_its_step_and_bin_starts_on_schedule(troot, monkeypatch):
    data = tts_tag()
    data["model"]["aligner"].update(bin_start_steps=3, bin_warmup_steps=0)
    write_conf(troot, "tag", "t", data)
    seen = []
    real = Trainer._step

    def spy(self, batch):
        out = real(self, batch)
        seen.append((self.exp.core.step, out["bin"]))
        return out

    monkeypatch.setattr(Trainer, "_step", spy)
    train_tag("t", Layout(troot), device="cpu")
    assert [s for s, _ in seen] == [0, 1, 2, 3, 4, 5]
    assert all(b == 0.0 for s, b in seen if s < 3)
    assert all(b > 0.0 for s, b in seen if s >= 3)


def test_resume_mid_run_gives_the_uninterrupted_weights(text_root, tmp_path, monkeypatch):
    data = tts_tag()
    data["train"].update(save_interval_steps=1)
    ref = copy_root(text_root, tmp_path / "ref")
    write_conf(ref, "tag", "t", data)
    train_tag("t", Layout(ref), device="cpu")

    root = copy_root(text_root, tmp_path / "cut")
    write_conf(root, "tag", "t", data)
    real, calls = Trainer._step, []

    def crash_at_step_5(self, batch):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(Trainer, "_step", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train_tag("t", Layout(root), device="cpu")
    monkeypatch.setattr(Trainer, "_step", real)
    train_tag("t", Layout(root), device="cpu")
    a, b = _state(ref)["model"], _state(root)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = lambda p: [{k: v for k, v in r.items() if k != "seconds"} for r in read_history(p)]  # noqa: E731
    assert rows(root / "exp/t") == rows(ref / "exp/t")


def test_samplers_balance_tokens_as_the_second_stream(troot):
    exp = setup("t", Layout(troot), device="cpu", write=False)
    batch = next(iter(exp.train_loader()))
    assert type(batch).__name__ == "TextBatch"
    assert exp.sampler.extra is not None
    assert list(exp.sampler.extra) == list(exp.train_set.token_counts)
    assert exp.core.vocab_size == len(
        json.loads((troot / "dump/tinytts/symbols.json").read_text())["symbols"]
    )


def test_model_family_and_dump_kind_must_agree(troot):
    write_conf(troot, "tag", "vc", {**TINY_TAG, "spk": "tinytts"})  # a VC model, a text spk
    with pytest.raises(FamilyMismatchError, match="model.type: fastspeech2tts"):
        setup("vc", Layout(troot), device="cpu", write=False)
    write_conf(troot, "tag", "t2", tts_tag(spk="tiny"))  # a TTS model on a speech spk
    with pytest.raises(FamilyMismatchError, match="model.type: fastspeech2vc"):
        setup("t2", Layout(troot), device="cpu", write=False)


def test_dev_images_include_the_alignment(troot):
    data = tts_tag(epochs=1)
    data["train"]["dev_images"] = 1
    write_conf(troot, "tag", "t", data)
    train_tag("t", Layout(troot), device="cpu")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(troot / "exp/t/tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    images = acc.Tags()["images"]
    assert any(t.startswith("dev_align/") for t in images), images
    assert any(t.startswith("dev_mel/") for t in images)
    assert any(t.startswith("dev_audio/") for t in acc.Tags()["audio"])


def test_fixed_durations_are_read_and_used(troot):
    data = copy.deepcopy(tts_tag())
    data["model"]["text"] = {"durations": "al"}
    write_conf(troot, "tag", "fixed", data)
    with pytest.raises(Exception, match="vc-align --tag al"):
        setup("fixed", Layout(troot), device="cpu", write=False)
    for split in ("train", "dev"):  # durations a previous tag would have written
        ds = TextDumpSplit(troot / f"dump/tinytts/{split}")
        rows = {}
        for i, utt in enumerate(ds.utt_ids):
            n, t = int(ds.token_counts[i]), int(ds.tgt_frames[i]) // 2
            rows[utt] = [1] * (n - 1) + [t - n + 1]
        write_durations(troot / f"dump/tinytts/{split}", "al", rows, ds)
    exp = setup("fixed", Layout(troot), device="cpu", write=False)
    batch = next(iter(exp.train_loader()))
    assert batch.duration is not None
    out = exp.core(batch)
    assert torch.equal(out["duration_target"], batch.duration)


def test_vc_align_writes_durations_a_later_tag_trains_on(troot, capsys):
    from vc_toolkit.bin.align import main as vc_align

    train_tag("t", Layout(troot), device="cpu")
    assert vc_align(["--tag", "t", "--root", str(troot), "--batch_size", "3"]) == 0
    assert "reduced frames per token" in capsys.readouterr().out
    exp = setup("t", Layout(troot), device="cpu", write=False)
    for split in ("train", "dev", "eval"):
        ds = TextDumpSplit(troot / f"dump/tinytts/{split}", durations="t")
        plain = TextDumpSplit(troot / f"dump/tinytts/{split}")
        for i in range(len(ds)):
            d = ds[i]["duration"]
            assert len(d) == len(ds[i]["tokens"]) and d.sum() == len(ds[i]["tgt_mel"]) // 2
            assert (d >= 1).all()
        batch = exp.family.collate([plain[i] for i in range(len(plain))])
        mine = exp.core.align(batch)["duration"]  # the same model's MAS, batched differently
        for i in range(len(ds)):
            assert mine[i, : int(batch.token_lens[i])].tolist() == ds[i]["duration"].tolist()
    fixed = tts_tag(epochs=1)
    fixed["model"]["text"] = {"durations": "t"}
    write_conf(troot, "tag", "f", fixed)
    assert train_tag("f", Layout(troot), device="cpu")["steps"] == 3


def test_vc_align_refuses_a_vc_tag_and_an_untrained_one(troot, capsys):
    from vc_toolkit.bin.align import main as vc_align

    write_conf(troot, "tag", "vc", TINY_TAG)
    assert vc_align(["--tag", "vc", "--root", str(troot)]) == 1
    assert "fastspeech2tts" in capsys.readouterr().err
    assert vc_align(["--tag", "t", "--root", str(troot)]) == 1
    assert "train it first" in capsys.readouterr().err


def test_a_vocoder_fine_tunes_on_the_teacher_forced_mels_of_a_tts_tag(troot):
    from conftest import TINY_VOC

    from vc_toolkit.data.vocoder import load_pair
    from vc_toolkit.features.stats import denormalize_mel, load_stats
    from vc_toolkit.train.voc_stage import run as train_voc

    train_tag("t", Layout(troot), device="cpu")
    voc = copy.deepcopy(TINY_VOC)
    voc.update(spk="tinytts", data={"finetune": {"tag": "t", "checkpoint": "best"}})
    voc["train"]["epochs"] = 1
    write_conf(troot, "voc", "ft", voc)
    assert train_voc("ft", Layout(troot), device="cpu")["steps"] > 0
    exp = setup("t", Layout(troot), device="cpu", write=False, resume_from="best")
    exp.core.eval()
    stats = load_stats(troot / "dump/tinytts/stats.npz")
    for i, utt in enumerate(exp.dev_set.utt_ids):
        pair = load_pair(troot / f"exp/voc/ft/gta/dev/{utt}.npz")
        with torch.no_grad():
            mel = exp.core(exp.family.collate([exp.dev_set[i]]))["post_mel"][0].numpy()
        np.testing.assert_allclose(pair["mel"], denormalize_mel(mel, stats, side="tgt"), atol=1e-5)
