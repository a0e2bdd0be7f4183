"""Size-matched training throughput against vc_tts_template's FastSpeech2-VC (issue 17).

The peer toolkit our users come from, `vc_tts_template
<https://github.com/YutoNishimura-v2/vc_tts_template>`_, is imported from a checkout given on
the command line (``--peer_root``); none of its code is copied here. Its FastSpeech2-VC is built
from its own model config (``recipes/fastspeech2VC/conf/train_fastspeech2VC/model/
fastspeech2VC.yaml``: Conformer 4+4, attention dim 384, hidden 256) with the conv pitch
predictor (``pitch_AR: false``), and trained with its own step function
(``recipes/fastspeech2VC/train_fastspeech2VC.py: fastspeech2VC_train_step``: forward,
``FastSpeech2VCLoss``, backward, gradient clipping at 1, Adam and its ``ScheduledOptim`` from
its train config, its AMP scaler and gradient checker as ``recipes/common/train_loop.py`` sets
them up, both inactive on a CPU).

Both sides see the same batches: the first ``warmup + steps`` batches of ``--tag``
(``demo_conv``) in training order, made by vc_toolkit's own loader exactly as
``bench/training.py``'s worker makes them (same config, same sampler, same seed); the peer's
inputs are built from those batches (see :func:`peer_batch`). Throughput is real target frames
(``tgt_lens``) per second of step time, the same numerator for both sides.

Contenders, each repetition in a fresh process, interleaved (peer, ours, ours bf16, peer, ...),
the ratio to the peer formed within each repetition (``bench/training.py``: ``compare``)::

    python bench/peer.py --peer_root /work/peer/vc_tts_template --reps 2 --batch_sizes 8,16 \\
        --steps 3 --warmup 1

The peer needs ``hydra-core`` and ``omegaconf`` (its modules import them) but nothing else
beyond vc_toolkit's own environment. They are kept out of the toolkit's venv (hydra-core
registers a pytest plugin) in a separate folder, ``--peer_site`` (default: ``site`` beside
``--peer_root``)::

    pip install --target /work/peer/site --no-deps hydra-core "omegaconf>=2.2,<2.4" \\
        "antlr4-python3-runtime==4.9.3"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import training
from machine import host_name, load_average, machine_info
from training import Contender, compare

PEER_MODEL_CONF = "recipes/fastspeech2VC/conf/train_fastspeech2VC/model/fastspeech2VC.yaml"
PEER_TRAIN_CONF = "recipes/fastspeech2VC/conf/train_fastspeech2VC/config.yaml"
PEER_PACKAGES = ("tacotron", "fastspeech2", "fastspeech2wGMM", "fastspeech2VC")
"""Peer subpackages whose ``__init__`` is not run: they import the TTS front ends
(``pyopenjtalk``), the inference wrappers and the vocoder glue; only the model, loss, optimizer and
train-step modules are imported, from their files, unchanged."""
PEER_NAME = "vc_tts_template"
TARGET_RATIO = 1.5
"""Issue 17: at a matching model size, at least 1.5x the peer's target frames per second."""


@dataclass(frozen=True)
class PeerContender(Contender):
    """The peer's row: ``code`` is its checkout, ``site`` the folder with hydra-core/omegaconf."""

    site: str = ""


# ---- worker (fresh process, PYTHONPATH = peer checkout, its site folder, our repository) ----


def _import_peer(peer_root: Path):
    """The peer's model class, loss class and train step, without its package ``__init__``s.

    Its config's ``_target_``, ``vc_tts_template.fastspeech2VC.fastspeech2VC``, is the class
    ``fastspeech2VC/__init__.py`` re-exports from the module of the same name; it is taken from
    that module here.
    """
    import types

    import vc_tts_template  # its top-level __init__ is empty

    for name in PEER_PACKAGES:
        module = types.ModuleType(f"vc_tts_template.{name}")
        module.__path__ = [str(peer_root / "vc_tts_template" / name)]
        sys.modules[module.__name__] = module
        setattr(vc_tts_template, name, module)
    from recipes.fastspeech2VC.train_fastspeech2VC import fastspeech2VC_train_step
    from vc_tts_template.fastspeech2VC.fastspeech2VC import fastspeech2VC
    from vc_tts_template.fastspeech2VC.loss import FastSpeech2VCLoss

    return fastspeech2VC, FastSpeech2VCLoss, fastspeech2VC_train_step


