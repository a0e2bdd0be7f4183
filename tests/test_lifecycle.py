"""Lifecycle: exact resume after SIGKILL, checkpoint fallback, locks, resume_from, DDP."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TINY_TAG, copy_root, write_conf

from vc_toolkit import checkpoint
from vc_toolkit.data.batch import collate
from vc_toolkit.lock import LockedError, tag_lock
from vc_toolkit.paths import Layout
from vc_toolkit.train.sampler import GroupedBatchSampler
from vc_toolkit.train.setup import setup
from vc_toolkit.train.stage import run as train_tag


def _tag(**train) -> dict:
    cfg = copy.deepcopy(TINY_TAG)
    cfg["train"].update(train)
    return cfg


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _train_cmd(root, tag, *extra):
    return [
        sys.executable,
        "-m",
        "vc_toolkit.bin.train",
        "--tag",
        tag,
        "--root",
        str(root),
        "--device",
        "cpu",
        *extra,
    ]


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tiny_features_root, tmp_path):
    long = _tag(epochs=6, log_interval=1, save_interval_steps=2, ckpt_interval=2)
    ref = copy_root(tiny_features_root, tmp_path / "ref")
    write_conf(ref, "tag", "t", long)
    train_tag("t", Layout(ref), device="cpu")

    root = copy_root(tiny_features_root, tmp_path / "killed")
    write_conf(root, "tag", "t", long)
    proc = subprocess.Popen(
        _train_cmd(root, "t"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = root / "exp/t/train.log"
    deadline = time.time() + 120
    while time.time() < deadline:  # kill somewhere in epoch 3, between checkpoints
        if log.is_file() and "step 8:" in log.read_text():
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    killed_at = torch.load(root / "exp/t/checkpoints/latest.pt", weights_only=False)
    assert killed_at["step"] < 18  # the run really was cut short

    out = subprocess.run(_train_cmd(root, "t"), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "resuming from" in out.stderr
    _assert_identical(
        _weights(ref / "exp/t/checkpoints/latest.pt"),
        _weights(root / "exp/t/checkpoints/latest.pt"),
    )
    assert (root / "exp/t/history.jsonl").read_text().count('"epoch": 3') == 1  # no duplicate rows


def test_corrupt_latest_falls_back_to_previous(tiny_features_root, tmp_path, caplog):
    root = copy_root(tiny_features_root, tmp_path)
    write_conf(root, "tag", "t", _tag())
    train_tag("t", Layout(root), device="cpu")
    folder = root / "exp/t/checkpoints"
    data = (folder / "latest.pt").read_bytes()
    (folder / "latest.pt").write_bytes(data[: len(data) // 2])
    caplog.set_level("WARNING")
    state, path = checkpoint.load_for_resume(folder)
    assert path.name == "epoch2.pt" and state["epoch"] == 2
    assert "latest.pt is unreadable" in caplog.text
    exp = setup("t", Layout(root), device="cpu")
    assert exp.resumed_from.name == "epoch2.pt"


def test_resume_from_older_checkpoint_moves_later_ones_aside(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    write_conf(root, "tag", "t", _tag())
    train_tag("t", Layout(root), device="cpu")
    final = _weights(root / "exp/t/checkpoints/latest.pt")
    train_tag("t", Layout(root), device="cpu", resume_from="epoch1")
    folder = root / "exp/t/checkpoints"
    aside = [p for p in folder.iterdir() if p.name.startswith("aside-")]
    assert len(aside) == 1
    assert {p.name for p in aside[0].iterdir()} == {"latest.pt", "best.pt", "epoch2.pt"}
    _assert_identical(final, _weights(folder / "latest.pt"))  # replayed exactly
    with pytest.raises(checkpoint.CheckpointError, match="available: latest, best, epoch1, epoch2"):
        train_tag("t", Layout(root), device="cpu", resume_from="epoch9")


def test_lock_blocks_a_second_run_and_takes_over_stale_locks(tmp_path, caplog):
    lock = tmp_path / "train.lock"
    busy = f"already being trained by process {os.getpid()}"
    with tag_lock(lock, "tag 't'"), pytest.raises(LockedError, match=busy), tag_lock(lock, "t"):
        pass
    assert not lock.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f'{{"pid": {dead.pid}, "host": "{os.uname().nodename}", "started": "then"}}')
    caplog.set_level("WARNING")
    with tag_lock(lock, "tag 't'"):
        assert str(os.getpid()) in lock.read_text()
    assert "taking over a stale lock" in caplog.text


def test_lock_is_held_during_training(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    write_conf(root, "tag", "t", _tag())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = root / "exp/t/train.lock"
        lock.parent.mkdir(parents=True)
        lock.write_text(
            f'{{"pid": {sleeper.pid}, "host": "{os.uname().nodename}", "started": "now"}}'
        )
        with pytest.raises(LockedError):
            train_tag("t", Layout(root), device="cpu")
    finally:
        sleeper.kill()
        sleeper.wait()
    train_tag("t", Layout(root), device="cpu")  # the holder is gone: taken over
    assert not (root / "exp/t/train.lock").exists()


def _no_dropout(cfg: dict) -> dict:
    cfg = copy.deepcopy(cfg)
    m = cfg["model"]
    for block in ("encoder", "decoder"):
        m[block].update(dropout=0.0, attn_dropout=0.0)
    for block in ("duration_predictor", "pitch_predictor", "energy_predictor", "postnet"):
        m[block]["dropout"] = 0.0
    return cfg


@pytest.mark.slow
def test_ddp_gloo_matches_single_process_on_the_same_global_batch(tiny_features_root, tmp_path):
    cfg = _no_dropout(_tag(epochs=2, batch_size=1, group_size=2, ckpt_interval=2))
    root = copy_root(tiny_features_root, tmp_path)
    write_conf(root, "tag", "t", cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        _train_cmd(root, "t", "--nproc", "2", "--master_port", "29517"),
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ddp = torch.load(root / "exp/t/checkpoints/latest.pt", weights_only=False)
    assert ddp["step"] == 6  # 6 utterances, 2 ranks x batch 1, two epochs
    _assert_matches_two_shards_by_hand(ddp["model"], root, tmp_path)


@pytest.mark.slow
def test_two_nodes_on_loopback_match_single_process_on_the_same_global_batch(
    tiny_features_root, tmp_path
):
    cfg = _no_dropout(_tag(epochs=2, batch_size=1, group_size=2, ckpt_interval=2))
    root = copy_root(tiny_features_root, tmp_path)
    write_conf(root, "tag", "t", cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            _train_cmd(
                root,
                "t",
                "--nproc",
                "1",
                "--nnodes",
                "2",
                "--node_rank",
                str(rank),
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                "29531",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], logs[0][-1500:] + logs[1][-1500:]
    assert "--nnodes=2" in logs[0] and "--node_rank=1" in logs[1]
    ddp = torch.load(root / "exp/t/checkpoints/latest.pt", weights_only=False)
    assert ddp["step"] == 6
    _assert_matches_two_shards_by_hand(ddp["model"], root, tmp_path)


def _assert_matches_two_shards_by_hand(weights: dict, root, tmp_path) -> None:
    """Weights of one process stepping on both ranks' batches, gradients averaged by hand."""
    exp = setup(
        "t", Layout(root), device="cpu", write=False, cfg=exp_cfg(root), exp_dir=tmp_path / "ref"
    )
    model, crit, opt = exp.core, exp.criterion, exp.optimizer
    from vc_toolkit.train.scheduler import LRSchedule

    sched = LRSchedule(exp.cfg.train.scheduler, 2, exp.cfg.model.hidden, opt)
    shards = [
        GroupedBatchSampler(
            exp.train_set.tgt_frames,
            1,
            2,
            seed=exp.cfg.train.seed,
            extra_lengths=exp.train_set.src_frames,
            rank=r,
            world_size=2,
        )
        for r in range(2)
    ]
    model.train()
    for epoch in range(2):
        for pair in zip(*(s.batches(epoch) for s in shards), strict=True):
            opt.zero_grad()
            for idx in pair:
                batch = collate([exp.train_set[i] for i in idx])
                total, _ = crit(model(batch), batch)
                (total / 2).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), exp.cfg.train.grad_clip)
            opt.step()
            sched.step()
    ref = model.state_dict()
    for k, v in weights.items():
        assert torch.allclose(v, ref[k], atol=2e-5, rtol=1e-4), k


