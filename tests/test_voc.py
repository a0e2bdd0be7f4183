"""Vocoder experiments: training, exact resume, teacher-forced fine-tuning, use by name, packs."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from conftest import TINY_TAG, TINY_VOC, copy_root, write_conf

from vc_toolkit.config.pin import ConfigChangedError
from vc_toolkit.data.batch import collate
from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.data.vocoder import load_pair
from vc_toolkit.features.stats import denormalize_mel, load_stats
from vc_toolkit.infer.convert import Converter, resolve_infer
from vc_toolkit.infer.pack import archive_pack, load_pack, load_tag_bundle, pack_tag
from vc_toolkit.models import build_model
from vc_toolkit.paths import Layout
from vc_toolkit.train.stage import run as train_tag
from vc_toolkit.train.voc_loop import VocoderTrainer
from vc_toolkit.train.voc_stage import run as train_voc
from vc_toolkit.vocoder.hifigan import load_hifigan

HOP = 160  # the tiny spk


def _voc(**train) -> dict:
    data = copy.deepcopy(TINY_VOC)
    data["train"].update(train)
    return data


def _generator(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["generator"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def voc_root(tiny_features_root, tmp_path_factory):
    """The tiny spk with voc 'v' trained for 2 epochs."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("voc"))
    write_conf(root, "voc", "v", _voc())
    train_voc("v", Layout(root), device="cpu")
    return root


