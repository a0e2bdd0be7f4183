"""Stages 3 and 4 of a text tag, and vc-align with its alignment report, on a tiny text dump."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from synth_fixtures import TAG, trained_tts_root

from vc_toolkit.bin import align as align_cli
from vc_toolkit.data.text_dump import TextDumpSplit
from vc_toolkit.eval import stage as evaluate
from vc_toolkit.eval.report import leaderboard
from vc_toolkit.eval.synthesis import duration_errors
from vc_toolkit.infer import stage as convert
from vc_toolkit.paths import Layout
from vc_toolkit.text.phone_times import PhoneTime, boundary_errors, token_starts

SPK = "tinytts"


@pytest.fixture(scope="module")
def trained(tiny_features_root, tmp_path_factory):
    return trained_tts_root(tiny_features_root, tmp_path_factory.mktemp("stages"), epochs=3)


def _tsv(path):
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


def test_stage3_synthesises_the_dev_and_eval_sentences(trained):
    layout = Layout(trained)
    record = convert.run(layout, TAG, "best", device="cpu", progress=False)
    root = layout.convert_dir(TAG, "best")
    r, hop = 2, 160  # the tiny spk
    for split in ("dev", "eval"):
        ds = TextDumpSplit(layout.dump(SPK) / split)
        assert sorted(p.stem for p in (root / split).glob("*.wav")) == sorted(ds.utt_ids)
        for i, utt in enumerate(ds.utt_ids):
            npz = np.load(root / split / f"{utt}.npz")
            assert np.array_equal(npz["tokens"], ds[i]["tokens"])  # the frozen sentence
            wav, _ = sf.read(root / split / f"{utt}.wav")
            assert len(wav) == r * int(npz["duration"].sum()) * hop and np.isfinite(wav).all()
    assert record["converted"] == 4 and json.loads((root / "rtf.json").read_text())["utterances"]
    again = convert.run(layout, TAG, "best", device="cpu", progress=False)
    assert again["converted"] == 0 and again["skipped"] == 4


def test_stage4_scores_against_recordings_with_untrained_and_vocoder_floors(trained):
    layout = Layout(trained)
    convert.run(layout, TAG, "best", device="cpu", progress=False)
    summary = evaluate.run(layout, TAG, "best", nj=1, progress=False)
    overall = summary["overall"]
    assert overall["counts"]["scored"] == 4
    for side in ("converted", "untrained", "vocoder"):
        assert math.isfinite(overall[side]["mcd"]["mean"]), side
        assert math.isfinite(overall[side]["f0_rmse_hz"]["mean"]), side
    assert "mcd" not in overall["source"] and summary["floors"]["source"].startswith("none")
    assert overall["vocoder"]["mcd"]["mean"] < overall["converted"]["mcd"]["mean"]
    assert (layout.convert_dir(TAG, "untrained") / "dev").is_dir()
    assert "aligner of checkpoint best" in summary["duration_reference"]
    # the duration error is the predicted durations against the aligner's (as vc-align writes)
    assert align_cli.main(["--root", str(trained), "--tag", TAG, "--splits", "dev,eval"]) == 0
    rows = {row["utt_id"]: row for row in _tsv(layout.eval_dir(TAG, "best") / "dev/per_utt.tsv")}
    ds = TextDumpSplit(layout.dump(SPK) / "dev", durations=TAG)
    for i, utt in enumerate(ds.utt_ids):
        pred = np.load(layout.convert_dir(TAG, "best") / f"dev/{utt}.npz")["duration"]
        want = duration_errors(pred, ds[i]["duration"], r=2)
        assert float(rows[utt]["conv_dur_mae_frames"]) == pytest.approx(want["dur_mae_frames"])
        assert float(rows[utt]["conv_dur_mae_log"]) == pytest.approx(want["dur_mae_log"])
        assert math.isfinite(float(rows[utt]["untr_dur_mae_frames"]))
        assert rows[utt]["untr_mcd"] != "nan" and "floor_mcd" not in rows[utt]
    (rec,) = leaderboard(layout, [TAG])
    assert rec.eval_mean("mcd", "untrained") == pytest.approx(
        summary["splits"]["eval"]["untrained"]["mcd"]["mean"]
    )
    assert rec.eval_mean("dur_mae_frames") is not None and rec.eval_mean("mcd", "source") is None


def test_vc_align_durations_sum_to_the_frames_and_round_trip(trained, capsys):
    layout = Layout(trained)
    assert align_cli.main(["--root", str(trained), "--tag", TAG, "--images", "1"]) == 0
    printed = capsys.readouterr().out
    for split in ("train", "dev", "eval"):
        ds = TextDumpSplit(layout.dump(SPK) / split, durations=TAG)
        for i in range(len(ds)):
            item = ds[i]
            assert len(item["duration"]) == len(item["tokens"])
            assert int(item["duration"].sum()) == len(item["tgt_mel"]) // 2
    report = json.loads((layout.exp(TAG) / "align/best/report.json").read_text())
    overall = report["overall"]
    assert overall["boundaries"] > 50 and math.isfinite(overall["mean_ms"])
    assert sum(s["compared"] for s in report["splits"].values()) == 10  # every sentence
    assert f"mean {overall['mean_ms']:.1f} ms" in printed
    out = layout.exp(TAG) / "align/best"
    assert (out / "boundary_errors.png").stat().st_size > 0
    assert report["images"] == [f"images/{TextDumpSplit(layout.dump(SPK) / 'dev').utt_ids[0]}.png"]
    assert len(_tsv(out / "boundaries.tsv")) == 10


def test_align_report_needs_the_durations_first(trained, capsys):
    from vc_toolkit.errors import UserError
    from vc_toolkit.eval.alignment import alignment_report

    with pytest.raises(UserError, match="run vc-align --tag t"):
        alignment_report(Layout(trained), TAG, splits=("nosuch",))


def test_boundary_error_of_a_hand_example():
    # tokens: ˈ h ə , (stress mark, two phonemes, a pause); espeak starts h at 0.30 s, ə at 0.40 s
    rows = [
        PhoneTime(0.30, 0.40, "h", 0),
        PhoneTime(0.40, 0.55, "ˈə", 0),
        PhoneTime(0.55, 0.8, "_", -1),
    ]
    starts = token_starts(["ˈ", "h", "ə", ","], rows, pauses=",")
    assert np.isnan(starts[0]) and np.isnan(starts[3]) and starts[1:3].tolist() == [0.30, 0.40]
    # r = 2, hop 0.01 s: token k starts at frame edge 2 * sum(d[:k]) - 0.5; head 0.305 s
    d = np.array([0, 2, 3, 4])  # h at edge -0.5 -> 0.300 s; ə at edge 3.5 -> 0.340 s
    err = boundary_errors(
        d, starts, head_seconds=0.305, hop=10, sample_rate=1000, reduction_factor=2
    )
    assert np.round(err * 1000, 6).tolist() == [0.0, 60.0]
