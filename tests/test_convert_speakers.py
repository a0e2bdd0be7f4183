"""Conversion for a chosen speaker pair: conditioning ids, per-pair statistics, CLI errors.

The tag 'm' here is not trained: its conditioned model has random weights saved as a
checkpoint, its speaker table is a, b, c, d (d without statistics) and the tiny spk's
dev/eval utterances are relabelled as pairs a->b and a->c, with per-speaker statistics
far apart, so that each check can tell which pair and which statistics were used.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_TAG, copy_root, make_wav, write_conf

from vc_toolkit import checkpoint as ckpt
from vc_toolkit.bin import convert as convert_cli
from vc_toolkit.bin import pack as pack_cli
from vc_toolkit.config import load_tag
from vc_toolkit.config.resolve import dump_yaml
from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.data.labels import LABELS_FILE, Labels, SpeakerTable, write_labels
from vc_toolkit.errors import UserError
from vc_toolkit.features.stats import load_stats, normalize, pair_stats, save_stats
from vc_toolkit.infer.convert import Converter
from vc_toolkit.infer.pack import load_pack, load_tag_bundle
from vc_toolkit.infer.source import raw_source_features
from vc_toolkit.infer.speakers import (
    LEGACY_PAIR,
    SpeakerPair,
    choose_pair,
    read_pairs,
    spk_pairs,
    tag_table,
    write_pairs,
)
from vc_toolkit.infer.stage import run as convert_tag
from vc_toolkit.models import build_model
from vc_toolkit.models.fastspeech2vc import FastSpeech2VC
from vc_toolkit.paths import Layout

SPEAKERS = ["a", "b", "c", "d"]
PAIRS = {"dev": ["a->b", "a->c"], "eval": ["a->c", "a->b"]}
"""Pair of the 1st and 2nd utterance of each split (train: all a->b)."""
CONDITIONING = {"type": "embedding", "dim": 4, "sites": ["encoder", "decoder"]}


def _speaker_stats(st: dict) -> dict:
    """Speakers a (the source side), b (the target side) and c (b, 0.7 higher in log-F0)."""
    out = dict(st)
    for name, side, shift in (("a", "src", 0.0), ("b", "tgt", 0.0), ("c", "tgt", 0.7)):
        for stream in ("mel", "lf0", "energy"):
            out[f"speaker:{name}:{stream}_mean"] = st[f"{side}_{stream}_mean"] + shift
            out[f"speaker:{name}:{stream}_std"] = st[f"{side}_{stream}_std"] * (1 + shift)
        out[f"speaker:{name}:frames"] = st[f"{side}_frames"]
    return out


@pytest.fixture(scope="module")
def multi(tiny_features_root, tmp_path_factory):
    """Recipe root with the conditioned, untrained tag 'm' on the relabelled tiny spk."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("speakers"))
    layout = Layout(root)
    dump = layout.dump("tiny")
    save_stats(dump / "stats.npz", _speaker_stats(load_stats(dump / "stats.npz")))
    for split in ("train", "dev", "eval"):
        utts = DumpSplit(dump / split).utt_ids
        names = PAIRS.get(split, ["a->b"] * len(utts))
        rows = {u: Labels(u, *names[i % len(names)].split("->")) for i, u in enumerate(utts)}
        write_labels(dump / split / LABELS_FILE, rows)
    data = {**TINY_TAG, "model": {**TINY_TAG["model"], "conditioning": CONDITIONING}}
    write_conf(root, "tag", "m", data)
    cfg = load_tag("m", root)
    layout.exp("m").mkdir(parents=True)
    dump_yaml(cfg, layout.exp("m") / "config.yaml")
    table = SpeakerTable(speakers=SPEAKERS)
    table.save(layout.exp("m") / "speakers.json")
    torch.manual_seed(0)
    model = build_model(cfg.model, 20, 2, speakers=table)
    layout.checkpoints("m").mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "epoch": 1, "step": 1, "tag": "m"}
    ckpt.save(layout.checkpoints("m") / "best.pt", state)
    return root


@pytest.fixture
def spy(monkeypatch):
    """Records every FastSpeech2VC.infer call: its inputs, cond, stats and outputs."""
    calls = []
    original = FastSpeech2VC.infer

    def infer(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls.append({"args": args, **kwargs, "out": {k: v.clone() for k, v in out.items()}})
        return out

    monkeypatch.setattr(FastSpeech2VC, "infer", infer)
    return calls


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1]


# ---- the converter -----------------------------------------------------------------------
def test_bundle_has_the_tags_table_and_the_spks_pairs(multi):
    bundle = load_tag_bundle(Layout(multi), "m")
    assert bundle.speakers.speakers == SPEAKERS
    assert [p.name for p in bundle.pairs] == ["a->b", "a->c"]


