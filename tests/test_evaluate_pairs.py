"""Stage 4 per speaker pair: each pair's rows and its own floors, from the right utterances.

No model is trained: the "converted" files of tag 't' are written by hand (a tone whose
length differs per utterance) and scores come from the fake ``score_pair`` of
test_evaluate (``mcd`` = seconds of the scored audio, ``f0_rmse_hz`` = its RMS), so each
per-pair mean can be recomputed from ``per_utt.tsv``.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_TAG, copy_root, write_conf
from test_evaluate import fake_score

from vc_toolkit.config import load_tag
from vc_toolkit.config.resolve import dump_yaml
from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.data.labels import LABELS_FILE, Labels, write_labels
from vc_toolkit.eval import stage as ev
from vc_toolkit.eval.metrics import METRIC_KEYS
from vc_toolkit.eval.pairs import pair_table
from vc_toolkit.paths import Layout

PAIRS = {"dev": ["a->b", "a->c"], "eval": ["a->c", "a->b"]}


def _tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _fake_tag(root) -> None:
    """Tag 't' with hand-written converted speech for every dev/eval utterance."""
    layout = Layout(root)
    write_conf(root, "tag", "t", TINY_TAG)
    layout.exp("t").mkdir(parents=True)
    dump_yaml(load_tag("t", root), layout.exp("t") / "config.yaml")
    conv = layout.convert_dir("t", "best")
    for k, split in enumerate(("dev", "eval")):
        for i, utt in enumerate(DumpSplit(layout.dump("tiny") / split).utt_ids):
            n = 16000 * (4 + 2 * k + i + i * k) // 10  # pairs differ in mean length
            tone = 0.1 * (1 + i + 2 * k) * np.sin(2 * np.pi * 150 * np.arange(n) / 16000)
            (conv / split).mkdir(parents=True, exist_ok=True)
            sf.write(conv / split / f"{utt}.wav", tone, 16000, subtype="PCM_16")
    (conv / "settings.json").write_text(json.dumps({"checkpoint": "best"}))


def _relabel(root) -> dict[str, dict[str, str]]:
    """Dev/eval utterances as pairs a->b and a->c; returns split → utt → pair."""
    dump = Layout(root).dump("tiny")
    out = {}
    for split, names in PAIRS.items():
        utts = DumpSplit(dump / split).utt_ids
        rows = {u: Labels(u, *names[i].split("->")) for i, u in enumerate(utts)}
        write_labels(dump / split / LABELS_FILE, rows)
        out[split] = {u: lab.pair for u, lab in rows.items()}
    return out


def _evaluate(root):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "score_pair", fake_score)
        return ev.run(Layout(root), "t", "best", nj=1, progress=False)


@pytest.fixture(scope="module")
def two_pairs(tiny_features_root, tmp_path_factory):
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("pairs"))
    _fake_tag(root)
    pairs = _relabel(root)
    return root, pairs, _evaluate(root)


def test_each_pair_is_scored_on_its_own_utterances_with_its_own_floors(two_pairs):
    root, pairs, summary = two_pairs
    out = root / "exp/t/eval/best"
    per_utt = {
        (split, r["utt_id"]): r for split in PAIRS for r in _tsv(out / split / "per_utt.tsv")
    }
    rows = _tsv(out / "pairs.tsv")
    assert [(r["pair"], r["split"]) for r in rows] == [
        (p, s) for p in ("a->b", "a->c") for s in ("dev", "eval", "overall")
    ]
    assert list(rows[0])[:6] == ["pair", "src", "tgt", "split", "listed", "scored"]
    assert {f"{p}_{m}" for p in ("conv", "floor", "voc") for m in METRIC_KEYS} <= set(rows[0])
    for row in rows:
        assert (row["src"], row["tgt"]) == tuple(row["pair"].split("->"))
        mine = [
            v
            for (split, utt), v in per_utt.items()
            if pairs[split][utt] == row["pair"] and row["split"] in (split, "overall")
        ]
        assert int(row["listed"]) == int(row["scored"]) == len(mine)
        for col in ("conv_mcd", "floor_mcd", "voc_mcd", "conv_f0_rmse_hz", "floor_f0_rmse_hz"):
            expected = np.mean([float(v[col]) for v in mine])
            assert float(row[col]) == pytest.approx(expected, rel=1e-6), (row["pair"], col)
    # the two pairs really differ (different utterances), and the tsv is the summary's
    ab, ac = (summary["per_pair"][p]["overall"] for p in ("a->b", "a->c"))
    assert ab["converted"]["mcd"]["mean"] != ac["converted"]["mcd"]["mean"]
    assert ab["source"]["mcd"]["mean"] != ac["source"]["mcd"]["mean"]
    overall = next(r for r in rows if r["pair"] == "a->c" and r["split"] == "overall")
    assert float(overall["floor_mcd"]) == pytest.approx(ac["source"]["mcd"]["mean"], rel=1e-6)
    on_disk = json.loads((out / "summary.json").read_text())
    assert set(on_disk["per_pair"]) == {"a->b", "a->c"}
    assert on_disk["per_pair"]["a->b"]["src"] == "a" and on_disk["per_pair"]["a->b"]["tgt"] == "b"
    assert on_disk["per_pair"]["a->b"]["overall"]["counts"]["scored"] == 2


def test_the_log_shows_a_table_of_the_pairs(two_pairs, caplog):
    root, _, summary = two_pairs
    with caplog.at_level("INFO", logger="evaluate"), pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "score_pair", fake_score)
        ev.run(Layout(root), "t", "best", nj=1, progress=False, force=True)
    text = caplog.text
    assert "per speaker pair" in text
    for line in pair_table(summary["per_pair"]):
        assert line in text
    mcd = summary["per_pair"]["a->c"]["overall"]["converted"]["mcd"]["mean"]
    shown = next(
        line
        for line in text.splitlines()
        if line.rstrip().endswith(pair_table(summary["per_pair"])[2].strip())
    )
    assert f"{mcd:.2f}" in shown


def test_one_to_one_has_a_single_pair_equal_to_the_overall(tiny_features_root, tmp_path, caplog):
    root = copy_root(tiny_features_root, tmp_path)
    _fake_tag(root)
    with caplog.at_level("INFO", logger="evaluate"):
        summary = _evaluate(root)
    (name,) = summary["per_pair"]
    block = summary["per_pair"][name]
    assert block["overall"] == summary["overall"]
    for split in ("dev", "eval"):
        assert block["splits"][split]["converted"] == summary["splits"][split]["converted"]
    rows = _tsv(root / "exp/t/eval/best/pairs.tsv")
    assert [r["split"] for r in rows] == ["dev", "eval", "overall"]
    mean = summary["overall"]["converted"]["mcd"]["mean"]
    assert float(rows[-1]["conv_mcd"]) == pytest.approx(mean, rel=1e-6)
    assert "per speaker pair" not in caplog.text  # one pair: the overall lines say it all
    assert not math.isnan(float(rows[-1]["voc_mcd"]))
