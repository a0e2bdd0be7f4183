"""Stage 1 of a text spk end to end: tokens, target features, dumps, bad files reported."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SPK, make_wav, write_conf

from vc_toolkit.config import load_spk
from vc_toolkit.data.text_dump import TextDumpSplit, is_text_dump
from vc_toolkit.errors import UserError
from vc_toolkit.features import extract, stats
from vc_toolkit.io import read_scp
from vc_toolkit.paths import Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.preprocess import stage as preprocess
from vc_toolkit.text.frontend import build_frontend
from vc_toolkit.text.symbols import SymbolTable

TEXTS = {
    "LJ001": "Doctor Smith paid three dollars.",
    "LJ002": "Hello there, world",
    "LJ003": "One more line; and another.",
    "LJ004": "A fourth one.",
    "LJ005": "Five is a number, too.",
    "LJ006": "Six sheep slept.",
    "LJ007": "Seven, eight, nine!",
    "LJ008": "Silence speaks.",  # a silent file: dropped at stage 1
    "LJ009": "A broken file.",  # not audio: reported at stage 0
}


def _corpus(root):
    corpus = root / "LJ"
    for i, u in enumerate(sorted(TEXTS)[:7]):
        make_wav(corpus / "wavs" / f"{u}.wav", seconds=0.7 + 0.1 * i, f0=110 + 15 * i, seed=i)
    sf.write(corpus / "wavs" / "LJ008.wav", np.zeros(16000, np.float32), 16000)
    (corpus / "wavs" / "LJ009.wav").write_bytes(b"RIFF this is not a wav file at all")
    lines = [f"{u}|{t}" for u, t in TEXTS.items()]
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus


def _write_spk(root, name, text, **extra):
    spk = {
        **TINY_SPK,
        "corpus": {"name": "ljspeech", "root": str(_corpus(root))},
        "text": text,
        "split": {"dev": 1, "eval": 1, "seed": 0},
        "filters": {"outlier_mad": 0},
        **extra,
    }
    write_conf(root, "spk", name, spk)


@pytest.fixture(scope="module")
def text_root(tmp_path_factory):
    from conftest import new_root

    root = new_root(tmp_path_factory.mktemp("text1"))
    _write_spk(root, "lj", {"frontend": "espeak", "language": "en-us"})
    prepare.run("lj", Layout(root))
    preprocess.run("lj", Layout(root), nj=2)
    return root


def _items(root, spk):
    return {split: TextDumpSplit(root / "dump" / spk / split) for split in ("train", "dev", "eval")}


def test_bad_files_are_reported_and_the_others_dumped(text_root):
    stage0 = (text_root / "data/lj/report.txt").read_text()
    assert "unreadable, empty or truncated audio (utt, file, reason): 1" in stage0
    assert "LJ009" in stage0
    report = (text_root / "dump/lj/report.tsv").read_text().splitlines()
    rows = {r.split("\t")[0]: r.split("\t") for r in report[1:]}
    assert rows["LJ008"][2:4] == ["dropped", "silent"]
    assert sorted(u for u, r in rows.items() if r[2] == "kept") == sorted(TEXTS)[:7]
    splits = _items(text_root, "lj")
    assert sum(len(ds) for ds in splits.values()) == 7


def test_dumped_items_hold_the_tokens_of_their_text_and_the_target_features(text_root):
    cfg = load_spk("lj", text_root)
    table = SymbolTable.load(text_root / "dump/lj/symbols.json")
    front = build_frontend(cfg.text)
    st = stats.load_stats(text_root / "dump/lj/stats.npz")
    np.testing.assert_array_equal(st["src_mel_mean"], st["tgt_mel_mean"])
    assert is_text_dump(text_root / "dump/lj") and not is_text_dump(text_root / "dump/x")
    for split, ds in _items(text_root, "lj").items():
        wavs = read_scp(text_root / "data/lj" / split / "tgt.scp")
        for i, utt in enumerate(ds.utt_ids):
            item = ds[i]
            assert table.decode(item["tokens"]) == front.symbols_of(TEXTS[utt])
            assert item["tok_seg"].sum() == len(item["tokens"]) and 0 not in item["tokens"]
            pauses = np.isin(item["tokens"], table.pause_ids)
            assert len(item["tok_seg"]) == pauses.sum() + (not pauses[-1])
            assert len(item["tgt_mel"]) % cfg.reduction_factor == 0
            raw = extract.extract_utterance(text_root / wavs[utt], cfg)
            want = stats.normalize(raw, st)
            np.testing.assert_allclose(item["tgt_mel"], want["tgt_mel"], atol=1e-5)
            np.testing.assert_allclose(item["tgt_lf0"], want["tgt_lf0"], atol=1e-5)
            assert ds.head_seconds[i] == pytest.approx(raw["head_seconds"], abs=1e-6)
            assert ds.labels[utt].tgt_speaker == ds.labels[utt].src_speaker == "ljspeech"


def test_a_rerun_of_a_complete_text_spk_extracts_nothing(text_root, monkeypatch, caplog):
    def boom(*_a, **_k):
        raise AssertionError("extracted again")

    monkeypatch.setattr(extract, "extract_utterance", boom)
    caplog.set_level("INFO")
    preprocess.run("lj", Layout(text_root), nj=1)
    assert "nothing to do" in caplog.text


def test_letters_outside_a_fixed_charset_stop_stage1_in_one_line(root):
    _write_spk(root, "fixed", {"frontend": "chars", "charset": "abcdefghijklmnopqrstuvwyz"})
    prepare.run("fixed", Layout(root))
    with pytest.raises(UserError, match=r"unknown symbols 'x' in 1 utterances") as err:
        preprocess.run("fixed", Layout(root), nj=1)
    assert "\n" not in str(err.value) and "text.charset" in str(err.value)
