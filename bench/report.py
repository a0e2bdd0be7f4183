"""Targets and the Markdown report of a benchmark record (the dict saved as JSON).

Every figure is printed as ``median [min–max]`` over its repetitions. A target
is judged on medians and on the *worst* of the cases it covers (e.g. both batch
sizes), so a favourable case cannot hide an unfavourable one.
"""

from __future__ import annotations

PER_CORE = 50.0
"""Stage 1 (dio): audio seconds (source + target) per wall second and core, at least."""
VS_STRAIGHTFORWARD = 2.0
"""Stage 1 throughput over the straightforward script's, at least."""
MAX_PADDING = 0.05
"""Padding fraction with ``group_size >= 8``, at most."""
MAX_AR_OVER_CONV = 1.30
"""Acoustic-model inference time with the AR pitch predictor over the conv one, at most."""
MAX_RTF_BASE = 0.05
"""Real-time factor of the base-preset acoustic model (conv pitch, 2 threads), below."""


def fmt(s: dict | None, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    """``median [min–max]`` of a :func:`timing.summarize` record, times ``scale``.

    Example:
        >>> fmt({"median": 0.5, "min": 0.25, "max": 0.75}, scale=100, digits=1, unit="%")
        '50.0% [25.0–75.0]'
    """
    if s is None:
        return "–"
    m, lo, hi = (s[k] * scale for k in ("median", "min", "max"))
    return f"{m:.{digits}f}{unit} [{lo:.{digits}f}–{hi:.{digits}f}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _target(name: str, value: float, text: str, met: bool) -> dict:
    return {"target": name, "value": value, "measured": text, "met": bool(met)}


def _batch(key: str) -> str:
    return key.replace("_", " ")


def targets(res: dict) -> list[dict]:
    """Each target of the figures measured in ``res``: value (worst covered case) and ``met``."""
    out = []
    pre = res.get("preprocess")
    if pre:
        ours = [(k, v["realtime_per_core"]["median"]) for k, v in pre["pipelines"].items()]
        default = [x for x in ours if x[0].startswith("ours") and not x[0].endswith("_dio1")]
        name, worst = min(default, key=lambda x: x[1])
        text = f"{worst:.1f}× (worst: {name.replace('ours_', '')})"
        out.append(
            _target("stage 1 (dio) ≥ 50× real time per core", worst, text, worst >= PER_CORE)
        )
        ratio = pre["speedup"]["total"]["median"]
        name = "stage 1 ≥ 2× the straightforward script"
        out.append(_target(name, ratio, f"{ratio:.2f}×", ratio >= VS_STRAIGHTFORWARD))
    bat = res.get("batching")
    big = [
        (k, v["padding_fraction"]["median"])
        for k, v in (bat or {}).get("schemes", {}).items()
        if k.startswith("group_") and int(k[6:]) >= 8
    ]
    if big:
        k, v = max(big, key=lambda x: x[1])
        text = f"{100 * v:.1f}% (worst: {_batch(k)})"
        out.append(_target("padding ≤ 5% with group_size ≥ 8", v, text, v <= MAX_PADDING))
    conv = res.get("conversion")
    for preset, batches in (conv or {}).get("acoustic", {}).items():
        cases = [
            (b, r["ar_over_conv"]["median"]) for b, r in batches.items() if "ar_over_conv" in r
        ]
        if cases:
            b, v = max(cases, key=lambda x: x[1])
            name = f"AR pitch adds ≤ 30% inference time over conv ({preset} preset)"
            text = f"{100 * (v - 1):+.0f}% (worst: {_batch(b)})"
            out.append(_target(name, v, text, v <= MAX_AR_OVER_CONV))
        if preset == "base":
            b, v = max(
                ((b, r["conv"]["rtf"]["median"]) for b, r in batches.items()), key=lambda x: x[1]
            )
            name = "base conv acoustic model RTF < 0.05 (2 threads)"
            text = f"RTF {v:.4f} ({1 / v:.0f}× real time; worst: {_batch(b)})"
            out.append(_target(name, v, text, v < MAX_RTF_BASE))
    return out


def _machine(res: dict) -> list[str]:
    m = res["machine"]
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items() if v is not None) or "none set"
    return [
        f"# vc_toolkit benchmark — {m['date']} on {m['host']} ({res['mode']} run)",
        "",
        f"* CPU: {m['cpu_model']}, {m['cpu_count']} cores ({m['usable_cores']} usable)",
        f"* torch {m['torch']} ({m['torch_threads']} threads, {m['torch_interop_threads']} "
        f"interop threads at start), numpy {m['numpy']}, Python {m['python']}",
        f"* thread environment: {env}",
        f"* load average (1/5/15 min) before: {res['load_before']}, after: {res['load_after']}",
        f"* wall time of the benchmark: {res['wall_seconds']:.0f} s",
        "* figures: median [min–max] over repetitions; ratios formed per repetition of an "
        "interleaved run",
    ]


