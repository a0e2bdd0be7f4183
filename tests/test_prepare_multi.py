"""Stage 0 for multi-speaker spks: labels, pair enumeration, sentence splits, corpora lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, write_conf

from vc_toolkit.config import ConfigError, load_spk
from vc_toolkit.config.core import build
from vc_toolkit.config.pin import config_hash
from vc_toolkit.config.spk import LabeledCorpus, SpkConfig, Split
from vc_toolkit.data.labels import NEUTRAL, SpeakerTable, read_labels
from vc_toolkit.io import read_scp
from vc_toolkit.paths import SPLITS, Layout
from vc_toolkit.prepare import stage as prepare
from vc_toolkit.prepare.corpora import CorpusError, Utterance
from vc_toolkit.prepare.corpora.demo import corpus_dir
from vc_toolkit.prepare.corpora.labeled import parse_labels
from vc_toolkit.prepare.pairs import enumerate_pairs

SMALL = {"sample_rate": 16000, "split": {"dev": 1, "eval": 1, "seed": 0}}


def _wav(path: Path, seed: int = 0) -> None:
    """A tiny (0.3 s, 16 kHz) harmonic tone; ``seed`` varies pitch and noise."""
    from conftest import make_wav

    make_wav(path, sr=16000, seconds=0.3, f0=120.0 + 10 * seed, seed=seed)


def _lists(root: Path, spk: str) -> dict[str, dict[str, str]]:
    return {s: read_scp(root / f"data/{spk}/{s}/src.scp") for s in SPLITS}


# ---------------------------------------------------------------- labels from paths


def test_labels_from_folder_levels():
    c = LabeledCorpus(root=".", levels={"speaker": 0, "emotion": -1})
    assert parse_labels(Path("amy/take1/happy/s01.wav"), c) == ("s01", "amy", "happy")
    c = LabeledCorpus(root=".", levels={"speaker": 1, "sentence": 0})
    assert parse_labels(Path("s07/bob/x.wav"), c) == ("s07", "bob", NEUTRAL)
    assert "no folder level 1" in parse_labels(Path("bob/x.wav"), c)


def test_labels_from_pattern():
    regex = r"(?P<speaker>[^/]+)/(?:(?P<emotion>[a-z]+)_)?(?P<sentence>\d+)\.wav"
    c = LabeledCorpus(root=".", labels_from="pattern", regex=regex)
    assert parse_labels(Path("amy/angry_003.wav"), c) == ("003", "amy", "angry")
    assert parse_labels(Path("amy/003.wav"), c) == ("003", "amy", NEUTRAL)
    no_sentence = LabeledCorpus(root=".", labels_from="pattern", regex=r"(?P<speaker>\w+)/.*")
    assert (
        parse_labels(Path("amy/x 1.wav"), no_sentence)
        == "sentence label 'x 1' is empty or holds spaces or '->'"
    )
    assert parse_labels(Path("amy/extra/notes.wav"), c) == "path does not match corpus.regex"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"labels_from": "pattern", "regex": r"(?P<spk>\w+)"}, "needs a \\(\\?P<speaker>"),
        ({"labels_from": "pattern", "regex": "("}, "is not a regex"),
        ({"levels": {"emotion": 1}}, "must map speaker"),
        ({"levels": {"speaker": 0, "mood": 1}}, "must map speaker"),
    ],
)
def test_labeled_corpus_config_errors(block, message):
    with pytest.raises(ConfigError, match=message):
        build(SpkConfig, {"corpus": {"name": "labeled", "root": "x", **block}})


def test_labeled_corpus_through_stage0_reports_unlabeled_files(root, tmp_path):
    base = tmp_path / "corpus"
    for k, (spk, emo) in enumerate([("amy", "neutral"), ("amy", "happy"), ("bob", "neutral")]):
        for s in range(4):
            _wav(base / spk / emo / f"s{s}.wav", seed=k)
    _wav(base / "stray.wav")  # too shallow for level 1: reported, not fatal
    corpus = {"name": "labeled", "root": str(base), "levels": {"speaker": 0, "emotion": 1}}
    write_conf(root, "spk", "lab", {**SMALL, "corpus": corpus})
    summary = prepare.run("lab", Layout(root))
    assert (summary["speakers"], summary["voices"], summary["pairs"]) == (2, 3, 6)
    assert sum(summary["counts"].values()) == 6 * 4 and summary["unmatched"] == 1
    report = (root / "data/lab/report.txt").read_text()
    assert "## files without labels (file, reason): 1" in report and "stray.wav" in report
    table = SpeakerTable.load(root / "dump/lab/speakers.json")
    assert table.speakers == ["amy", "bob"] and table.emotions == [NEUTRAL, "happy"]
    ids = [u for s in SPLITS for u in read_labels(root / f"data/lab/{s}/labels.tsv")]
    assert "amy-happy__bob__s0" in ids and "bob__amy__s3" in ids


# ---------------------------------------------------------------- pair enumeration


def _utts(voices: str, sentences: str, tag: str = "") -> list[Utterance]:
    return [Utterance(s, Path(f"{tag}{v}/{s}.wav"), v) for v in voices for s in sentences]


def _pairs(found) -> set[tuple[str, str, str]]:
    return {(p.labels.src_speaker, p.labels.tgt_speaker, p.labels.sentence) for p in found}


def test_pairs_stay_within_each_corpus_and_its_candidates():
    one_to_one = _utts("ab", "12")
    many = _utts("cde", "123") + _utts("a", "3", "x")  # 'a' reads sentence 3 only here
    found = enumerate_pairs([one_to_one, many], [[("a", "b")], None])
    got = _pairs(found)
    many_pairs = {(s, t) for s in "acde" for t in "acde" if s != t}
    assert {(s, t) for s, t, _ in got} == {("a", "b")} | many_pairs
    assert ("b", "a", "1") not in got  # the one-to-one corpus declares a -> b only
    assert ("a", "c", "3") in got and ("a", "c", "1") not in got  # no pairs across corpora
    assert len(found) == 2 + 6 * 1 + 6 * 3  # a->b (2); a<->c,d,e (sentence 3); among c,d,e
    assert [p.utt_id for p in found] == sorted(p.utt_id for p in found)


def test_pairs_list_crosses_corpora_and_keeps_order():
    found = enumerate_pairs(
        [_utts("ab", "12"), _utts("c", "23", "x")], [None, None], [["a", "c"], ["c", "b"]]
    )
    assert _pairs(found) == {("a", "c", "2"), ("c", "b", "2")}
    assert [p.utt_id for p in found] == ["a__c__2", "c__b__2"]
    assert found[0].src == Path("a/2.wav") and found[0].tgt == Path("xc/2.wav")


def test_pairs_list_with_unknown_voice_is_one_line_config_error():
    with pytest.raises(ConfigError) as err:
        enumerate_pairs([_utts("ab", "1")], [None], [["a", "zed"], ["a:happy", "b"]])
    msg = str(err.value)
    assert "\n" not in msg and "a:happy, zed" in msg and "known voices: a, b" in msg


def test_utt_ids_are_sentences_for_one_pair_and_prefixed_otherwise():
    u = [
        Utterance("s1", Path("m/s1.wav"), "m3", "excited"),
        Utterance("s1", Path("f/s1.wav"), "f1"),
    ]
    assert [p.utt_id for p in enumerate_pairs([u], [[("m3:excited", "f1")]])] == ["s1"]
    both = enumerate_pairs([u], [None])
    assert [p.utt_id for p in both] == ["f1__m3-excited__s1", "m3-excited__f1__s1"]
    assert both[1].labels.src_emotion == "excited" and both[1].labels.tgt_emotion == NEUTRAL


def test_a_voice_reading_a_sentence_twice_is_refused():
    with pytest.raises(CorpusError, match="voice 'a' reads sentence '1' twice.*distinct speaker"):
        enumerate_pairs([_utts("ab", "1"), _utts("a", "1", "x")], [None, None])


# ---------------------------------------------------------------- splits over sentences


def test_split_train_cap_keeps_dev_and_eval():
    ids = [f"s{i:02d}" for i in range(40)]
    full = prepare.make_split(ids, Split(dev=4, eval=5, seed=2))
    capped = prepare.make_split(ids, Split(dev=4, eval=5, seed=2, train=7))
    assert (capped["dev"], capped["eval"]) == (full["dev"], full["eval"])
    assert len(capped["train"]) == 7 and set(capped["train"]) < set(full["train"])
    assert capped != prepare.make_split(ids, Split(dev=4, eval=5, seed=2, train=8))


def _jvs_tree(base: Path, speakers: int = 3, sentences: int = 6) -> Path:
    root = base / "jvs_ver1"
    for k in range(1, speakers + 1):
        for s in range(1, sentences + 1):
            if (k, s) == (3, 6):
                continue  # jvs003 misses one sentence, as real JVS speakers do
            _wav(root / f"jvs{k:03d}/parallel100/wav24kHz16bit/VOICEACTRESS100_{s:03d}.wav", k)
    (root / "README.txt").write_text("not a speaker")
    (root / "jvs_tools").mkdir()
    return root


def test_jvs_all_speakers_through_stage0(root, tmp_path):
    jvs = _jvs_tree(tmp_path)
    spk = {**SMALL, "corpus": {"name": "jvs", "root": str(jvs), "speakers": ["*"]}}
    write_conf(root, "spk", "jvs_all", spk)
    summary = prepare.run("jvs_all", Layout(root))
    assert (summary["speakers"], summary["voices"], summary["pairs"]) == (3, 3, 6)
    assert sum(summary["counts"].values()) == 6 * 5 + 2  # sentence 6: jvs001 <-> jvs002 only
    lists = _lists(root, "jvs_all")
    sentence_of = {}
    for split in SPLITS:
        labels = read_labels(root / f"data/jvs_all/{split}/labels.tsv")
        assert set(labels) == set(lists[split])
        assert set(labels) == set(read_scp(root / f"data/jvs_all/{split}/tgt.scp"))
        for utt, lab in labels.items():
            assert utt == f"{lab.src_speaker}__{lab.tgt_speaker}__{lab.sentence}"
            assert f"/{lab.src_speaker}/" in lists[split][utt]
            sentence_of.setdefault(lab.sentence, set()).add(split)
    assert all(len(s) == 1 for s in sentence_of.values())  # no sentence in two splits
    dev = {s for s, k in sentence_of.items() if k == {"dev"}}
    assert len(dev) == 1 and len(lists["dev"]) in (2, 6)  # every pair of the dev sentence
    table = json.loads((root / "dump/jvs_all/speakers.json").read_text())
    assert table["speakers"] == ["jvs001", "jvs002", "jvs003"] and table["emotions"] == [NEUTRAL]
    report = (root / "data/jvs_all/report.txt").read_text()
    assert "## utterances per speaker: 3\njvs001\t6\njvs002\t6\njvs003\t5\n" in report
    assert "jvs001->jvs002\t6\t" in report and "jvs003->jvs001\t5\t" in report


def test_jvs_listed_speakers_and_the_legacy_pair(root, tmp_path):
    jvs = _jvs_tree(tmp_path)
    corpus = {"name": "jvs", "root": str(jvs), "speakers": ["jvs003", "jvs001"]}
    write_conf(root, "spk", "two", {**SMALL, "corpus": corpus})
    assert prepare.run("two", Layout(root))["pairs"] == 2
    pair = {"name": "jvs", "root": str(jvs), "src_speaker": "jvs001", "tgt_speaker": "jvs003"}
    write_conf(root, "spk", "one", {**SMALL, "corpus": pair})
    prepare.run("one", Layout(root))
    lists = _lists(root, "one")
    ids = sorted(u for s in SPLITS for u in lists[s])
    assert ids == [f"VOICEACTRESS100_{s:03d}" for s in range(1, 6)]  # ids stay the stems
    expected = prepare.make_split(ids, Split(dev=1, eval=1, seed=0))
    assert {s: sorted(lists[s]) for s in SPLITS} == expected  # the split of before
    labels = read_labels(root / "data/one/train/labels.tsv")
    assert {(v.src_speaker, v.tgt_speaker) for v in labels.values()} == {("jvs001", "jvs003")}


def _parallel(base: Path, names: list[str], seed: int) -> dict[str, str]:
    for side in ("s", "t"):
        for n in names:
            _wav(base / side / f"{n}.wav", seed + (side == "t"))
    return {"name": "parallel", "src_wav_root": str(base / "s"), "tgt_wav_root": str(base / "t")}


def test_two_parallel_corpora_in_one_spk(root, tmp_path):
    a = {
        **_parallel(tmp_path / "a", ["u1", "u2", "u3", "u4"], 0),
        "src_speaker": "al",
        "tgt_speaker": "bo",
    }
    b = {
        **_parallel(tmp_path / "b", ["u2", "u3", "u4", "u5"], 2),
        "src_speaker": "cy",
        "tgt_speaker": "di",
    }
    b["tgt_emotion"] = "calm"
    write_conf(root, "spk", "two", {**SMALL, "corpora": [a, b]})
    summary = prepare.run("two", Layout(root))
    assert (summary["speakers"], summary["pairs"], summary["sentences"]) == (4, 2, 5)
    ids = sorted(u for s in SPLITS for u in _lists(root, "two")[s])
    assert ids == [
        "al__bo__u1",
        "al__bo__u2",
        "al__bo__u3",
        "al__bo__u4",
        "cy__di-calm__u2",
        "cy__di-calm__u3",
        "cy__di-calm__u4",
        "cy__di-calm__u5",
    ]
    table = SpeakerTable.load(root / "dump/two/speakers.json")
    assert table.speakers == ["al", "bo", "cy", "di"] and table.emotions == [NEUTRAL, "calm"]
    write_conf(root, "spk", "cross", {**SMALL, "corpora": [a, b], "pairs": [["al", "di:calm"]]})
    prepare.run("cross", Layout(root))
    lists = _lists(root, "cross")
    assert sorted(u for s in SPLITS for u in lists[s]) == [
        "u2",
        "u3",
        "u4",
    ]  # one pair: sentence ids
    src = {u: p for s in SPLITS for u, p in lists[s].items()}
    assert "/a/s/" in src["u2"]


def test_split_train_through_stage0(root, tmp_path):
    corpus = _parallel(tmp_path / "c", [f"u{i}" for i in range(10)], 0)
    write_conf(root, "spk", "big", {**SMALL, "corpus": corpus})
    small = {**SMALL, "corpus": corpus, "split": {**SMALL["split"], "train": 3}}
    write_conf(root, "spk", "small", small)
    prepare.run("big", Layout(root))
    summary = prepare.run("small", Layout(root))
    big, cut = _lists(root, "big"), _lists(root, "small")
    assert summary["counts"] == {"train": 3, "dev": 1, "eval": 1}
    assert (cut["dev"], cut["eval"]) == (big["dev"], big["eval"])
    assert set(cut["train"]) < set(big["train"])
    assert (
        "left out by split.train (3 sentences): 5" in (root / "data/small/report.txt").read_text()
    )


# ---------------------------------------------------------------- config errors and the demo


@pytest.mark.parametrize("data", [{}, {"corpus": {"name": "demo"}, "corpora": [{"name": "demo"}]}])
def test_corpus_and_corpora_exactly_one(data):
    with pytest.raises(ConfigError, match="set exactly one of 'corpus'.*or 'corpora'"):
        build(SpkConfig, data)


def test_unknown_voice_in_pairs_stops_stage0(root, tmp_path):
    corpus = _parallel(tmp_path / "c", ["u1", "u2", "u3"], 0)
    write_conf(root, "spk", "bad", {**SMALL, "corpora": [corpus], "pairs": [["src", "tgtt"]]})
    with pytest.raises(
        ConfigError, match="pairs names unknown voices tgtt; known voices: src, tgt"
    ):
        prepare.run("bad", Layout(root))
    assert not (root / "data/bad/train").exists()


def test_demo_configs_keep_their_pin_and_audio():
    """conf/spk/demo.yaml: the hash frozen before labels existed, and its audio folder."""
    layout = Layout(REPO)
    demo, small = load_spk("demo", REPO), load_spk("demo_small", REPO)
    assert config_hash(demo) == "0f60866d26add959"
    text = layout.resolve(demo.corpus.text)
    assert corpus_dir(layout, demo.corpus, text).name == "demo-a4c715428f"
    assert corpus_dir(layout, small.corpus, text) == corpus_dir(layout, demo.corpus, text)
    assert (small.corpus.src_speaker, small.corpus.tgt_speaker) == ("m3", "f2")
    multi = load_spk("demo_multi", REPO)
    m3 = next(v for v in multi.corpus.voices if (v.speaker, v.emotion) == ("m3", NEUTRAL))
    assert {k: getattr(m3, k) for k in vars(demo.corpus.src)} == vars(demo.corpus.src)
    assert "f2" not in {v.variant for v in multi.corpus.voices}


def test_demo_multi_caches_audio_per_voice(root):
    voices = [
        {"speaker": "m3", "variant": "m3", "pitch": 40, "range": 30},
        {"speaker": "m3", "emotion": "fast", "variant": "m3", "rate": 260},
        {"speaker": "f1", "variant": "f1", "pitch": 70},
    ]
    corpus = {"name": "demo_multi", "first": 241, "num_utts": 3, "voices": voices}
    write_conf(root, "spk", "dm", {**SMALL, "corpus": corpus})
    summary = prepare.run("dm", Layout(root), nj=2)
    assert (summary["speakers"], summary["voices"], summary["pairs"]) == (2, 3, 6)
    folders = sorted((root / "data/_corpora").iterdir())
    assert len(folders) == 3 and all(len(list(f.glob("*.wav"))) == 3 for f in folders)
    assert sorted(p.name for p in folders[0].iterdir()) == [
        f"harvard_{i}.wav" for i in (241, 242, 243)
    ]
    stamps = {p: p.stat().st_mtime_ns for f in folders for p in f.iterdir()}
    fewer = {**corpus, "voices": voices[::2]}  # a subset of the voices reuses their files
    write_conf(root, "spk", "dm2", {**SMALL, "corpus": fewer})
    assert prepare.run("dm2", Layout(root), nj=2)["pairs"] == 2
    assert stamps == {p: p.stat().st_mtime_ns for f in folders for p in f.iterdir()}
    assert sorted((root / "data/_corpora").iterdir()) == folders
    ids = read_labels(root / "data/dm/train/labels.tsv")
    assert any(u.startswith("m3-fast__f1__harvard_24") for u in ids)


@pytest.mark.parametrize(
    "corpus",
    [
        {"name": "demo", "src_speaker": "al ice"},
        {"name": "parallel", "src_wav_root": "a", "tgt_wav_root": "b", "tgt_emotion": ""},
        {"name": "demo_multi", "voices": [{"speaker": "a"}, {"speaker": "a"}]},
    ],
)
def test_bad_speaker_names_are_config_errors(corpus):
    with pytest.raises(ConfigError, match="must be non-empty|names a twice"):
        build(SpkConfig, {"corpus": corpus})