def peer_batch(b) -> tuple:
    """One vc_toolkit :class:`~vc_toolkit.data.batch.Batch` as the peer's training batch.

    The 16-tuple its ``collate_fn_fastspeech2VC`` + ``to_device`` yield (no sentence
    durations: its conv-pitch model does not use them). Field by field:

    * ``ids`` ← ``utt_ids``; speaker and emotion ids ← ``src_spk``, ``tgt_spk``, ``src_emo``,
      ``tgt_emo`` (zeros on a one-to-one spk; the model has no embeddings then);
    * ``s_mels`` (B, Ts, 80) ← ``src_mel``, ``s_mel_lens`` ← ``src_lens``, ``max_s_mel_len``
      ← ``max(src_lens)`` (= the padded width); same for the target (``tgt_*``);
    * ``s_pitches``/``t_pitches`` (B, T) ← ``src_lf0``/``tgt_lf0``: normalised continuous
      log-F0 per frame, as its preprocessing writes (log of interpolated F0, then a scaler);
    * ``s_energies``/``t_energies`` (B, T) ← ``src_energy``/``tgt_energy``: normalised log
      energy per frame (its preprocessing: log of the frame energy, then a scaler);
    * ``t_durations`` (B, Ts // r) ← ``duration``: reduced target frames per reduced source
      frame, summing to ``tgt_lens // r``, which is what its length regulator expects for the
      same reduction factor ``r`` (the model gets the spk's ``r``, 2 on ``demo``);
    * not used by the peer: ``src_vuv``/``tgt_vuv`` (it has no voicing flag) and the segment
      fields.
    """
    import numpy as np

    return (
        np.array(b.utt_ids),
        b.src_spk,
        b.tgt_spk,
        b.src_emo,
        b.tgt_emo,
        b.src_mel,
        b.src_lens,
        int(b.src_lens.max()),
        b.src_lf0,
        b.src_energy,
        b.tgt_mel,
        b.tgt_lens,
        int(b.tgt_lens.max()),
        b.tgt_lf0,
        b.tgt_energy,
        b.duration,
    )


def peer_model_kwargs(peer_root: Path, n_mels: int, reduction_factor: int) -> dict:
    """The peer's FastSpeech2-VC config (its ``_target_`` and keys), conv pitch, our ``r``."""
    from omegaconf import OmegaConf

    net = OmegaConf.to_container(OmegaConf.load(peer_root / PEER_MODEL_CONF).netG)
    net.update(
        n_mel_channel=n_mels,
        reduction_factor=reduction_factor,
        pitch_AR=False,
        pitch_ARNAR=False,
        speakers=None,
        emotions=None,
    )
    return net