def test_training_writes_a_vocoder_run(voc_root):
    exp = voc_root / "exp/voc/v"
    for name in ("config.yaml", "summary.json", "history.jsonl", "lineage.json", "pairs.json"):
        assert (exp / name).is_file(), name
    ckpts = sorted(p.name for p in (exp / "checkpoints").iterdir())
    assert ckpts == ["best.pt", "epoch1.pt", "epoch2.pt", "latest.pt"]
    assert sorted(p.name for p in (exp / "generator").iterdir()) == sorted(["config.json", *ckpts])
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["voc"] == "v" and summary["steps"] == 6 and summary["best_metric"] == "mel"
    assert set(summary["baselines"]) == {"initial", "griffin_lim"}
    rows = [json.loads(line) for line in (exp / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and {"disc", "adv", "fm", "mel"} <= set(
        rows[0]["train"]
    )
    assert any((exp / "tensorboard").iterdir())
    # the training pairs are the spk's target recordings, cached once per spk
    train_ids = DumpSplit(voc_root / "dump/tiny/train").utt_ids
    assert sorted(p.stem for p in (voc_root / "dump/tiny/voc/tgt/train").glob("*.npz")) == sorted(
        train_ids
    )


def test_a_checkpoint_is_a_hifigan_generator_file(voc_root):
    loaded = load_hifigan(voc_root / "exp/voc/v/generator/best.pt")
    assert loaded.hop_size == HOP and loaded.num_mels == 20 and loaded.sampling_rate == 16000
    wav = loaded.generator(torch.zeros(1, 20, 7))
    assert wav.shape == (1, 1, 7 * HOP)


def test_an_interrupted_run_resumes_bit_identically(voc_root, tmp_path, monkeypatch):
    root = copy_root(voc_root, tmp_path)
    write_conf(root, "voc", "cut", _voc(epochs=2, save_interval_steps=1))
    real, calls = VocoderTrainer._step, []

    def crash_at_step_5(self, batch):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(VocoderTrainer, "_step", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train_voc("cut", Layout(root), device="cpu")
    monkeypatch.setattr(VocoderTrainer, "_step", real)
    train_voc("cut", Layout(root), device="cpu")
    done, ref = root / "exp/voc/cut/checkpoints", voc_root / "exp/voc/v/checkpoints"
    assert _same(_generator(done / "latest.pt"), _generator(ref / "latest.pt"))
    state = torch.load(done / "latest.pt", weights_only=False)
    assert _same(
        state["discriminator"], torch.load(ref / "latest.pt", weights_only=False)["discriminator"]
    )


def test_a_changed_voc_config_is_refused_and_force_starts_over(voc_root, tmp_path):
    root = copy_root(voc_root, tmp_path)
    write_conf(root, "voc", "v", _voc(lr=1e-3))
    with pytest.raises(ConfigChangedError, match="train.lr"):
        train_voc("v", Layout(root), device="cpu")
    summary = train_voc("v", Layout(root), device="cpu", force=True)
    assert summary["steps"] == 6


def test_finetuning_on_teacher_forced_mels(voc_root, tmp_path):
    root = copy_root(voc_root, tmp_path)
    write_conf(root, "tag", "t", TINY_TAG)
    train_tag("t", Layout(root), device="cpu")
    ft = _voc(epochs=1)
    ft.update(data={"finetune": {"tag": "t", "checkpoint": "best"}}, pretrain={"voc": "v"})
    write_conf(root, "voc", "ft", ft)
    summary = train_voc("ft", Layout(root), device="cpu")
    assert summary["lineage"][1]["voc"] == "v"
    # every pair: the tag's teacher-forced mel (denormalised) with the target audio
    layout = Layout(root)
    bundle = load_tag_bundle(layout, "t", "best")
    model = build_model(bundle.cfg.model, 20, 2)
    model.load_state_dict(bundle.weights)
    model.eval()
    dev = DumpSplit(root / "dump/tiny/dev")
    stats = load_stats(root / "dump/tiny/stats.npz")
    for i, utt in enumerate(dev.utt_ids):
        pair = load_pair(root / f"exp/voc/ft/gta/dev/{utt}.npz")
        with torch.no_grad():
            mel = model(collate([dev[i]]))["post_mel"][0].numpy()
        np.testing.assert_allclose(pair["mel"], denormalize_mel(mel, stats, side="tgt"), atol=1e-5)
        assert len(pair["audio"]) == len(pair["mel"]) * HOP


def test_a_tag_uses_a_trained_vocoder_by_name_and_packs_it(voc_root, tmp_path):
    root = copy_root(voc_root, tmp_path)
    layout = Layout(root)
    write_conf(root, "tag", "base", TINY_TAG)
    train_tag("base", layout, device="cpu")
    # an inference variant: the base tag's weights (epochs 0), another vocoder
    data = copy.deepcopy(TINY_TAG)
    data["train"]["epochs"] = 0
    data["pretrain"] = {"tag": "base", "checkpoint": "best"}
    data["infer"] = {"vocoder": {"type": "hifigan", "voc": "v", "checkpoint": "best"}}
    write_conf(root, "tag", "t", data)
    summary = train_tag("t", layout, device="cpu")
    assert summary["epochs_done"] == 0 and summary["steps"] == 0
    assert _same(
        torch.load(root / "exp/t/checkpoints/best.pt", weights_only=False)["model"],
        torch.load(root / "exp/base/checkpoints/best.pt", weights_only=False)["model"],
    )
    bundle = load_tag_bundle(layout, "t")
    infer = resolve_infer(bundle.cfg.infer, {}, layout)
    assert infer.vocoder.checkpoint == str(root / "exp/voc/v/generator/best.pt")
    item = DumpSplit(root / "dump/tiny/dev")[0]
    (res,) = Converter(bundle, infer)([item])
    assert len(res["wav"]) == len(res["mel"]) * HOP and np.abs(res["wav"]).max() > 0
    pack = pack_tag(layout, "t")
    assert (pack / "vocoder/best.pt").is_file() and (pack / "vocoder/config.json").is_file()
    moved = tmp_path / "elsewhere"
    pack.rename(moved)
    packed = load_pack(moved)
    (again,) = Converter(packed)([item])
    np.testing.assert_array_equal(again["wav"], res["wav"])
    archive = archive_pack(moved)
    (from_tar,) = Converter(load_pack(archive))([item])
    np.testing.assert_array_equal(from_tar["wav"], res["wav"])


@pytest.mark.slow
def test_sigkill_then_rerun_ends_bit_identical(voc_root, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root = copy_root(voc_root, tmp_path)
    write_conf(root, "voc", "k", _voc(epochs=4, save_interval_steps=2, log_interval=1))
    cmd = [sys.executable, "-m", "vc_toolkit.bin.train_vocoder", "--voc", "k"]
    cmd += ["--root", str(root), "--device", "cpu", "--nj", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = root / "exp/voc/k/train.log"
    deadline = time.time() + 180
    while time.time() < deadline:  # somewhere in epoch 3, between checkpoints
        if log.is_file() and "step 7:" in log.read_text():
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert torch.load(root / "exp/voc/k/checkpoints/latest.pt", weights_only=False)["step"] < 12
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resuming from" in out.stderr

    ref = copy_root(voc_root, tmp_path / "ref")
    write_conf(ref, "voc", "k", _voc(epochs=4, save_interval_steps=2, log_interval=1))
    train_voc("k", Layout(ref), device="cpu")
    for name in ("generator", "discriminator"):
        a = torch.load(root / "exp/voc/k/checkpoints/latest.pt", weights_only=False)[name]
        b = torch.load(ref / "exp/voc/k/checkpoints/latest.pt", weights_only=False)[name]
        assert _same(a, b), name
