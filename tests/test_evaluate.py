"""Stage 4 evaluation on a tiny trained tag, and the end-to-end recipe on the tiny corpus."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import pyworld
import soundfile as sf
from conftest import TINY_TAG, copy_root, write_conf

from vc_toolkit.bin import convert as convert_cli
from vc_toolkit.bin import evaluate as evaluate_cli
from vc_toolkit.bin import report as report_cli
from vc_toolkit.config import load_spk
from vc_toolkit.config.tag import Eval
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.errors import UserError
from vc_toolkit.eval import stage as ev
from vc_toolkit.eval.metrics import METRIC_KEYS
from vc_toolkit.eval.vocoder_floor import copy_synthesis, vocoder_floor_dir
from vc_toolkit.features import trim
from vc_toolkit.features.audio import load_audio
from vc_toolkit.features.extract import lf0_vuv, mel_energy
from vc_toolkit.features.frontend import load_speech, num_frames
from vc_toolkit.infer.stage import run as convert_tag
from vc_toolkit.io import read_scp
from vc_toolkit.paths import Layout
from vc_toolkit.train.stage import run as train_tag
from vc_toolkit.vocoder import build_vocoder


@pytest.fixture(scope="module")
def converted(tiny_features_root, tmp_path_factory):
    """Tag 't' trained 2 epochs and converted (checkpoint best)."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("evaluate"))
    write_conf(root, "tag", "t", TINY_TAG)
    train_tag("t", Layout(root), device="cpu")
    convert_tag(Layout(root), "t", "best", device="cpu", progress=False)
    return root


def fake_score(conv, tgt, sr, eval_cfg, frame_period_ms=5.0):
    """A cheap stand-in for score_pair whose values tell which audio it was given.

    mcd = seconds of the first waveform, f0_rmse_hz = its RMS, tgt_seconds = seconds of
    the reference; the real metrics are tested in test_eval_metrics and end to end below.
    """
    row = dict.fromkeys(METRIC_KEYS, 0.5)
    row.update(
        mcd=len(conv) / sr,
        f0_rmse_hz=float(np.sqrt(np.mean(np.square(conv, dtype=np.float64)))),
        tgt_seconds=len(tgt) / sr,
        voiced_frames=10,
        silent=False,
        unvoiced=bool(len(conv) % 2),
    )
    return row


@pytest.fixture(scope="module")
def evaluated(converted):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "score_pair", fake_score)
        return ev.run(Layout(converted), "t", "best", nj=1, progress=False)


def _tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _trimmed(path, spk):
    """The reference processing written out with the trimming functions themselves."""
    x = load_audio(path, spk.sample_rate)
    y, _, _ = trim.trim_silence(x, spk.sample_rate, spk.trim)
    return trim.zero_internal_silences(y, trim.internal_silences(y, spk.sample_rate, spk.trim))


def test_outputs_and_summary_keys(converted, evaluated):
    out = converted / "exp/t/eval/best"
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(json.dumps(evaluated, default=float))
    for split in ("dev", "eval"):
        rows = _tsv(out / split / "per_utt.tsv")
        listed = (converted / f"dump/tiny/{split}/manifest.tsv").read_text().splitlines()[1:]
        assert [r["utt_id"] for r in rows] == [line.split("\t")[0] for line in listed]
        assert all(r["status"] == "ok" for r in rows)
        assert {f"conv_{k}" for k in METRIC_KEYS} | {f"floor_{k}" for k in METRIC_KEYS} <= set(
            rows[0]
        )
        block = summary["splits"][split]
        assert block["counts"]["listed"] == block["counts"]["scored"] == len(rows) == 2
        assert block["counts"]["skipped"] == 0 and block["skipped"] == []
        for side in ("converted", "source"):
            assert set(block[side]["mcd"]) == {"mean", "std", "n", "ci95"}
            assert block[side]["mcd"]["n"] == 2
        mcds = [float(r["conv_mcd"]) for r in rows]
        assert block["converted"]["mcd"]["mean"] == pytest.approx(np.mean(mcds), rel=1e-6)
        assert block["converted"]["mcd"]["std"] == pytest.approx(np.std(mcds, ddof=1), rel=1e-5)
    assert summary["overall"]["counts"]["scored"] == 4
    assert summary["rtf"]["acoustic_rtf"] > 0 and summary["converted_with"]["checkpoint"] == "best"
    flagged = sum(
        int(r["conv_unvoiced"]) for s in ("dev", "eval") for r in _tsv(out / s / "per_utt.tsv")
    )
    assert summary["overall"]["counts"]["unvoiced"] == flagged


