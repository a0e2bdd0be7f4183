"""Text front-ends (espeak, chars, openjtalk), the symbol table and the spk text block."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import REPO

from vc_toolkit.config import ConfigError, build, load_spk
from vc_toolkit.config.core import pinned_dict
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.config.text import TextConfig
from vc_toolkit.errors import UserError
from vc_toolkit.text.frontend import FRONTENDS, split_pauses, text_to_ids
from vc_toolkit.text.phone_times import boundary_errors, read_phone_times, token_starts
from vc_toolkit.text.symbols import PAD, WORD_BOUNDARY, SymbolTable, segments


def _espeak(**kw) -> list[str]:
    text = kw.pop("text")
    return FRONTENDS.get("espeak")(TextConfig(**kw)).symbols_of(text)


def test_symbol_ids_do_not_depend_on_the_order_of_the_texts():
    texts = [list("hello"), list("world"), ["ʃ", "ˈ", "iː", ","], list("abc")]
    tables = []
    for seed in range(5):
        shuffled = [list(t) for t in texts]
        random.Random(seed).shuffle(shuffled)
        for t in shuffled:
            random.Random(seed).shuffle(t)
        tables.append(SymbolTable.build(shuffled, pauses=[","], base=[WORD_BOUNDARY]))
    assert all(t == tables[0] for t in tables)
    table = tables[0]
    assert table.symbols[0] == PAD and table.symbols[1:] == sorted(table.symbols[1:])
    ids = table.encode(list("hello"))
    assert 0 not in ids and table.decode(ids + [0, 0]) == list("hello")
    assert table.pause_ids == [table.encode([","])[0]]
    assert len(table) == len(set("helloworldabc")) + 6  # pad, ʃ ˈ iː , and the boundary


def test_the_table_round_trips_through_json(tmp_path):
    table = SymbolTable.build([["ð", "ə", ".", " "]], pauses=["."], meta={"spk": "x"})
    table.save(tmp_path / "symbols.json")
    back = SymbolTable.load(tmp_path / "symbols.json")
    assert back == table and back.meta == {"spk": "x"} and back.pause_ids == table.pause_ids
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="not a symbol table"):
        SymbolTable.load(tmp_path / "bad.json")
    with pytest.raises(UserError, match="run stage 1"):
        SymbolTable.load(tmp_path / "missing.json")


def test_unknown_symbols_are_reported_in_one_line_naming_each():
    table = SymbolTable.build([list("abc")])
    with pytest.raises(UserError) as err:
        table.encode(["a", "x", "ʔ", "x"], where="utterance u1")
    msg = str(err.value)
    assert "\n" not in msg and "'x'" in msg and "'ʔ'" in msg and "utterance u1" in msg
    assert "3 of 4 tokens" in msg


def test_segments_end_after_each_pause():
    assert segments([4, 5, 1, 6, 7, 2], [1, 2]) == [3, 3]
    assert segments([4, 1, 5], [1]) == [2, 1]
    assert segments([4, 5], [1]) == [2]


def test_pauses_are_split_off_except_inside_numbers():
    assert split_pauses("Yes, 3.50 at 10:30. Done!?", ",.!?:") == [
        ("Yes", ","),
        ("3.50 at 10:30", "."),
        ("Done", "!"),
    ]
    assert split_pauses("今日は、晴れ。", "、。") == [("今日は", "、"), ("晴れ", "。")]


def test_espeak_gives_the_phonemes_of_a_known_word():
    assert _espeak(text="hello") == ["h", "ə", "l", "ˈ", "oʊ"]
    assert _espeak(text="hello", stress="attached") == ["h", "ə", "l", "ˈoʊ"]
    assert _espeak(text="hello", stress="none") == ["h", "ə", "l", "oʊ"]
    # ascii names; the stress mark is the IPA one, so it never reads as a comma pause
    assert _espeak(text="hello", phonemes="ascii") == ["h", "@", "l", "ˈ", "oU"]


def test_espeak_keeps_word_boundaries_and_punctuation_as_pauses():
    got = _espeak(text="Hello world, again!")
    assert got[:6] == ["h", "ə", "l", "ˈ", "oʊ", WORD_BOUNDARY]
    assert got.count(WORD_BOUNDARY) == 1  # none next to the comma pause
    assert got[got.index(",") + 1] != WORD_BOUNDARY and got[-1] == "!"
    assert WORD_BOUNDARY not in _espeak(text="Hello world", word_boundary=False)
    assert "." not in _espeak(text="It costs 3.50 dollars")  # a decimal point, no pause


def test_espeak_refuses_an_unknown_language_in_one_line():
    with pytest.raises(UserError, match="text.language") as err:
        _espeak(text="x", language="no-such-language")
    assert "\n" not in str(err.value)


def test_chars_frontend_lowercases_keeps_pauses_and_drops_other_punctuation():
    front = FRONTENDS.get("chars")(TextConfig(frontend="chars"))
    assert front.symbols_of('He said: "Go-o," then.') == [
        *"he",
        " ",
        *"said",
        ":",
        *"goo",
        ",",
        *"then",
        ".",
    ]
    upper = FRONTENDS.get("chars")(TextConfig(frontend="chars", lowercase=False))
    assert upper.symbols_of("Ab") == ["A", "b"]


def test_text_to_ids_with_a_fixed_charset_reports_letters_outside_it():
    cfg = TextConfig(frontend="chars", charset="abcdefghijklmnopqrstuvwxyz")
    front = FRONTENDS.get("chars")(cfg)
    table = SymbolTable.build([], front.pause_symbols, front.inventory())
    ids = text_to_ids("Bad, cab.", cfg, table)
    assert table.decode(ids) == [*"bad", ",", *"cab", "."]
    with pytest.raises(UserError, match="'é'") as err:
        text_to_ids("café", cfg, table)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="no chars symbols"):
        text_to_ids("!!", cfg, table)


def test_openjtalk_frontend_gives_japanese_phonemes_offline():
    pytest.importorskip("pyopenjtalk")
    front = FRONTENDS.get("openjtalk")(TextConfig(frontend="openjtalk"))
    assert front.symbols_of("こんにちは、世界。") == [
        *["k", "o", "N", "n", "i", "ch", "i", "w", "a"],
        "、",
        *["s", "e", "k", "a", "i"],
        "。",
    ]


def test_text_block_validation_names_the_fix():
    base = {"sample_rate": 16000}
    with pytest.raises(ConfigError, match="add a text block"):
        build(SpkConfig, {**base, "corpus": {"name": "ljspeech"}})
    with pytest.raises(ConfigError, match="has no transcripts"):
        build(SpkConfig, {**base, "corpus": {"name": "demo"}, "text": {}})
    with pytest.raises(ConfigError, match="mix text corpora"):
        build(SpkConfig, {**base, "corpora": [{"name": "demo"}, {"name": "jsut"}], "text": {}})
    with pytest.raises(ConfigError, match="text.pauses"):
        build(SpkConfig, {**base, "corpus": {"name": "jsut"}, "text": {"pauses": ", a"}})
    cfg = build(SpkConfig, {**base, "corpus": {"name": "jsut"}, "text": {"frontend": "chars"}})
    assert cfg.is_text and not load_spk("demo", REPO).is_text


def test_parallel_spks_keep_their_pinned_form():
    """The text block is added later: a parallel spk's pinned config (its fingerprint) has no
    trace of it."""
    for name in ("demo", "demo_multi", "demo_small"):
        pinned = pinned_dict(load_spk(name, REPO))
        assert "text" not in pinned
        assert "phone_times" not in str(pinned)


def test_phone_times_give_each_phoneme_token_its_reference_start(tmp_path):
    path = tmp_path / "u.tsv"
    path.write_text(
        "start\tend\tphone\tword\n0.2\t0.3\th\t0\n0.3\t0.5\tˈoʊ\t0\n0.5\t0.7\t_\t-\n"
        "0.7\t0.8\tl\t1\n",
        encoding="utf-8",
    )
    rows = read_phone_times(path)
    starts = token_starts(["h", "ˈ", "oʊ", ",", "l"], rows, pauses=",")
    assert starts[[0, 2, 4]].tolist() == [0.2, 0.3, 0.7] and np.isnan(starts[[1, 3]]).all()
    assert token_starts(["h", "ˈ", "oʊ", ",", "d"], rows, pauses=",") is None
    assert token_starts(["h", "ˈ", "oʊ"], rows, pauses=",") is None  # a phoneme left over
    # an alignment that starts each token exactly at its reference frame edge scores 0
    hop, sr = 100, 1000  # 0.1 s frames; edge of frame f at head + (f - 0.5) * 0.1
    durations = np.array([1, 0, 4, 0, 1])
    err = boundary_errors(durations, starts, 0.25, hop, sr, reduction_factor=1)
    np.testing.assert_allclose(err, [0.0, 0.0, 0.0], atol=1e-9)
    err = boundary_errors(np.array([2, 0, 3, 0, 1]), starts, 0.25, hop, sr, 1)
    np.testing.assert_allclose(err, [0.0, 0.1, 0.0], atol=1e-9)
