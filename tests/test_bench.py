"""The speed benchmark's pieces give well-formed records on the tiny corpus (no timing asserts)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, TINY_TAG, copy_root, tiny_hifigan, write_conf

BENCH = REPO / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import batching  # noqa: E402
import conversion  # noqa: E402
import memory  # noqa: E402
import preproc  # noqa: E402
import report  # noqa: E402
import timing  # noqa: E402
import training  # noqa: E402
import vocoder  # noqa: E402

from vc_toolkit.config import load_spk  # noqa: E402
from vc_toolkit.data.dump import DumpSplit  # noqa: E402
from vc_toolkit.paths import Layout  # noqa: E402
from vc_toolkit.vocoder import GriffinLim  # noqa: E402


@pytest.fixture(scope="module")
def tagged_root(tiny_features_root, tmp_path_factory) -> Path:
    """A private copy of the tiny recipe root with the tiny tag written."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("bench"))
    write_conf(root, "tag", "tiny", TINY_TAG)
    return root


def test_summary_ratios_and_interleaving_hand_computed():
    s = timing.summarize([4.0, 1.0, 3.0, 2.0])
    # numpy's linear percentiles of 1, 2, 3, 4: q1 at position 0.75, q3 at 2.25
    assert (s["median"], s["min"], s["max"], s["q1"], s["q3"], s["n"]) == (
        2.5,
        1.0,
        4.0,
        1.75,
        3.25,
        4,
    )
    assert timing.ratios([3.0, 1.0], [1.5, 4.0]) == [2.0, 0.25]
    order = []
    runs = timing.interleave(
        {"a": lambda: order.append("a") or 1, "b": lambda: order.append("b")}, 3
    )
    assert order == ["a", "b"] * 3 and runs["a"] == [1, 1, 1]
    with pytest.raises(ValueError, match="counts must match"):
        timing.ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        timing.summarize([])


def _padding(batches, *streams) -> float:
    real = sum(int(s[b].sum()) for b in batches for s in streams)
    padded = sum(len(b) * int(s[b].max()) for b in batches for s in streams)
    return 1 - real / padded


def test_batching_record_on_tiny_dump(tiny_features_root):
    train = DumpSplit(tiny_features_root / "dump/tiny/train")
    tgt, src = train.tgt_frames, train.src_frames
    rec = batching.bench_batching(tgt, src, batch_size=2, group_sizes=(1, 3), epochs=3, seed=5)
    assert set(rec["schemes"]) == {"random", "group_1", "group_3"}
    rand = rec["schemes"]["random"]
    assert rand["batches_per_epoch"]["values"] == [math.ceil(len(tgt) / 2)] * 3
    expected = [_padding(batching.random_batches(len(tgt), 2, 5, e), tgt, src) for e in range(3)]
    np.testing.assert_allclose(rand["padding_fraction"]["values"], expected)
    first = batching.random_batches(len(tgt), 2, 5, 0)
    assert rand["padding_tgt"]["values"][0] == pytest.approx(_padding(first, tgt))
    # group_size 1 sorts inside a batch only: the same membership pads exactly as much
    assert rec["schemes"]["group_1"]["padding_fraction"] == rand["padding_fraction"]
    for scheme in rec["schemes"].values():
        assert all(0 <= v < 1 for v in scheme["padding_fraction"]["values"])


def test_stage1_run_writes_every_pair_and_times_its_steps(tiny_features_root, tmp_path):
    layout = Layout(tiny_features_root)
    pairs = preproc.select_pairs(layout, "tiny", 2)
    assert len(pairs) == 2 and pairs[0][0] < pairs[1][0]
    rec = preproc.run_ours(pairs, load_spk("tiny", tiny_features_root), 1, tmp_path)
    assert rec["written"] == 2
    assert set(rec["steps"]) == set(preproc.STEPS)
    assert sum(rec["steps"].values()) <= rec["wall"]
    assert not list(tmp_path.iterdir())  # the temporary output is removed
    seconds = sum(len(sf.read(p)[0]) / sf.info(p).samplerate for _, s, t in pairs for p in (s, t))
    assert preproc.audio_seconds(pairs) == pytest.approx(seconds)


