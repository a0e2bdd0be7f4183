"""Figure 5: peak resident memory of a stage-1 worker and of training, each in its own process.

Each measurement runs this file as a fresh Python process (so nothing the
benchmark loaded beforehand is counted) and reads the peak RSS the kernel
recorded: ``VmHWM`` of ``/proc/self/status`` for the process itself (``ru_maxrss``
would also count the large benchmark process this one was started from, as Linux
keeps it across ``exec``), ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` for pool workers:

* ``stage1``: imports what ``vc-preprocess`` imports, runs stage 1's worker pool
  (:func:`vc_toolkit.preprocess.stage._extract_all`) over some pairs into a
  temporary folder, and reports the largest worker (``RUSAGE_CHILDREN``, the
  pool having been joined) and the parent the workers were forked from (a
  forked worker's RSS includes the pages it shares with that parent).
* ``train``: sets up a tag variant as stage 2 does and runs training steps
  (:func:`training.bench_training`), then reports its own peak.

Usage (the benchmark calls it through :func:`measure`)::

    python bench/memory.py stage1 --root . --spk demo --pairs 8 --nj 2
    python bench/memory.py train --root . --tag demo_conv --preset base --steps 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _mb(kilobytes: int) -> float:
    return kilobytes / 1024.0  # Linux reports ru_maxrss and /proc sizes in KiB


def proc_status_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of this process image, MiB.

    Falls back to ``ru_maxrss`` where ``/proc`` is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return _mb(int(line.split()[1]))
    except OSError:
        pass
    return _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def stage1_peak(root: Path, spk: str, pairs: int, nj: int) -> dict:
    """Peak RSS (MiB) of stage-1 workers and of their parent, in this process."""
    from preproc import run_ours, select_pairs

    from vc_toolkit.config import load_spk
    from vc_toolkit.paths import Layout

    layout = Layout(root)
    cfg = load_spk(spk, root)
    chosen = select_pairs(layout, spk, pairs)
    parent_before = proc_status_mb("VmRSS")
    with tempfile.TemporaryDirectory(prefix="vc-bench-mem-") as tmp:
        run = run_ours(chosen, cfg, nj, Path(tmp))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    own = proc_status_mb("VmHWM")
    return {
        "pairs": len(chosen),
        "nj": nj,
        "files_written": run["written"],
        "worker_peak_mb": _mb(children) if nj > 1 else own,
        "parent_at_fork_mb": parent_before,
        "parent_peak_mb": own,
    }


def train_peak(root: Path, tag: str, preset: str | None, predictor: str, steps: int) -> dict:
    """Peak RSS (MiB) of this process after ``steps`` training steps of a tag variant."""
    from training import bench_training, variant_config

    from vc_toolkit.paths import Layout

    layout = Layout(root)
    cfg = variant_config(layout, tag, predictor, preset)
    rec = bench_training(layout, f"{tag}-mem", cfg, steps, warmup=0)
    return {
        "tag": tag,
        "preset": preset,
        "predictor": predictor,
        "steps": steps,
        "batch_size": rec["batch_size"],
        "params": rec["params"],
        "peak_mb": proc_status_mb("VmHWM"),
    }


def voc_peak(root: Path, spk: str, size: str, steps: int) -> dict:
    """Peak RSS (MiB) of this process after ``steps`` HiFi-GAN training steps of ``size``."""
    from vocoder import bench_vocoder_training

    from vc_toolkit.paths import Layout

    rec = bench_vocoder_training(Layout(root), spk, size, steps, warmup=0)
    return {"size": size, "steps": steps, "peak_mb": proc_status_mb("VmHWM"), **rec}


def measure(kind: str, *args: str, root: Path, timeout: float = 600) -> dict:
    """Run ``memory.py <kind> --root <root> <args>`` in a fresh process; its JSON record.

    Raises:
        RuntimeError: the process failed (its last error lines are in the message).
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), kind, "--root", str(root), *args]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        tail = " | ".join(out.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"memory measurement '{kind}' failed: {tail}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Peak RSS of stage 1 workers or of training.")
    sub = parser.add_subparsers(dest="kind", required=True)
    s1 = sub.add_parser("stage1", help="stage-1 worker pool")
    s1.add_argument("--root", type=Path, required=True)
    s1.add_argument("--spk", required=True)
    s1.add_argument("--pairs", type=int, default=8)
    s1.add_argument("--nj", type=int, default=2)
    tr = sub.add_parser("train", help="training steps of a tag variant")
    tr.add_argument("--root", type=Path, required=True)
    tr.add_argument("--tag", required=True)
    tr.add_argument("--preset", default=None)
    tr.add_argument("--predictor", default="conv")
    tr.add_argument("--steps", type=int, default=2)
    vo = sub.add_parser("voc", help="HiFi-GAN training steps")
    vo.add_argument("--root", type=Path, required=True)
    vo.add_argument("--spk", required=True)
    vo.add_argument("--size", default="tiny")
    vo.add_argument("--steps", type=int, default=1)
    a = parser.parse_args(argv)
    if a.kind == "stage1":
        rec = stage1_peak(a.root.resolve(), a.spk, a.pairs, a.nj)
    elif a.kind == "voc":
        rec = voc_peak(a.root.resolve(), a.spk, a.size, a.steps)
    else:
        rec = train_peak(a.root.resolve(), a.tag, a.preset, a.predictor, a.steps)
    print(json.dumps(rec))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