def _peer_worker(spec: dict) -> dict:
    """``warmup + steps`` of the peer's train step on the tag's first batches, per-step times."""
    import gc
    import logging
    import tempfile
    import warnings

    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from vc_toolkit.config import TagConfig, build, to_dict
    from vc_toolkit.paths import Layout
    from vc_toolkit.train.setup import setup

    warnings.simplefilter("ignore")  # its torch.cuda.amp calls warn on a CPU
    peer_root = Path(spec["peer_root"])
    # our batches, made as bench/training.py's _worker makes them (same config and sampler)
    layout = Layout(Path(spec["root"]))
    cfg = training.variant_config(
        layout, spec["tag"], spec["predictor"], spec["preset"], spec["threads"]
    )
    data = to_dict(cfg)
    data["train"]["batch_size"] = spec["batch_size"]
    cfg = build(TagConfig, data, where="bench peer contender")
    with tempfile.TemporaryDirectory(prefix="vc-bench-peer-") as tmp:
        exp = setup("bench-peer", layout, "cpu", cfg=cfg, exp_dir=Path(tmp), write=False)
        batches = training._batches(exp)
        todo = [next(batches)[0] for _ in range(spec["warmup"] + spec["steps"])]
        ours_params = exp.core.num_params()
        r = int(exp.spk_cfg.reduction_factor)
        del batches, exp
    gc.collect()

    model_class, FastSpeech2VCLoss, train_step = _import_peer(peer_root)
    torch.manual_seed(cfg.train.seed)
    kwargs = peer_model_kwargs(peer_root, int(todo[0].src_mel.shape[-1]), r)
    model = model_class(**{k: v for k, v in kwargs.items() if k != "_target_"})
    # optimizer and scheduler as its train_utils.setup builds them from its train config
    optim_cfg = OmegaConf.load(peer_root / PEER_TRAIN_CONF).train.optim
    optimizer = getattr(torch.optim, optim_cfg.optimizer.name)(
        model.parameters(), **optim_cfg.optimizer.params
    )
    lr_scheduler = instantiate(optim_cfg.lr_scheduler)
    lr_scheduler._set_optimizer(optimizer)
    criterion = FastSpeech2VCLoss()
    from vc_tts_template.train_utils import check_grad_flow

    logger = logging.getLogger("vc_tts_template")
    scaler = torch.cuda.amp.GradScaler()  # as its train_loop; disabled without CUDA
    grad_checker = check_grad_flow(logger=logger)
    model.train()
    inputs = [peer_batch(b) for b in todo]
    seconds, frames, losses = [], [], []
    for b, batch in zip(todo, inputs, strict=True):
        start = time.perf_counter()
        values = train_step(
            model, optimizer, lr_scheduler, True, criterion, batch, logger, scaler, grad_checker
        )
        seconds.append(time.perf_counter() - start)
        frames.append(float(b.tgt_lens.sum()))
        losses.append(values["total_loss"])
    return {
        "seconds": seconds,
        "frames": frames,
        "waits": [0.0] * len(seconds),  # batches built before timing (its loader has workers)
        "threads": torch.get_num_threads(),
        "compile_seconds": 0.0,
        "params": sum(p.numel() for p in model.parameters()),
        "ours_params": ours_params,
        "peer_config": {k: v for k, v in kwargs.items() if k != "_target_"},
        "peer_target": kwargs["_target_"],
        "optimizer": OmegaConf.to_container(optim_cfg),
        "utt_ids": [list(b.utt_ids) for b in todo],
        "losses": losses,
    }


# ---- main process ---------------------------------------------------------------------------