def test_acoustic_conditions_each_item_on_its_pair_and_denormalises_with_its_target(multi, spy):
    layout = Layout(multi)
    bundle = load_tag_bundle(layout, "m")
    ds = DumpSplit(layout.dump("tiny") / "dev")
    items = [{**ds[i], "labels": ds.labels[u]} for i, u in enumerate(ds.utt_ids)]
    assert [it["labels"].pair for it in items] == ["a->b", "a->c"]
    results = Converter(bundle).acoustic(items)
    assert len(spy) == 2  # one batch per pair
    for call, tgt, res in zip(spy, ("b", "c"), results, strict=True):
        cond = call["cond"]
        assert cond["src_spk"].tolist() == [0]
        assert cond["tgt_spk"].tolist() == [SPEAKERS.index(tgt)]
        st = pair_stats(bundle.stats, "a", tgt)
        assert call["stats"]["tgt_lf0_mean"] == pytest.approx(st["tgt_lf0_mean"])
        t = len(res["lf0"])
        pitch = call["out"]["pitch"][0, :t].numpy().astype(np.float64)
        expected = pitch * st["tgt_lf0_std"] + st["tgt_lf0_mean"]
        np.testing.assert_allclose(res["lf0"], expected, rtol=1e-5)
        mel = call["out"]["mel"][0, :t].numpy().astype(np.float64)
        np.testing.assert_allclose(
            res["mel"], mel * st["tgt_mel_std"] + st["tgt_mel_mean"], rtol=1e-4, atol=1e-4
        )


def test_an_item_without_labels_needs_a_spk_with_one_pair(multi):
    bundle = load_tag_bundle(Layout(multi), "m")
    item = DumpSplit(Layout(multi).dump("tiny") / "dev")[0]
    with pytest.raises(ValueError, match="no labels and the model knows 2 speaker pairs"):
        Converter(bundle).acoustic([item])


def test_stage3_converts_each_utterance_with_its_pair(multi, spy):
    layout = Layout(multi)
    record = convert_tag(layout, "m", "best", device="cpu", progress=False)
    assert record["converted"] == 4
    seen = []
    for call in spy:
        tgt = call["cond"]["tgt_spk"].tolist()
        assert len(set(tgt)) == 1  # a batch holds one pair
        name = SPEAKERS[tgt[0]]
        assert call["stats"]["tgt_lf0_mean"] == pytest.approx(
            _speaker_stats(load_stats(layout.dump("tiny") / "stats.npz"))[
                f"speaker:{name}:lf0_mean"
            ]
        )
        seen += [name] * len(tgt)
    assert sorted(seen) == ["b", "b", "c", "c"]
    for split in ("dev", "eval"):
        out = layout.convert_dir("m", "best") / split
        assert (
            sorted(p.stem for p in out.glob("*.wav"))
            == DumpSplit(layout.dump("tiny") / split).utt_ids
        )


# ---- vc-convert --input ------------------------------------------------------------------
def _convert(root, wav, out, *flags) -> int:
    return convert_cli.main(
        ["--tag", "m", "--root", str(root), "--input", str(wav), "--output", str(out), *flags]
    )


def test_chosen_pair_normalises_conditions_and_denormalises(multi, spy, tmp_path):
    layout = Layout(multi)
    wav = make_wav(tmp_path / "in" / "x.wav", f0=140.0)
    bundle = load_tag_bundle(layout, "m")
    for tgt in ("c", "b"):
        spy.clear()
        out = tmp_path / f"to_{tgt}"
        assert _convert(multi, wav, out, "--src_speaker", "a", "--tgt_speaker", tgt) == 0
        (call,) = spy
        assert call["cond"]["src_spk"].tolist() == [0]
        assert call["cond"]["tgt_spk"].tolist() == [SPEAKERS.index(tgt)]
        st = pair_stats(bundle.stats, "a", tgt)
        src = normalize(raw_source_features(wav, bundle.spk_cfg), st)["src_lf0"]
        np.testing.assert_allclose(call["args"][1][0].numpy(), src, atol=1e-5)
        with np.load(out / "x.npz") as z:
            lf0 = z["lf0"]
        pitch = call["out"]["pitch"][0, : len(lf0)].numpy().astype(np.float64)
        expected = pitch * st["tgt_lf0_std"] + st["tgt_lf0_mean"]
        np.testing.assert_allclose(lf0, expected, rtol=1e-5)