def _preprocess(pre: dict) -> list[str]:
    lines = [
        "",
        f"## 1. Stage-1 preprocessing ({pre['pairs']} pairs, {pre['audio_seconds']:.0f} s of "
        f"audio, {pre['reps']} repetitions)",
        "",
    ]
    labels = {
        "straightforward": "straightforward script",
        "straightforward_tuned": "straightforward script, compiled DTW",
        "ours_nj1_dio1": "stage 1, nj=1, dio_speed 1 (pyworld default)",
    }
    rows = []
    for name, p in pre["pipelines"].items():
        label = labels.get(name, f"stage 1, nj={p['nj']}")
        rows.append(
            [
                label,
                fmt(p["wall_seconds"]),
                fmt(p["realtime"], digits=1, unit="×"),
                fmt(p["realtime_per_core"], digits=1, unit="×"),
            ]
        )
    lines += _table(["pipeline", "wall s", "real time", "real time per core"], rows)
    sp = pre["speedup"]
    lines += [
        "",
        f"Stage 1 (nj=1) / straightforward, throughput ratio: **{fmt(sp['total'], unit='×')}**",
    ]
    if "speedup_tuned" in pre:
        tuned = fmt(pre["speedup_tuned"]["total"], unit="×")
        lines += ["", f"Stage 1 (nj=1) / straightforward with compiled DTW: {tuned}"]
    lines.append("")
    ours, plain = pre["pipelines"]["ours_nj1"], pre["pipelines"]["straightforward"]
    tot_o = sum(s["median"] for s in ours["steps"].values()) or 1.0
    tot_p = sum(s["median"] for s in plain["steps"].values()) or 1.0
    rows = []
    for step in ours["steps"]:
        o, p = ours["steps"][step], plain["steps"][step]
        rows.append(
            [
                step,
                f"{o['median']:.3f}",
                f"{100 * o['median'] / tot_o:.0f}%",
                f"{p['median']:.3f}",
                f"{100 * p['median'] / tot_p:.0f}%",
                fmt(sp["steps"].get(step), unit="×"),
            ]
        )
    header = ["step", "stage 1 s", "share", "straightforward s", "share", "speed-up"]
    return lines + _table(header, rows)


def _batching(bat: dict) -> list[str]:
    lines = [
        "",
        f"## 2. Batching ({bat['utterances']} train utterances, batch size {bat['batch_size']}, "
        f"{bat['epochs']} epochs)",
        "",
    ]
    rows = [
        [
            k.replace("_", " "),
            fmt(v["padding_fraction"], 100, 1, "%"),
            fmt(v["padding_tgt"], 100, 1, "%"),
            fmt(v["padding_src"], 100, 1, "%"),
            fmt(v["batches_per_epoch"], digits=0),
        ]
        for k, v in bat["schemes"].items()
    ]
    header = ["batching", "padding (src + tgt)", "target only", "source only", "batches / epoch"]
    return lines + _table(header, rows)


def _training(tr: dict) -> list[str]:
    lines = ["", "## 3. Training (real optimizer steps; warm-up steps not counted)", ""]
    rows = []
    for key, r in tr.items():
        preset, pred = key.split("/")
        rows.append(
            [
                preset,
                pred,
                f"{r['params'] / 1e6:.1f} M",
                str(r["steps"]),
                fmt(r["frames_per_second"], digits=0),
                fmt(r["step_seconds"]),
                fmt(r["epoch_seconds"], digits=1),
                fmt(r["loader_share"], 100, 1, "%"),
            ]
        )
    header = [
        "preset",
        "predictor",
        "params",
        "steps",
        "target frames/s",
        "s/step",
        "s/epoch (extrap.)",
        "data-loader share",
    ]
    return lines + _table(header, rows)