def test_preprocess_figure_compares_both_pipelines(tiny_features_root):
    pytest.importorskip("fastdtw", reason="benchmark extra: ./bench/run.sh installs it")
    rec = preproc.bench_preprocess(Layout(tiny_features_root), "tiny", 2, 1, njs=(1, 2))
    names = {"ours_nj1", "straightforward", "straightforward_tuned", "ours_nj2", "ours_nj1_dio1"}
    assert set(rec["pipelines"]) == names
    assert rec["pipelines"]["ours_nj1_dio1"]["files_written"] == 2
    ours = rec["pipelines"]["ours_nj1"]
    assert ours["files_written"] == 2
    for name, key in (("straightforward", "speedup"), ("straightforward_tuned", "speedup_tuned")):
        plain = rec["pipelines"][name]
        assert plain["files_written"] == 2 * 11
        assert sum(s["median"] for s in plain["steps"].values()) <= plain["wall_seconds"]["median"]
        ratio = plain["wall_seconds"]["median"] / ours["wall_seconds"]["median"]
        assert rec[key]["total"]["median"] == pytest.approx(ratio)
    two = rec["pipelines"]["ours_nj2"]
    assert two["realtime_per_core"]["median"] == pytest.approx(two["realtime"]["median"] / 2)


def test_training_variants_and_record(tagged_root):
    layout = Layout(tagged_root)
    gmm = training.variant_config(layout, "tiny", "gmm", threads=1)
    assert (gmm.model.pitch_predictor.type, gmm.model.prosody.type) == ("conv", "gmm")
    assert gmm.model.hidden == TINY_TAG["model"]["hidden"] and gmm.train.num_threads == 1
    demo = training.variant_config(layout, "tiny", "ar", preset="demo")
    assert (demo.model.hidden, demo.model.pitch_predictor.type) == (128, "ar")
    with pytest.raises(ValueError, match="unknown predictor"):
        training.variant_config(layout, "tiny", "lstm")
    rec = training.bench_training(layout, "tiny", gmm, steps=2, warmup=1)
    assert rec["steps"] == 2 and rec["frames_per_second"]["n"] == 2
    assert all(0 <= v <= 1 for v in rec["loader_share"]["values"])
    total = DumpSplit(tagged_root / "dump/tiny/train").tgt_frames.sum()
    for fps, epoch in zip(rec["frames_per_second"]["values"], rec["epoch_seconds"]["values"]):
        assert fps * epoch == pytest.approx(total)
    assert not (tagged_root / "exp").exists()  # nothing written under the tag


def test_conversion_records_on_tiny(tagged_root, tmp_path):
    layout = Layout(tagged_root)
    spk = load_spk("tiny", tagged_root)
    dev = DumpSplit(tagged_root / "dump/tiny/dev")
    items = conversion.pick_items(dev, 2)
    models = {
        p: conversion.acoustic_model(training.variant_config(layout, "tiny", p), spk)
        for p in ("conv", "ar")
    }
    rec = conversion.bench_acoustic(models, items, spk, reps=2)
    # one reduced frame per reduced source frame: the output is as long as the source
    frames = sum(len(it["src_mel"]) for it in items)
    assert rec["audio_seconds"] == pytest.approx(frames * 160 / 16000)
    assert "ar_loop_rtf" not in rec["conv"] and 0 < rec["ar"]["ar_loop_share"]["median"] <= 1
    assert rec["ar_over_conv"]["n"] == 2
    assert "generate" not in vars(models["ar"].pitch_predictor)  # timing wrapper removed

    with pytest.raises(ValueError, match="do not fit the spk"):
        conversion.random_hifigan(spk, tmp_path)  # V1 has hop 256, the tiny spk 160
    vocs = {
        "griffin_lim": GriffinLim(16000, spk.feats.mel, n_iter=2),
        "hifigan": conversion.random_hifigan(spk, tmp_path, tiny_hifigan()),
    }
    mels = [it["tgt_mel"] for it in items]
    voc = conversion.bench_vocoders(vocs, mels, reps=1)
    assert voc["audio_seconds"] == pytest.approx(sum(len(m) for m in mels) * 160 / 16000)
    assert voc["hifigan"]["rtf"]["median"] > 0 and voc["griffin_lim"]["rtf"]["n"] == 1


def test_arnar_conversion_cost_is_measured_beside_conv_and_ar(tagged_root):
    layout = Layout(tagged_root)
    spk = load_spk("tiny", tagged_root)
    items = conversion.pick_items(DumpSplit(tagged_root / "dump/tiny/dev"), 2)
    models = {
        p: conversion.acoustic_model(training.variant_config(layout, "tiny", p), spk)
        for p in ("conv", "ar", "arnar")
    }
    rec = conversion.bench_acoustic(models, items, spk, reps=1)
    assert rec["arnar_over_conv"]["n"] == rec["ar_over_conv"]["n"] == 1
    assert 0 < rec["arnar"]["ar_loop_share"]["median"] <= 1
    table = "\n".join(report._conversion({"threads": 2, "acoustic": {"demo": {"batch_2": rec}},
                                          "vocoder": {}}))  # fmt: skip
    rows = {line.split("|")[2].strip(): line for line in table.splitlines() if line.count("|") > 5}
    assert {"conv", "ar", "arnar"} <= set(rows)
    assert "×" not in rows["conv"] and "×" in rows["arnar"] and "×" in rows["ar"]


