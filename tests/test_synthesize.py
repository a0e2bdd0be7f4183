"""vc-synthesize: unseen text through a tiny trained TTS tag, its errors, and its pack."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from synth_fixtures import TAG, trained_tts_root

from vc_toolkit.bin import synthesize as cli
from vc_toolkit.infer.pack import load_pack, load_tag_bundle, pack_tag
from vc_toolkit.infer.synthesize import Synthesizer, synthesize_texts
from vc_toolkit.paths import Layout

UNSEEN = "Seven green frogs sat in a muddy pond."


@pytest.fixture(scope="module")
def trained(tiny_features_root, tmp_path_factory):
    return trained_tts_root(tiny_features_root, tmp_path_factory.mktemp("synth"))


def _run(root, *args):
    return cli.main(["--root", str(root), "--verbose", "0", *args])


def test_unseen_text_gives_finite_audio_of_the_predicted_length(trained, tmp_path, capsys):
    corpus = " ".join(
        (trained / f"data/tinytts/{s}/text").read_text() for s in ("train", "dev", "eval")
    )
    assert "frogs" not in corpus  # the sentence is in no corpus
    out = tmp_path / "out"
    assert _run(trained, "--tag", TAG, "--text", UNSEEN, "--out", str(out), "--name", "z") == 0
    assert "1 sentence(s) synthesised" in capsys.readouterr().out
    wav, sr = sf.read(out / "z.wav")
    npz = np.load(out / "z.npz")
    spk = load_tag_bundle(Layout(trained), TAG).spk_cfg
    r, hop = spk.reduction_factor, spk.feats.mel.hop_length
    assert sr == spk.sample_rate and np.all(np.isfinite(wav)) and np.abs(wav).max() > 0
    frames = len(npz["mel"])
    assert frames == r * int(npz["duration"].sum()) > 0
    assert len(wav) == frames * hop
    assert len(npz["duration"]) == len(npz["tokens"]) > 20  # one duration per phoneme token
    assert np.all(np.isfinite(npz["mel"])) and np.all(np.isfinite(npz["lf0"]))
    assert json.loads((out / "rtf.json").read_text())["utterances"] == 1


def test_tokens_are_the_frontend_ids_and_scales_apply(trained, tmp_path):
    bundle = load_tag_bundle(Layout(trained), TAG)
    synth = Synthesizer(bundle)
    item = synth.item("Hello, world.", "h")
    symbols = synth.table.decode(item["tokens"])
    assert symbols[:3] == ["h", "ə", "l"] and "," in symbols
    assert item["tok_seg"].sum() == len(item["tokens"]) and len(item["tok_seg"]) == 2
    base = synth([item])[0]
    slow = Synthesizer(bundle, bundle.cfg.infer.__class__(duration_scale=3.0))([item])[0]
    assert slow["duration"].sum() > base["duration"].sum()


def test_text_file_numbers_its_sentences(trained, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text(
        "# comment\nThe old dog sat by the red door.\n\nMy sister fixed the broken clock.\n"
    )
    out = tmp_path / "o"
    assert _run(trained, "--tag", TAG, "--text_file", str(f), "--out", str(out)) == 0
    assert sorted(p.name for p in out.glob("*.wav")) == ["0001.wav", "0002.wav"]


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--tag", TAG, "--text", "Purple lemons."], "unknown symbols 'əl'"),
        (["--tag", "nope", "--text", "Hello."], "nope"),
        (["--tag", TAG], "give exactly one of --text"),
        (["--tag", TAG, "--text", "Hi.", "--speaker", "bob"], "--speaker 'bob'"),
        (["--tag", TAG, "--text", "... !"], "gives no"),
    ],
)
def test_cli_errors_are_one_line(trained, tmp_path, capsys, args, expect):
    assert _run(trained, *args, "--out", str(tmp_path / "x")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expect in err, err
    assert not (tmp_path / "x").exists()


def test_world_gets_the_predicted_f0_voiced_on_voiced_symbols(trained, tmp_path, monkeypatch):
    out = tmp_path / "w"
    assert (
        _run(trained, "--tag", TAG, "--text", UNSEEN, "--out", str(out), "--vocoder", "world") == 0
    )
    npz = np.load(out / "0001.npz")
    bundle = load_tag_bundle(Layout(trained), TAG)
    from vc_toolkit.infer.align import tag_voicing

    share = np.asarray(tag_voicing(Layout(trained), bundle))
    voiced = np.repeat(share[npz["tokens"]] > 0.5, 2 * npz["duration"])
    assert np.array_equal(npz["f0"] > 0, voiced) and 0 < voiced.mean() < 1
    assert np.allclose(npz["f0"][voiced], np.exp(npz["lf0"][voiced]), rtol=1e-5)
    cache = json.loads((trained / "exp" / TAG / "voicing" / "best.json").read_text())
    assert cache["voicing"] == share.tolist()  # computed once per checkpoint, then read
    from vc_toolkit.infer import align

    monkeypatch.setattr(align, "symbol_voicing", lambda *a: pytest.fail("computed again"))
    assert tag_voicing(Layout(trained), bundle) == share.tolist()


def test_symbol_voicing_counts_each_tokens_aligned_frames(monkeypatch):
    from types import SimpleNamespace

    from vc_toolkit.infer import align

    item = {"tokens": np.array([1, 2, 3]), "tgt_vuv": np.array([0, 0, 1, 0, 1, 1], "f4")}
    ds = type("DS", (), {"utt_ids": ["u"], "__getitem__": lambda self, i: item})()
    bundle = SimpleNamespace(spk_cfg=SimpleNamespace(reduction_factor=2), vocab_size=4)
    durations = {"u": np.array([1, 0, 2])}  # token 0: frames 0-1, token 1: none, token 2: 2-5
    monkeypatch.setattr(align, "aligned_durations", lambda *a, **k: (durations, {}))
    share = align.symbol_voicing(None, bundle, ds)
    assert share == [0.5, 0.0, 0.5, 0.75]  # symbol 2 has no frame: unknown (0.5)


def test_pack_carries_the_symbol_table_and_synthesises_alone(trained, tmp_path, capsys):
    import shutil

    layout = Layout(trained)
    folder = pack_tag(layout, TAG, "best")
    assert json.loads((folder / "symbols.json").read_text())["symbols"][0] == "<pad>"
    assert len(json.loads((folder / "voicing.json").read_text())) == load_pack(folder).vocab_size
    assert "vc-synthesize --pack" in (folder / "README.txt").read_text()
    moved = shutil.copytree(folder, tmp_path / "pack")
    shutil.rmtree(trained / "exp" / TAG / "pack")
    out = tmp_path / "p"
    assert _run(tmp_path, "--pack", str(moved), "--text", UNSEEN, "--out", str(out)) == 0
    ref = tmp_path / "r"
    synthesize_texts(Synthesizer(load_tag_bundle(layout, TAG)), [UNSEEN], ref)
    a, b = np.load(out / "0001.npz"), np.load(ref / "0001.npz")
    assert np.array_equal(a["duration"], b["duration"]) and np.allclose(a["mel"], b["mel"])
    (moved / "voicing.json").unlink()  # a pack without it cannot feed WORLD
    args = ("--pack", str(moved), "--text", UNSEEN, "--vocoder", "world", "--out", str(out))
    assert _run(tmp_path, *args) == 1
    assert "vocoder world needs the voiced share" in capsys.readouterr().err
