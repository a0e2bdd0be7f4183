"""Stage 0 of text spks: demo_tts (with espeak-ng phone times), LJSpeech- and JSUT-style trees."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SPK, make_wav, write_conf

from vc_toolkit.config import load_spk
from vc_toolkit.errors import UserError
from vc_toolkit.io import read_scp
from vc_toolkit.paths import Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.prepare.corpora import CorpusError
from vc_toolkit.prepare.corpora.synth import Room, add_room, room_pads
from vc_toolkit.text.frontend import build_frontend
from vc_toolkit.text.phone_times import read_phone_times, token_starts

TEXT = {"frontend": "espeak", "language": "en-us"}
SPLIT = {"dev": 1, "eval": 1, "seed": 0}


def _spk(corpus: dict, **extra) -> dict:
    return {**TINY_SPK, "corpus": corpus, "text": TEXT, "split": SPLIT, **extra}


def _lists(root, spk):
    out = {}
    for split in ("train", "dev", "eval"):
        folder = root / "data" / spk / split
        out.update(
            {
                u: (p, read_scp(folder / "text")[u], split)
                for u, p in read_scp(folder / "tgt.scp").items()
            }
        )
    return out


def test_demo_tts_lists_text_and_espeak_phone_times(root):
    write_conf(root, "spk", "t", _spk({"name": "demo_tts", "num_utts": 4}))
    write_conf(
        root, "spk", "d", {**TINY_SPK, "corpus": {"name": "demo", "num_utts": 3}, "split": SPLIT}
    )
    summary = prepare.run("t", Layout(root), nj=2)
    assert summary["kind"] == "text" and sum(summary["counts"].values()) == 4
    lists = _lists(root, "t")
    assert not (root / "data/t/train/src.scp").exists()
    # the mid-sentence pause of the audio is a comma in the frozen text
    assert lists["harvard_001"][1] == "The birch canoe slid, on the smooth planks."
    # the demo's target voice, key and room: the very same bytes as the demo spk's target side
    prepare.run("d", Layout(root), nj=2)
    demo_tgt = read_scp(root / "data/d/train/tgt.scp") | read_scp(root / "data/d/dev/tgt.scp")
    u = next(u for u in demo_tgt if u in lists)
    assert (root / lists[u][0]).read_bytes() == (root / demo_tgt[u]).read_bytes()

    rows = (root / "data/t/phone_times/harvard_001.tsv").read_text().splitlines()
    assert rows[0] == "start\tend\tphone\tword"
    table = [r.split("\t") for r in rows[1:]]
    starts, ends = np.array([float(r[0]) for r in table]), np.array([float(r[1]) for r in table])
    assert np.all(ends >= starts) and np.allclose(starts[1:], ends[:-1])
    wav, sr = sf.read(root / lists["harvard_001"][0])
    assert 0.1 <= starts[0] <= 0.4 + 0.05 and ends[-1] < len(wav) / sr  # after the head pad
    assert [r[2] for r in table[:5]] == ["ð", "ə", "b", "ˈɜː", "tʃ"]
    assert "_" in [r[2] for r in table]  # the inserted break is a pause
    # espeak-ng's phoneme events are the espeak front-end's phonemes of the frozen text
    front = build_frontend(load_spk("t", root).text)
    for u, (_, text, _) in lists.items():
        rows = read_phone_times(root / f"data/t/phone_times/{u}.tsv")
        starts = token_starts(front.symbols_of(text), rows, front.pause_symbols)
        assert starts is not None and np.all(np.diff(starts[~np.isnan(starts)]) >= 0)


def test_room_pads_match_the_padding_add_room_writes():
    room = Room(7, (100, 400), None)
    wav = np.full(1000, 1000, np.int16)
    out = add_room(wav, 22050, "harvard_001/tgt", room)
    head, tail, _ = room_pads(22050, "harvard_001/tgt", room)
    assert np.argmax(out != 0) == head and len(out) == head + 1000 + tail


def _ljspeech(base, wav_ids=("LJ001", "LJ002", "LJ003", "LJ004", "LJ005")):
    corpus = base / "LJSpeech"
    for i, u in enumerate(wav_ids):
        make_wav(corpus / "wavs" / f"{u}.wav", seconds=0.8, f0=120 + 10 * i, seed=i)
    lines = [
        "LJ001|Dr. Smith paid 3 dollars.|Doctor Smith paid three dollars.",
        "LJ002|Hello there, world",
        "LJ003|One more line|",
        "LJ004|A fourth one.|A fourth one.",
        "LJ009|No audio for this line.",
    ]
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus


def test_ljspeech_tree_uses_the_normalised_text_and_reports_what_does_not_match(root):
    corpus = _ljspeech(root)
    write_conf(root, "spk", "lj", _spk({"name": "ljspeech", "root": str(corpus)}))
    summary = prepare.run("lj", Layout(root))
    lists = _lists(root, "lj")
    assert sorted(lists) == ["LJ001", "LJ002", "LJ003", "LJ004"]
    assert lists["LJ001"][1] == "Doctor Smith paid three dollars."
    assert lists["LJ003"][1] == "One more line"  # an empty third column: the text itself
    report = (root / "data/lj/report.txt").read_text()
    assert "recordings without a transcript: 1" in report and "LJ005.wav" in report
    assert "LJ009.wav\tlisted in metadata.csv, no wav" in report
    assert summary["unmatched"] == 2
    labels = (root / "data/lj/train/labels.tsv").read_text()
    assert "\tljspeech\tneutral\tljspeech\tneutral" in labels


def test_jsut_tree_reads_every_subset_transcript(root):
    corpus = root / "jsut"
    texts = {"basic5000": ["B_1", "B_2", "B_3"], "onomatopee300": ["O_1", "O_2"]}
    for subset, ids in texts.items():
        for i, u in enumerate(ids):
            make_wav(corpus / subset / "wav" / f"{u}.wav", seconds=0.6, seed=i)
        lines = [f"{u}:テキスト{u}、です。" for u in ids]
        (corpus / subset / "transcript_utf8.txt").write_text("\n".join(lines), encoding="utf-8")
    text = {"frontend": "chars"}
    write_conf(root, "spk", "js", {**_spk({"name": "jsut", "root": str(corpus)}), "text": text})
    write_conf(
        root,
        "spk",
        "js_all",
        {**_spk({"name": "jsut", "root": str(corpus), "subsets": ["*"]}), "text": text},
    )
    prepare.run("js", Layout(root))
    assert sorted(_lists(root, "js")) == texts["basic5000"]
    prepare.run("js_all", Layout(root))
    lists = _lists(root, "js_all")
    assert sorted(lists) == sorted(texts["basic5000"] + texts["onomatopee300"])
    assert lists["O_2"][1] == "テキストO_2、です。"


@pytest.mark.parametrize(
    ("corpus", "expected"),
    [
        ({"name": "ljspeech", "root": "nowhere/LJSpeech-1.1"}, "download it yourself"),
        ({"name": "jsut", "root": "nowhere/jsut", "url": ""}, "download it yourself"),
    ],
)
def test_a_missing_corpus_folder_is_one_line(root, corpus, expected):
    write_conf(root, "spk", "x", _spk(corpus))
    with pytest.raises(CorpusError, match=expected) as err:
        prepare.run("x", Layout(root))
    assert "\n" not in str(err.value) and "nowhere" in str(err.value)


def test_the_frozen_text_is_part_of_the_fingerprint(root):
    corpus = _ljspeech(root)
    write_conf(root, "spk", "lj", _spk({"name": "ljspeech", "root": str(corpus)}))
    prepare.run("lj", Layout(root))
    fp = (root / "dump/lj/fingerprint.json").read_text()
    assert all(f"data/lj/{split}/text" in fp for split in ("train", "dev", "eval"))
    split = _lists(root, "lj")["LJ001"][2]
    text = root / f"data/lj/{split}/text"
    text.write_text(text.read_text().replace("three", "four"))
    with pytest.raises(UserError, match=rf"frozen \(1 changed: data/lj/{split}/text\)"):
        prepare.run("lj", Layout(root))