def test_each_side_is_the_right_audio_with_the_right_trimming(converted, evaluated):
    layout = Layout(converted)
    spk = load_spk("tiny", converted)
    for split in ("dev", "eval"):
        src = read_scp(converted / f"data/tiny/{split}/src.scp")
        tgt = read_scp(converted / f"data/tiny/{split}/tgt.scp")
        for row in _tsv(converted / f"exp/t/eval/best/{split}/per_utt.tsv"):
            utt = row["utt_id"]
            source = _trimmed(layout.resolve(src[utt]), spk)
            target = _trimmed(layout.resolve(tgt[utt]), spk)
            conv, sr = sf.read(converted / f"exp/t/convert/best/{split}/{utt}.wav")
            # converted: the stage-3 wav as written (not trimmed again)
            assert float(row["conv_mcd"]) == pytest.approx(len(conv) / sr)
            # source floor: trimmed source with internal pauses zeroed ...
            assert float(row["floor_mcd"]) == pytest.approx(len(source) / spk.sample_rate)
            rms = np.sqrt(np.mean(np.square(source, dtype=np.float64)))
            assert float(row["floor_f0_rmse_hz"]) == pytest.approx(rms, rel=1e-6)
            # ... both against the trimmed target of the same sentence
            for side in ("conv", "floor"):
                assert float(row[f"{side}_tgt_seconds"]) == pytest.approx(len(target) / sr)
    # source floor cached per spk (not per tag)
    cache = ev.floor_dir(layout, "tiny", Eval())
    assert cache.parent == converted / "dump/tiny/eval_floor"
    assert len(_tsv(cache / "dev.tsv")) == len(_tsv(cache / "eval.tsv")) == 2


def test_vocoder_floor_is_the_tags_vocoder_on_the_targets_own_features(converted, evaluated):
    layout = Layout(converted)
    spk = load_spk("tiny", converted)
    gl = build_vocoder(VocoderConfig(), spk)  # the tag's infer.vocoder: Griffin-Lim defaults
    for split in ("dev", "eval"):
        tgt = read_scp(converted / f"data/tiny/{split}/tgt.scp")
        for row in _tsv(converted / f"exp/t/eval/best/{split}/per_utt.tsv"):
            speech = load_speech(layout.resolve(tgt[row["utt_id"]]), spk, check=False)
            frames = num_frames(speech, spk)  # stage 1's frame count, a multiple of r
            # the vocoder's audio: T * hop samples of the target's own log-mel ...
            assert float(row["voc_mcd"]) == pytest.approx(frames * 160 / spk.sample_rate)
            wav = gl(mel_energy(speech, spk, frames)[0])
            rms = np.sqrt(np.mean(np.square(wav, dtype=np.float64)))
            assert float(row["voc_f0_rmse_hz"]) == pytest.approx(rms, rel=1e-4)
            # ... scored against the trimmed target, like the other two sides
            assert float(row["voc_tgt_seconds"]) == pytest.approx(len(speech.samples) / 16000)
    for block in (*evaluated["splits"].values(), evaluated["overall"]):
        assert set(block) >= {"converted", "source", "vocoder"}
        assert set(block["vocoder"]["mcd"]) == {"mean", "std", "n", "ci95"}
        assert block["vocoder"]["mcd"]["n"] == block["converted"]["mcd"]["n"]
    assert evaluated["vocoder_floor_with"] == {
        "type": "griffin_lim", "checkpoint": None, "config": None, "gl_iters": 32, "gl_power": 1.2
    }  # fmt: skip
    cache = vocoder_floor_dir(layout, "tiny", Eval(), VocoderConfig(), ev.FRAME_PERIOD_MS)
    assert cache.parent == converted / "dump/tiny/eval_floor"
    assert cache.name.startswith("vocoder-griffin_lim-")
    assert len(_tsv(cache / "dev.tsv")) == len(_tsv(cache / "eval.tsv")) == 2


def _spied_run(root, **kw):
    """Stage 4 with the fake scores; returns the summary and the kinds of pairs scored."""
    kinds = []
    real = ev._score_job

    def spy(job):
        kinds.append(job[0])
        return real(job)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "_score_job", spy)
        mp.setattr(ev, "score_pair", fake_score)
        summary = ev.run(Layout(root), "t", "best", nj=1, progress=False, **kw)
    return summary, kinds