def _conversion(conv: dict) -> list[str]:
    lines = ["", f"## 4. Conversion (real-time factor, {conv['threads']} torch threads)", ""]
    rows = []
    for preset, batches in conv["acoustic"].items():
        for b, r in batches.items():
            for name, rec in r.items():
                if not (isinstance(rec, dict) and "rtf" in rec):
                    continue
                rows.append(
                    [
                        preset,
                        name,
                        b[6:],
                        fmt(rec["rtf"], digits=4),
                        fmt(rec.get("ar_loop_rtf"), digits=4),
                        fmt(rec.get("ar_loop_share"), 100, 0, "%"),
                        fmt(r.get(f"{name}_over_conv"), unit="×") if name != "conv" else "",
                    ]
                )
    header = [
        "preset",
        "model",
        "batch",
        "acoustic RTF",
        "AR loop RTF",
        "AR loop share",
        "time / conv",
    ]
    lines += _table(header, rows)
    rows = []
    for b, r in conv["vocoder"].items():
        for name, rec in r.items():
            if isinstance(rec, dict):
                rows.append([name, b[6:], f"{r['audio_seconds']:.1f}", fmt(rec["rtf"], digits=3)])
    return lines + [""] + _table(["vocoder", "batch", "audio s", "RTF"], rows)


def _memory(mem: dict) -> list[str]:
    lines = ["", "## 5. Peak memory (RSS)", ""]
    rows = []
    if "stage1" in mem:
        s = mem["stage1"]
        rows.append(
            [
                f"stage-1 worker (nj={s['nj']}, {s['pairs']} pairs)",
                f"{s['worker_peak_mb']:.0f} MiB",
                f"parent at fork {s['parent_at_fork_mb']:.0f} MiB (shared pages count in both)",
            ]
        )
    if "train" in mem:
        t = mem["train"]
        rows.append(
            [
                f"training, {t['preset']} preset, {t['predictor']}, batch {t['batch_size']}",
                f"{t['peak_mb']:.0f} MiB",
                f"{t['steps']} steps, {t['params'] / 1e6:.1f} M params",
            ]
        )
    return lines + _table(["process", "peak RSS", "note"], rows)


def _vocoder(voc: dict) -> list[str]:
    lines = ["", "## 6. Vocoder training (HiFi-GAN, 2 torch threads)", ""]
    rows = []
    for size, r in voc["training"].items():
        mem = voc.get("memory", {}).get(size, {})
        rows.append(
            [
                size,
                f"{r['generator']} / {r['discriminator']}",
                f"{r['generator_params'] / 1e6:.2f} M / {r['discriminator_params'] / 1e6:.2f} M",
                f"{r['batch_size']} x {r['segment_samples']}",
                fmt(r["step_seconds"], digits=2),
                fmt(r["samples_per_second"], digits=0),
                str(r["steps_in_15_min"]),
                f"{mem['peak_mb']:.0f} MiB" if mem else "-",
            ]
        )
    header = [
        "size",
        "generator / discriminators",
        "params",
        "batch x samples",
        "s/step",
        "samples/s",
        "steps in 15 min",
        "peak RSS",
    ]
    return lines + _table(header, rows)


def markdown(res: dict) -> str:
    """The whole report: machine, one section per figure, then the targets."""
    lines = _machine(res)
    if res.get("preprocess"):
        lines += _preprocess(res["preprocess"])
    if res.get("batching"):
        lines += _batching(res["batching"])
    if res.get("training"):
        lines += _training(res["training"])
    if res.get("conversion"):
        lines += _conversion(res["conversion"])
    if res.get("memory"):
        lines += _memory(res["memory"])
    if res.get("vocoder"):
        lines += _vocoder(res["vocoder"])
    if res.get("tts"):
        from tts import markdown as tts_markdown

        lines += tts_markdown(res["tts"])
    rows = [
        [t["target"], t["measured"], "met" if t["met"] else "**missed**"] for t in res["targets"]
    ]
    lines += ["", "## Targets", ""] + _table(["target", "measured", "status"], rows)
    for note in res.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"
