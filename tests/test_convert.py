"""Stage 3 conversion, standalone conversion from a pack, inference controls, clear errors."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from conftest import TINY_TAG, copy_root, tiny_hifigan, write_conf

from vc_toolkit.bin import convert as convert_cli
from vc_toolkit.bin import pack as pack_cli
from vc_toolkit.config import ConfigError
from vc_toolkit.config.tag import Infer
from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.errors import UserError
from vc_toolkit.features.pitch import output_voicing
from vc_toolkit.features.stats import load_stats
from vc_toolkit.infer.convert import Converter, resolve_infer, write_outputs
from vc_toolkit.infer.pack import load_pack, load_tag_bundle
from vc_toolkit.infer.source import UnusableAudioError, raw_source_features, source_features
from vc_toolkit.infer.stage import run as convert_tag
from vc_toolkit.io import read_scp
from vc_toolkit.paths import Layout
from vc_toolkit.train.stage import run as train_tag
from vc_toolkit.vocoder.hifigan_generator import Generator

HOP, R, SR = 160, 2, 16000  # tiny spk: hop_length, reduction_factor, sample_rate


@pytest.fixture(scope="module")
def trained(tiny_features_root, tmp_path_factory):
    """A recipe root with tag 't' trained for 2 epochs on spk 'tiny'."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("convert"))
    write_conf(root, "tag", "t", TINY_TAG)
    train_tag("t", Layout(root), device="cpu")
    return root