def test_floors_are_cached_and_keyed_by_the_vocoder_settings(converted, evaluated, tmp_path):
    root = copy_root(converted, tmp_path)
    summary, kinds = _spied_run(root, force=True)
    assert kinds == ["conv"] * 4  # both floors from the per-spk caches
    for key in ("mcd", "f0_rmse_hz"):  # the cache keeps 8 significant digits
        got, first = (s["overall"]["vocoder"][key]["mean"] for s in (summary, evaluated))
        assert got == pytest.approx(first, rel=1e-7)
    # a conversion made with other vocoder settings: its vocoder floor is computed anew
    settings = root / "exp/t/convert/best/settings.json"
    data = json.loads(settings.read_text())
    data["infer"]["vocoder"]["gl_iters"] = 4
    settings.write_text(json.dumps(data))
    summary, kinds = _spied_run(root)
    assert sorted(kinds) == ["conv"] * 4 + ["voc"] * 4  # the source floor is still cached
    assert summary["vocoder_floor_with"]["gl_iters"] == 4
    assert len(list((root / "dump/tiny/eval_floor").glob("vocoder-griffin_lim-*"))) == 2
    assert (
        summary["overall"]["vocoder"]["f0_rmse_hz"] != evaluated["overall"]["vocoder"]["f0_rmse_hz"]
    )  # fake score: the RMS of the vocoded audio, which the iterations change
    assert _spied_run(root, force=True)[1] == ["conv"] * 4


def test_a_world_conversion_gets_a_world_vocoder_floor(converted, tmp_path, caplog):
    root = copy_root(converted, tmp_path)
    convert_tag(Layout(root), "t", "best", {"vocoder": "world"}, "cpu", progress=False)
    with caplog.at_level("INFO", logger="evaluate"):
        summary, kinds = _spied_run(root)
    assert sorted(kinds) == ["conv"] * 4 + ["voc"] * 4
    assert summary["vocoder_floor_with"]["type"] == "world"
    assert len(list((root / "dump/tiny/eval_floor").glob("vocoder-world-*"))) == 1
    assert {"f0", "mel"} <= set(np.load(next((root / "exp/t/convert/best/dev").glob("*.npz"))))
    overall = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("overall"))
    voc = summary["overall"]["vocoder"]
    assert f"(source {summary['overall']['source']['mcd']['mean']:.2f}, " in overall
    assert f"vocoder {voc['mcd']['mean']:.2f})" in overall
    assert f"vocoder {voc['f0_rmse_hz']['mean']:.1f})" in overall
    rows = _tsv(root / "exp/t/eval/best/dev/per_utt.tsv")
    assert {f"voc_{k}" for k in METRIC_KEYS} <= set(rows[0])


def test_world_copy_synthesis_speaks_the_targets_own_f0(converted):
    spk = load_spk("tiny", converted)
    ref = Layout(converted).resolve(
        next(iter(read_scp(converted / "data/tiny/dev/tgt.scp").values()))
    )
    speech = load_speech(ref, spk, check=False)
    wav = copy_synthesis(speech, spk, VocoderConfig(type="world"))
    frames = num_frames(speech, spk)
    assert wav.shape == (frames * 160,) and wav.dtype == np.float32
    lf0, vuv = lf0_vuv(speech, spk, frames)  # stage 1's F0 of the target
    heard = pyworld.harvest(wav.astype(np.float64), spk.sample_rate, 60.0, 500.0, 10.0)[0]
    both = (vuv > 0.5) & (heard[:frames] > 0)
    assert both.sum() > 0.9 * (vuv > 0.5).sum()
    cents = 1200 * np.abs(np.log2(heard[:frames][both] / np.exp(lf0[both])))
    assert np.median(cents) < 10


def test_up_to_date_evaluation_is_not_recomputed(converted, evaluated, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("scored again")

    monkeypatch.setattr(ev, "score_pair", fail)
    assert ev.run(Layout(converted), "t", "best", nj=1, progress=False) == evaluated


def test_missing_converted_file_is_reported_skipped_and_counted(converted, evaluated, tmp_path):
    root = copy_root(converted, tmp_path)
    gone = sorted((root / "exp/t/convert/best/eval").glob("*.wav"))[0]
    gone.unlink()
    kinds = []
    real = ev._score_job

    def spy(job):
        kinds.append(job[0])
        return real(job)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "_score_job", spy)
        mp.setattr(ev, "score_pair", fake_score)
        summary = ev.run(Layout(root), "t", "best", nj=1, progress=False)
    assert kinds == ["conv"] * 3  # source floor came from the per-spk cache
    block = summary["splits"]["eval"]
    assert block["counts"]["missing_converted"] == 1 and block["counts"]["scored"] == 1
    assert block["skipped"] == [
        {"utt": gone.stem, "status": "missing_converted", "reason": f"no converted file {gone}"}
    ]
    assert summary["overall"]["counts"]["skipped"] == 1
    assert block["source"]["mcd"]["n"] == 1  # floor summarised over the same utterances
    row = {r["utt_id"]: r for r in _tsv(root / "exp/t/eval/best/eval/per_utt.tsv")}[gone.stem]
    assert row["status"] == "missing_converted" and math.isnan(float(row["conv_mcd"]))
    assert not math.isnan(float(row["floor_mcd"]))