def run_peer(c: PeerContender, spec: dict) -> dict:
    """The peer contender in a fresh process (its checkout and site folder on ``PYTHONPATH``)."""
    ours = str(Path(__file__).resolve().parents[1])  # vc_toolkit as the "new" rows import it
    path = os.pathsep.join([c.code, c.site, ours])
    env = {**os.environ, "PYTHONPATH": path, "TQDM_DISABLE": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--peer_worker", json.dumps({**spec, "peer_root": c.code})],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"contender {c.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextmanager
def peer_runs() -> Iterator[None]:
    """Let ``training.compare`` run :class:`PeerContender` rows through :func:`run_peer`."""
    original = training.run_contender

    def run(c: Contender, spec: dict) -> dict:
        return run_peer(c, spec) if isinstance(c, PeerContender) else original(c, spec)

    training.run_contender = run
    try:
        yield
    finally:
        training.run_contender = original


def markdown(rows: list[dict], peer_params: int, ours_params: int) -> str:
    """Target frames/s per batch size and contender, with the per-repetition ratio to the peer."""
    lines = [
        f"| B | contender | params | target frames/s | ratio to {PEER_NAME} "
        f"| per repetition | ≥ {TARGET_RATIO}× (median, worst) | loader |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        f, q = r["frames_per_second"], r["ratio"]
        peer = r["contender"].startswith(PEER_NAME)
        params = peer_params if peer else ours_params
        meets = (
            "–"
            if peer
            else f"{'yes' if q['median'] >= TARGET_RATIO else 'no'}, "
            f"{'yes' if q['min'] >= TARGET_RATIO else 'no'}"
        )
        lines.append(
            f"| {r['batch_size']} | {r['contender']} | {params / 1e6:.2f} M | "
            f"{f['median']:.0f} [{f['min']:.0f}–{f['max']:.0f}] | "
            f"{q['median']:.2f} [{q['min']:.2f}–{q['max']:.2f}] | "
            + ", ".join(f"{v:.2f}" for v in q["values"])
            + f" | {meets} | {100 * r['loader_share']['median']:.1f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``--peer_worker SPEC`` (internal), or the comparison (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer_worker", help=argparse.SUPPRESS)
    parser.add_argument("--peer_root", help="checkout of vc_tts_template (required)")
    parser.add_argument(
        "--peer_site", help="folder with hydra-core and omegaconf (default: PEER_ROOT/../site)"
    )
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--tag", default="demo_conv", help="whose batches both sides train on")
    parser.add_argument("--preset", default="large", help="our model preset (conv pitch)")
    parser.add_argument("--contenders", default="new,new_bf16", help="ours: new, new_bf16")
    parser.add_argument("--batch_sizes", default="8,16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument(
        "--out", help="JSON file (default: bench/results/<date>-<host>-peer.json, and .md)"
    )
    args = parser.parse_args(argv)
    if args.peer_worker:
        print(json.dumps(_peer_worker(json.loads(args.peer_worker))))
        return
    if not args.peer_root:
        parser.error("--peer_root is needed (a checkout of vc_tts_template)")
    peer_root = Path(args.peer_root).resolve()
    if not (peer_root / PEER_MODEL_CONF).is_file():
        parser.error(f"{peer_root} is not a vc_tts_template checkout (no {PEER_MODEL_CONF})")
    site = Path(args.peer_site).resolve() if args.peer_site else peer_root.parent / "site"
    new = str(Path(__file__).resolve().parents[1])
    ours = {
        "new": Contender("new", new),
        "new_bf16": Contender("new, bf16", new, precision="bf16"),
    }
    contenders = [
        PeerContender(f"{PEER_NAME} FastSpeech2-VC", str(peer_root), site=str(site)),
        *(ours[k] for k in args.contenders.split(",")),
    ]
    specs = [
        {
            "root": args.root,
            "tag": args.tag,
            "preset": args.preset,
            "predictor": "conv",
            "pos_enc": "rel",
            "batch_size": int(b),
            "threads": args.threads,
            "steps": args.steps,
            "warmup": args.warmup,
        }
        for b in args.batch_sizes.split(",")
    ]
    load_before = load_average()
    with peer_runs():
        rows = compare(contenders, specs, args.reps)
    load_after = load_average()
    peer_run = rows[0]["runs"][0]
    peer_params, ours_params = peer_run["params"], peer_run["ours_params"]
    table = markdown(rows, peer_params, ours_params)
    out = (
        Path(args.out)
        if args.out
        else Path(new) / "bench" / "results" / f"{dt.date.today()}-{host_name()}-peer.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": machine_info(),
        "load_before": load_before,
        "load_after": load_after,
        "args": vars(args),
        "peer": {
            "root": str(peer_root),
            "target": peer_run["peer_target"],
            "config": peer_run["peer_config"],
            "optimizer": peer_run["optimizer"],
            "params": peer_params,
        },
        "ours": {"preset": args.preset, "predictor": "conv", "params": ours_params},
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