def exp_cfg(root):
    from vc_toolkit.config import load_tag

    return load_tag("t", root)


_CONTENDER = """
import json, sys, time
from pathlib import Path
from vc_toolkit import lock

lock_path, out, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
warn = lock.logger.warning
# a slow process: a pause between judging the lock stale and taking it over
lock.logger.warning = lambda *a, **k: (time.sleep(0.3), warn(*a, **k))
out.with_suffix(".ready").touch()
while not go.exists():
    time.sleep(0.001)
try:
    with lock.tag_lock(lock_path, "tag 't'"):
        out.write_text(json.dumps(["held", time.time()]))
        time.sleep(1.5)
except lock.LockedError as err:
    out.write_text(json.dumps(["refused", str(err)]))
"""


def test_stale_lock_is_taken_over_by_exactly_one_of_many_concurrent_processes(tmp_path):
    lock = tmp_path / "train.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f'{{"pid": {dead.pid}, "host": "{os.uname().nodename}", "started": "then"}}')
    go = tmp_path / "go"  # every contender starts its attempt at the same moment
    outs = [tmp_path / f"out{k}.json" for k in range(6)]
    procs = [
        subprocess.Popen([sys.executable, "-c", _CONTENDER, str(lock), str(out), str(go)])
        for out in outs
    ]
    deadline = time.monotonic() + 60
    while not all(out.with_suffix(".ready").exists() for out in outs):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    results = [json.loads(out.read_text()) for out in outs]
    assert [r[0] for r in results].count("held") == 1, results
    refused = [r[1] for r in results if r[0] == "refused"]
    assert all("already being trained by process" in r for r in refused), refused
    assert not lock.exists()


def test_a_tag_whose_spk_does_not_exist_names_the_tag_and_leaves_no_folder(root, capsys):
    from vc_toolkit.bin import train as train_cli

    write_conf(root, "tag", "lost", {**TINY_TAG, "spk": "nope"})
    assert train_cli.main(["--tag", "lost", "--root", str(root), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert "tag 'lost'" in err and "spk 'nope'" in err and len(err.splitlines()) == 1
    assert not (root / "exp/lost").exists()