@pytest.mark.parametrize("where", ["in the tag", "elsewhere"])
def test_a_checkpoint_given_as_a_path_is_converted_and_scored_in_one_folder(
    converted, tmp_path, where
):
    root = copy_root(converted, tmp_path)
    path = root / "exp/t/checkpoints/epoch1.pt"
    if where == "elsewhere":
        path = Path(shutil.copy(path, tmp_path / "mine.pt"))
    convert_tag(Layout(root), "t", str(path), device="cpu", progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "score_pair", fake_score)
        summary = ev.run(Layout(root), "t", str(path), nj=1, progress=False)
    assert summary["overall"]["counts"]["scored"] == 4
    label = path.stem
    assert (root / f"exp/t/convert/{label}/settings.json").is_file()
    assert (root / f"exp/t/eval/{label}/summary.json").is_file()


def test_evaluate_needs_converted_speech(converted, capsys):
    with pytest.raises(UserError, match="run stage 3 first"):
        ev.run(Layout(converted), "t", "latest", nj=1, progress=False)
    assert evaluate_cli.main(["--tag", "zzz", "--root", str(converted)]) == 1
    assert "unknown tag 'zzz'" in capsys.readouterr().err


def test_utterance_figure(converted, evaluated):
    from vc_toolkit.eval.report_plots import utterance_figure

    utt = _tsv(converted / "exp/t/eval/best/dev/per_utt.tsv")[0]["utt_id"]
    path = utterance_figure(Layout(converted), "t", utt, "best")
    assert path == converted / f"exp/t/plots/best_{utt}.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserError, match="in no split"):
        utterance_figure(Layout(converted), "t", "no_such_utt", "best")


@pytest.mark.slow
def test_end_to_end_train_convert_evaluate_leaderboard(tiny_features_root, tmp_path, capsys):
    root = copy_root(tiny_features_root, tmp_path)
    # a narrower F0 search range keeps the WORLD analysis of the scoring fast
    tag = {**TINY_TAG, "note": "end to end", "eval": {"f0_floor": 70.0, "f0_ceil": 400.0}}
    write_conf(root, "tag", "e2e", tag)
    train_tag("e2e", Layout(root), device="cpu")
    common = ["--tag", "e2e", "--root", str(root), "--verbose", "0"]
    assert convert_cli.main([*common, "--device", "cpu"]) == 0
    assert evaluate_cli.main([*common, "--nj", "2"]) == 0
    capsys.readouterr()
    assert report_cli.main(["leaderboard", "--root", str(root), "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    summary = json.loads((root / "exp/e2e/eval/best/summary.json").read_text())
    (row,) = rows
    assert row["tag"] == "e2e" and row["spk"] == "tiny" and row["note"] == "end to end"
    assert row["epochs"] == "2" and row["eval_ckpt"] == "best"
    mcd = summary["splits"]["eval"]["converted"]["mcd"]["mean"]
    floor = summary["splits"]["eval"]["source"]["mcd"]["mean"]
    assert float(row["mcd"]) == pytest.approx(mcd) and float(row["floor_mcd"]) == pytest.approx(
        floor
    )
    assert 0 < mcd < 100 and 0 < floor < 100


def test_stage4_log_and_errors_show_paths_relative_to_the_root(converted, evaluated, caplog):
    with caplog.at_level("INFO"):
        ev.run(Layout(converted), "t", "best", nj=1, progress=False)
    lines = [r.getMessage() for r in caplog.records if "exp/t/eval/best" in r.getMessage()]
    assert lines and not [line for line in lines if str(converted) in line]
    with pytest.raises(UserError, match=r"no converted speech in exp/t/convert/latest;"):
        ev.run(Layout(converted), "t", "latest", nj=1, progress=False)


def test_stage4_logs_show_recipe_paths_relative(converted, evaluated, tmp_path, caplog):
    root = copy_root(converted, tmp_path)
    gone = sorted((root / "exp/t/convert/best/dev").glob("*.wav"))[0]
    gone.unlink()
    caplog.set_level("INFO")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "score_pair", fake_score)
        ev.run(Layout(root), "t", "best", nj=1, progress=False)
    assert f"no converted file exp/t/convert/best/dev/{gone.name}" in caplog.text
    assert str(root) not in caplog.text