def test_pick_items_takes_the_middle_of_the_length_order(tiny_features_root):
    dev = DumpSplit(tiny_features_root / "dump/tiny/train")
    picked = [it["utt_id"] for it in conversion.pick_items(dev, 3)]
    order = [dev.utt_ids[i] for i in np.argsort(dev.src_frames, kind="stable")]
    start = order.index(picked[0])
    assert picked == order[start : start + 3] and order[len(order) // 2] in picked


def test_stage1_worker_memory_in_a_fresh_process(tiny_features_root):
    rec = memory.measure(
        "stage1", "--spk", "tiny", "--pairs", "2", "--nj", "2", root=tiny_features_root
    )
    assert rec["files_written"] == 2 and rec["nj"] == 2
    assert 0 < rec["worker_peak_mb"] < 24 * 1024 and rec["parent_at_fork_mb"] > 0


def _summ(*values):
    return timing.summarize(values)


def test_targets_are_judged_on_the_worst_covered_case():
    res = {
        "preprocess": {
            "pipelines": {
                "ours_nj1": {"realtime_per_core": _summ(70.0)},
                "straightforward": {"realtime_per_core": _summ(10.0)},
                "ours_nj2": {"realtime_per_core": _summ(45.0)},
                "ours_nj1_dio1": {"realtime_per_core": _summ(20.0)},  # not the default: no target
            },
            "speedup": {"total": _summ(2.5)},
        },
        "batching": {
            "schemes": {
                "group_4": {"padding_fraction": _summ(0.20)},
                "group_8": {"padding_fraction": _summ(0.04)},
                "group_16": {"padding_fraction": _summ(0.03)},
            }
        },
        "conversion": {
            "acoustic": {
                "base": {
                    "batch_1": {"conv": {"rtf": _summ(0.04)}, "ar_over_conv": _summ(1.2)},
                    "batch_8": {"conv": {"rtf": _summ(0.06)}, "ar_over_conv": _summ(1.1)},
                }
            }
        },
    }
    got = {t["target"]: t for t in report.targets(res)}
    per_core = got["stage 1 (dio) ≥ 50× real time per core"]
    assert per_core["value"] == 45.0 and not per_core["met"]  # nj=2 is the worst, not nj=1
    assert got["stage 1 ≥ 2× the straightforward script"]["met"]
    assert got["padding ≤ 5% with group_size ≥ 8"]["met"]  # group 4 is not covered
    ar = got["AR pitch adds ≤ 30% inference time over conv (base preset)"]
    assert ar["value"] == 1.2 and ar["met"]
    rtf = got["base conv acoustic model RTF < 0.05 (2 threads)"]
    assert rtf["value"] == 0.06 and not rtf["met"] and "batch 8" in rtf["measured"]
    assert len(got) == 5


def test_markdown_has_a_section_per_figure_and_the_targets(tiny_features_root):
    train = DumpSplit(tiny_features_root / "dump/tiny/train")
    res = {
        "mode": "quick",
        "machine": {
            "date": "2026-01-02T03:04:05",
            "host": "h",
            "cpu_model": "cpu",
            "cpu_count": 2,
            "usable_cores": 2,
            "torch": "t",
            "torch_threads": 2,
            "torch_interop_threads": 2,
            "numpy": "n",
            "python": "p",
            "env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": None},
        },
        "load_before": [0.1, 0.2, 0.3],
        "load_after": [0.4, 0.5, 0.6],
        "wall_seconds": 12.0,
        "batching": batching.bench_batching(train.tgt_frames, train.src_frames, 2, (8,), 2),
    }
    res["targets"] = report.targets(res)
    text = report.markdown(res)
    assert "## 2. Batching" in text and "## Targets" in text and "OMP_NUM_THREADS=1" in text
    assert "MKL" not in text and "| group 8 |" in text
    status = "met" if res["targets"][0]["met"] else "**missed**"
    assert text.rstrip().endswith(f"{status} |")


@pytest.mark.parametrize("module", [timing, batching, report], ids=lambda m: m.__name__)
def test_bench_doctests_pass(module):
    import doctest

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_vocoder_training_figure_on_tiny(tagged_root):
    rec = vocoder.bench_vocoder_training(Layout(tagged_root), "tiny", "tiny", steps=2, warmup=0)
    assert rec["step_seconds"]["n"] == 2 and rec["segment_samples"] == 32 * 160
    assert rec["generator_params"] > 0 and rec["steps_in_15_min"] > 0
    assert not (tagged_root / "exp").exists()  # nothing written under exp/
    table = "\n".join(report._vocoder({"training": {"tiny": rec}, "memory": {}}))
    assert "| tiny" in table and "tiny / tiny" in table