def test_a_pack_carries_the_table_and_pairs(multi, spy, tmp_path, capsys):
    layout = Layout(multi)
    assert pack_cli.main(["--tag", "m", "--root", str(multi)]) == 0
    folder = layout.pack_dir("m", "best")
    assert SpeakerTable.load(folder / "speakers.json") == SpeakerTable.load(
        layout.exp("m") / "speakers.json"
    )
    assert [p.name for p in read_pairs(folder / "pairs.tsv")] == ["a->b", "a->c"]
    assert "--src_speaker a --tgt_speaker b" in (folder / "README.txt").read_text()
    pack = load_pack(folder)
    assert pack.speakers.speakers == SPEAKERS and len(pack.pairs) == 2
    wav = make_wav(tmp_path / "x.wav")
    args = ["--pack", str(folder), "--input", str(wav), "--output", str(tmp_path / "o")]
    assert convert_cli.main([*args, "--src_speaker", "a", "--tgt_speaker", "c"]) == 0
    assert spy[-1]["cond"]["tgt_spk"].tolist() == [2]
    assert convert_cli.main(args) == 1
    assert "choose one with --src_speaker and --tgt_speaker" in _error_line(capsys)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ((), "error: the model knows 2 speaker pairs; choose one with --src_speaker and "
         "--tgt_speaker (speakers: a, b, c, d)"),
        (("--src_speaker", "a"), "error: --src_speaker needs --tgt_speaker too (speakers: "),
        (("--tgt_speaker", "b"), "error: --tgt_speaker needs --src_speaker too (speakers: "),
        (("--src_speaker", "a", "--tgt_speaker", "zz"),
         "error: --tgt_speaker 'zz' is unknown to the model; known speakers: a, b, c, d"),
        (("--src_speaker", "a", "--tgt_speaker", "b", "--tgt_emotion", "happy"),
         "error: --tgt_emotion 'happy' is unknown to the model; known emotions: neutral"),
        (("--src_speaker", "a", "--tgt_speaker", "d"),
         "error: speaker 'd' has no statistics in this spk (it has: a, b, c)"),
    ],
)  # fmt: skip
def test_speaker_flag_errors_are_one_line(multi, tmp_path, capsys, flags, message):
    wav = make_wav(tmp_path / "x.wav")
    assert _convert(multi, wav, tmp_path / "o", *flags) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)
    assert not (tmp_path / "o").exists()


def test_stage3_refuses_speaker_flags(multi, capsys):
    args = ["--tag", "m", "--root", str(multi), "--src_speaker", "a"]
    assert convert_cli.main(args) == 1
    assert _error_line(capsys) == (
        "error: --src_speaker is for --input runs; stage 3 converts each pair its spk defines"
    )


# ---- pairs and tables --------------------------------------------------------------------
def test_one_pair_is_the_default_with_its_emotions():
    table = SpeakerTable(speakers=["x", "y"], emotions=["neutral", "sad"])
    only = [SpeakerPair("x", "y", "neutral", "sad")]
    assert choose_pair(only, table, {}) == only[0]
    assert choose_pair(only, table, {}, "y", "x") == SpeakerPair("y", "x")
    with pytest.raises(UserError, match="--src_speaker 'z' is unknown"):
        choose_pair(only, table, {}, "z", "x")


def test_legacy_tags_and_packs_read_as_one_to_one(tmp_path):
    assert spk_pairs(tmp_path) == [LEGACY_PAIR]  # no packed split: src->tgt
    assert read_pairs(tmp_path / "pairs.tsv") == [LEGACY_PAIR]
    assert tag_table(tmp_path / "speakers.json", [LEGACY_PAIR]).speakers == ["src", "tgt"]
    named = [SpeakerPair("m3", "f2")]
    assert tag_table(tmp_path / "speakers.json", named).speakers == ["m3", "f2"]
    assert choose_pair(named, tag_table(tmp_path / "none.json", named), {}) == named[0]
    SpeakerTable(speakers=["q", "m3", "f2"]).save(tmp_path / "speakers.json")
    assert tag_table(tmp_path / "speakers.json", named).speakers == ["q", "m3", "f2"]
    write_pairs(tmp_path / "pairs.tsv", [*named, SpeakerPair("a", "b", "x", "y")])
    assert read_pairs(tmp_path / "pairs.tsv") == [*named, SpeakerPair("a", "b", "x", "y")]


def test_utterance_figure_of_a_multi_pair_tag_converts_with_the_utterances_pair(multi, spy):
    from vc_toolkit.eval.report_plots import utterance_figure

    layout = Layout(multi)
    utt = DumpSplit(layout.dump("tiny") / "train").utt_ids[0]  # stage 3 did not convert it
    path = utterance_figure(layout, "m", utt, out=multi / "fig.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert spy[-1]["cond"]["tgt_spk"].tolist() == [SPEAKERS.index("b")]  # train: a->b


def test_a_checkpoint_carrying_its_table_is_converted_with_that_table(multi):
    layout = Layout(multi)
    state = ckpt.load(layout.checkpoints("m") / "best.pt")
    reordered = SpeakerTable(speakers=["d", "c", "b", "a"])
    ckpt.save(layout.checkpoints("m") / "epoch1.pt", {**state, "speakers": reordered.as_dict()})
    assert load_tag_bundle(layout, "m", "epoch1").speakers.speakers == ["d", "c", "b", "a"]
    assert load_tag_bundle(layout, "m", "best").speakers.speakers == SPEAKERS  # speakers.json