def _speechlike(path, sr=22050, channels=2):
    """Two voiced harmonic bursts with a pause, padded with silence: in no corpus."""
    t = np.arange(int(0.6 * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    burst = sum(0.25 / k * np.sin(k * phase) for k in range(1, 8)) * np.hanning(len(t)) ** 0.2
    gap = np.zeros(int(0.3 * sr))
    x = np.concatenate([gap, burst, gap, 0.8 * burst, gap])
    x = x + 1e-4 * np.random.default_rng(0).standard_normal(len(x))
    sf.write(path, np.repeat(x[:, None], channels, axis=1), sr, subtype="PCM_16")
    return path


# ---- source features ---------------------------------------------------------------------
def test_source_features_equal_the_packed_stage1_features(trained):
    layout = Layout(trained)
    split = DumpSplit(layout.dump("tiny") / "dev")
    src = read_scp(layout.data("tiny") / "dev" / "src.scp")
    bundle = load_tag_bundle(layout, "t", "latest")
    for i, utt in enumerate(split.utt_ids):
        item = source_features(layout.resolve(src[utt]), bundle.spk_cfg, bundle.stats)
        packed = split[i]
        for key in ("src_mel", "src_lf0", "src_vuv", "src_energy"):
            np.testing.assert_allclose(item[key], packed[key], atol=1e-4, err_msg=key)
        assert item["src_seg"].sum() == len(packed["src_mel"]) // R
        assert (item["src_seg"] >= 1).all()


def test_unusable_audio_names_the_file_and_reason(trained, tmp_path):
    spk = load_tag_bundle(Layout(trained), "t", "latest").spk_cfg
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR), SR)
    short = tmp_path / "short.wav"
    sf.write(short, 0.3 * np.sin(2 * np.pi * 150 * np.arange(SR // 10) / SR), SR)
    garbage = tmp_path / "garbage.wav"
    garbage.write_text("not audio")
    for path, reason in ((silent, "silent"), (short, "too_short"), (garbage, "unreadable")):
        with pytest.raises(UnusableAudioError) as err:
            raw_source_features(path, spk)
        assert err.value.reason == reason
        assert str(path) in str(err.value) and "\n" not in str(err.value)


# ---- stage 3 -----------------------------------------------------------------------------
def test_stage3_writes_consistent_outputs_and_skips_finished_work(trained):
    layout = Layout(trained)
    record = convert_tag(layout, "t", "best", device="cpu", progress=False)
    root = trained / "exp/t/convert/best"
    n_utts = 0
    for split in ("dev", "eval"):
        ds = DumpSplit(layout.dump("tiny") / split)
        for i, utt in enumerate(ds.utt_ids):
            n_utts += 1
            with np.load(root / split / f"{utt}.npz") as z:
                mel, lf0, energy, dur = z["mel"], z["lf0"], z["energy"], z["duration"]
            wav, sr = sf.read(root / split / f"{utt}.wav")
            assert sr == SR
            assert mel.shape == (R * dur.sum(), 20)
            assert lf0.shape == energy.shape == (len(mel),)
            assert len(dur) == ds.src_frames[i] // R and (dur >= 0).all()
            assert len(wav) == len(mel) * HOP
            # denormalised: log-F0 of a voice, not a z-score around 0
            assert 3.0 < float(np.median(lf0)) < 7.5
    assert record["converted"] == n_utts and record["skipped"] == 0
    rtf = json.loads((root / "rtf.json").read_text())
    assert rtf["utterances"] == n_utts and rtf["acoustic_rtf"] > 0 and rtf["vocoder_rtf"] > 0
    assert rtf["acoustic_rtf"] == pytest.approx(rtf["acoustic_seconds"] / rtf["audio_seconds"])
    assert json.loads((root / "settings.json").read_text())["checkpoint"] == "best"

    again = convert_tag(layout, "t", "best", device="cpu", progress=False)
    assert again["converted"] == 0 and again["skipped"] == n_utts
    first = sorted((root / "dev").glob("*.wav"))[0]
    first.unlink()
    assert convert_tag(layout, "t", "best", device="cpu", progress=False)["converted"] == 1
    forced = convert_tag(layout, "t", "best", device="cpu", force=True, progress=False)
    assert forced["converted"] == n_utts
    other = convert_tag(layout, "t", "best", {"pitch_scale": 1.5}, "cpu", progress=False)
    assert other["converted"] == n_utts  # other settings: everything again


def test_inference_controls_change_what_they_should(trained):
    bundle = load_tag_bundle(Layout(trained), "t", "latest")
    ds = DumpSplit(Layout(trained).dump("tiny") / "dev")
    items = [ds[0], ds[1]]
    base = Converter(bundle).acoustic(items)

    def run(**kw):
        return Converter(bundle, resolve_infer(bundle.cfg.infer, kw)).acoustic(items)

    for b, p, e, d in zip(
        base, run(pitch_scale=2.0), run(energy_scale=0.5), run(duration_scale=2.0)
    ):
        # pitch x2 = log-F0 + ln 2 everywhere; durations unchanged
        np.testing.assert_array_equal(p["duration"], b["duration"])
        np.testing.assert_allclose(p["lf0"] - b["lf0"], math.log(2.0), atol=1e-4)
        # energy x0.5 = log energy - ln 2; pitch unchanged; the mel follows the energy
        np.testing.assert_allclose(e["lf0"], b["lf0"], atol=1e-5)
        np.testing.assert_allclose(e["energy"] - b["energy"], math.log(0.5), atol=1e-4)
        assert not np.allclose(e["mel"], b["mel"])
        # durations x2 (rounded after scaling): each within one frame of twice the original
        assert np.abs(d["duration"] - 2 * b["duration"]).max() <= 1
        assert d["duration"].sum() > 1.5 * b["duration"].sum()
        assert len(d["mel"]) == R * d["duration"].sum()


def test_resolve_infer_rejects_bad_controls():
    assert resolve_infer(Infer(), {"temperature": 0.5, "prosody": "sample"}).prosody == "sample"
    with pytest.raises(ConfigError, match="pitch_scale"):
        resolve_infer(Infer(), {"pitch_scale": 0.0})
    with pytest.raises(ConfigError, match="prosody"):
        resolve_infer(Infer(), {"prosody": "loud"})
    with pytest.raises(ConfigError, match="--vocoder_checkpoint"):
        resolve_infer(Infer(), {"vocoder": "hifigan"})


def test_world_hears_the_predicted_f0_voiced_where_the_source_was(trained, tmp_path):
    bundle = load_tag_bundle(Layout(trained), "t", "latest")
    ds = DumpSplit(Layout(trained).dump("tiny") / "dev")
    items = [ds[0], ds[1]]
    gl = Converter(bundle)(items)
    conv = Converter(bundle, resolve_infer(bundle.cfg.infer, {"vocoder": "world"}))
    world = conv(items)
    for item, g, w in zip(items, gl, world, strict=True):
        assert "f0" not in g  # Griffin-Lim uses no F0: none stored
        np.testing.assert_array_equal(g["mel"], w["mel"])
        voiced = output_voicing(item["src_vuv"], w["duration"], R)
        assert w["f0"].shape == (len(w["mel"]),) and w["f0"].dtype == np.float32
        np.testing.assert_array_equal(w["f0"] > 0, voiced)
        np.testing.assert_allclose(w["f0"][voiced], np.exp(w["lf0"][voiced]), rtol=1e-5)
        assert len(w["wav"]) == len(w["mel"]) * HOP
        assert 0 < voiced.mean() < 1
    write_outputs(tmp_path, "u", world[0], bundle.spk_cfg)
    with np.load(tmp_path / "u.npz") as z:
        np.testing.assert_array_equal(z["f0"], world[0]["f0"])
    results = conv.acoustic(items)
    with pytest.raises(ValueError, match="needs F0 with voicing"):
        conv.vocode(results)
    results[0]["f0"] = np.full(len(results[0]["mel"]), 150.0, np.float32)  # given: kept
    conv.vocode(results[:1])
    assert (results[0]["f0"] == 150.0).all() and len(results[0]["wav"]) == len(
        results[0]["f0"]
    ) * HOP


# ---- errors ------------------------------------------------------------------------------
def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


def test_unknown_checkpoint_lists_the_available_ones(trained, capsys):
    assert convert_cli.main(["--tag", "t", "--checkpoint", "epoch9", "--root", str(trained)]) == 1
    line = _error_line(capsys)
    assert line.startswith("error: no checkpoint 'epoch9'")
    assert "available: latest, best, epoch1, epoch2" in line


def test_untrained_and_unknown_tags(trained, capsys):
    write_conf(trained, "tag", "fresh", TINY_TAG)
    assert convert_cli.main(["--tag", "fresh", "--root", str(trained)]) == 1
    line = _error_line(capsys)
    assert "'fresh' has not been trained" in line
    assert "./run.sh --stage 2 --stop_stage 2 --tag fresh" in line
    assert convert_cli.main(["--tag", "nope", "--root", str(trained)]) == 1
    line = _error_line(capsys)
    assert "unknown tag 'nope'" in line and "trained tags: t" in line


# ---- packs and standalone conversion -----------------------------------------------------
def test_pack_converts_a_new_wav_with_the_recipe_deleted(trained, tmp_path, capsys):
    root = copy_root(trained, tmp_path / "copy")
    assert pack_cli.main(["--tag", "t", "--checkpoint", "best", "--root", str(root)]) == 0
    pack = tmp_path / "moved_pack"
    shutil.move(root / "exp/t/pack/best", pack)
    shutil.rmtree(root)  # no exp/, no dump/, no data/, no conf/
    assert {p.name for p in pack.iterdir()} >= {
        "config.yaml", "spk.yaml", "stats.npz", "model.pt", "vocoder.yaml", "README.txt"
    }  # fmt: skip
    assert "optimizer" not in torch.load(pack / "model.pt", weights_only=False)
    assert "vc-convert --pack" in (pack / "README.txt").read_text()

    wav = _speechlike(tmp_path / "new_voice.wav")
    out = tmp_path / "out"
    args = ["--pack", str(pack), "--input", str(wav), "--output", str(out), "--verbose", "0"]
    assert convert_cli.main(args) == 0, capsys.readouterr().err
    y, sr = sf.read(out / "new_voice.wav")
    with np.load(out / "new_voice.npz") as z:
        mel, dur = z["mel"], z["duration"]
    assert sr == SR and len(y) == len(mel) * HOP == R * dur.sum() * HOP
    assert np.abs(y).max() > 1e-3
    bundle = load_pack(pack)
    expected = source_features(wav, bundle.spk_cfg, load_stats(pack / "stats.npz"))
    assert len(dur) == len(expected["src_mel"]) // R
    assert json.loads((out / "rtf.json").read_text())["utterances"] == 1


def test_folder_run_reports_unusable_files_and_converts_the_rest(trained, tmp_path, capsys):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    _speechlike(folder / "sub" / "good.wav", sr=SR, channels=1)
    sf.write(folder / "quiet.wav", np.zeros(SR), SR)
    (folder / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    out = tmp_path / "out"
    args = ["--tag", "t", "--input", str(folder), "--output", str(out), "--root", str(trained)]
    assert convert_cli.main([*args, "--verbose", "0"]) == 1
    captured = capsys.readouterr()
    assert (out / "sub" / "good.wav").is_file() and not (out / "quiet.wav").exists()
    assert "1 of 3 files converted" in captured.out
    assert f"{folder / 'quiet.wav'}: nothing left after trimming silence" in captured.err
    assert f"{folder / 'broken.wav'}: cannot decode audio" in captured.err

    single = ["--tag", "t", "--input", str(folder / "quiet.wav"), "--root", str(trained)]
    assert convert_cli.main([*single, "--output", str(out)]) == 1
    line = _error_line(capsys)
    assert (
        line == f"error: cannot convert {folder / 'quiet.wav'}: nothing left after trimming silence"
    )


def test_cli_needs_a_model_source(trained, capsys):
    assert convert_cli.main(["--root", str(trained)]) == 1
    assert "exactly one of --tag and --pack" in _error_line(capsys)
    with pytest.raises(UserError, match="not a vc_toolkit pack"):
        load_pack(trained / "exp")


def test_pack_copies_a_hifigan_vocoder_and_converts_with_the_copy(trained, tmp_path, capsys):
    root = copy_root(trained, tmp_path / "copy")
    gen_cfg = tiny_hifigan()
    voc_dir = root / "vocoders" / "tiny_hifigan"
    voc_dir.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({"generator": Generator(gen_cfg).state_dict()}, voc_dir / "g_00000001")
    h = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(gen_cfg).items()}
    h.update(sampling_rate=SR, hop_size=HOP, n_fft=512, win_size=512, fmin=0, fmax=7600)
    (voc_dir / "config.json").write_text(json.dumps(h))
    frozen = root / "exp/t/config.yaml"
    cfg = yaml.safe_load(frozen.read_text())
    cfg["infer"]["vocoder"].update(type="hifigan", checkpoint="vocoders/tiny_hifigan/g_00000001")
    frozen.write_text(yaml.safe_dump(cfg))

    assert pack_cli.main(["--tag", "t", "--root", str(root), "--verbose", "0"]) == 0
    pack = root / "exp/t/pack/best"
    assert yaml.safe_load((pack / "vocoder.yaml").read_text())["checkpoint"] == "vocoder/g_00000001"
    assert (pack / "vocoder/config.json").is_file()
    shutil.rmtree(voc_dir)  # the pack must not need the original files
    wav = _speechlike(tmp_path / "x.wav", sr=SR, channels=1)
    out = tmp_path / "out"
    args = ["--pack", str(pack), "--input", str(wav), "--output", str(out), "--verbose", "0"]
    assert convert_cli.main(args) == 0, capsys.readouterr().err
    assert json.loads((out / "rtf.json").read_text())["vocoder"] == "hifigan"
    with np.load(out / "x.npz") as z:
        assert len(sf.read(out / "x.wav")[0]) == len(z["mel"]) * HOP


def test_stage3_log_shows_its_output_folder_relative_to_the_root(trained, tmp_path, caplog):
    root = copy_root(trained, tmp_path)
    with caplog.at_level("INFO"):
        convert_tag(Layout(root), "t", "best", device="cpu", progress=False)
    lines = [r.getMessage() for r in caplog.records if "exp/t/convert/best" in r.getMessage()]
    assert lines and not [line for line in lines if str(root) in line]
