"""Reports on small fabricated exp/ trees: leaderboard, diff, memo, plots, CLI."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest
from conftest import REPO, write_conf

from vc_toolkit.bin import report as report_cli
from vc_toolkit.config import SpkConfig, TagConfig, build
from vc_toolkit.config.resolve import dump_yaml
from vc_toolkit.data.labels import Labels, SpeakerTable, write_labels
from vc_toolkit.errors import UserError
from vc_toolkit.eval.report import COLUMN_KEYS, leaderboard, render, select_tags, write_leaderboard
from vc_toolkit.eval.report_diff import tag_diff
from vc_toolkit.eval.report_memo import lineage_tree, memo
from vc_toolkit.paths import Layout

SPK = {
    "corpus": {"name": "parallel", "src_wav_root": "w/src", "tgt_wav_root": "w/tgt"},
    "sample_rate": 16000,
}


def _spk(root, name, fingerprint, files, extra=None, note=""):
    """Frozen spk + lists of files ``{(split, side, utt): size}`` (files are created)."""
    cfg = build(SpkConfig, {**SPK, **(extra or {}), "note": note})
    dump_yaml(cfg, root / "dump" / name / "config.yaml")
    fp = {
        "fingerprint": fingerprint,
        "config_hash": "c" + fingerprint[:3],
        "files_hash": "f" + fingerprint[:3],
        "num_files": len(files),
    }
    (root / "dump" / name / "fingerprint.json").write_text(json.dumps(fp))
    summary = {
        "pairs": 12,
        "kept": 10,
        "dropped": 2,
        "kept_per_split": {"train": 6, "dev": 2, "eval": 2},
        "dropped_per_reason": {"silent": 2},
    }
    (root / "dump" / name / "summary.json").write_text(json.dumps(summary))
    lists: dict = {}
    for (split, side, utt), size in files.items():
        path = f"w/{name}/{side}/{utt}.wav"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x" * size)
        lists.setdefault((split, side), []).append(f"{utt} {path}")
    for split in ("train", "dev", "eval"):
        for side in ("src", "tgt"):
            scp = root / "data" / name / split / f"{side}.scp"
            scp.parent.mkdir(parents=True, exist_ok=True)
            scp.write_text("".join(line + "\n" for line in lists.get((split, side), [])))


def _eval(mcd, f0, floor_mcd, floor_f0, voc_mcd=None, voc_f0=None):
    def side(m, f):
        return {
            "mcd": {"mean": m},
            "f0_rmse_hz": {"mean": f},
            "vuv_error": {"mean": 0.1},
            "ddur": {"mean": 0.05},
        }

    block = {"converted": side(mcd, f0), "source": side(floor_mcd, floor_f0)}
    if voc_mcd is not None:  # evaluations made before the vocoder floor have none
        block["vocoder"] = side(voc_mcd, voc_f0)
    return {"splits": {"eval": block}}


def _tag(root, tag, data, *, done=10, best=0.5, evals=None, lineage=None, commit="abc", fp="fp1"):
    """A frozen tag in exp/ with summary, history, lineage and evaluations."""
    exp = root / "exp" / tag
    dump_yaml(build(TagConfig, data), exp / "config.yaml")
    losses = {"post_mel": best, "pitch": 0.3, "energy": 0.2, "duration": 0.1, "total": 1.0}
    summary = {
        "tag": tag,
        "spk": data["spk"],
        "spk_fingerprint": fp,
        "epochs_done": done,
        "epochs_planned": 20,
        "steps": 10 * done,
        "finished": done == 20,
        "seconds_per_epoch": 12.5,
        "best": {"value": best, "epoch": done, "losses": losses},
        "code": {"vc_toolkit": "0.1.0", "torch": "2.13.0", "commit": commit},
    }
    (exp / "summary.json").write_text(json.dumps(summary))
    rows = [
        {"epoch": e, "train": {"post_mel": 1.0 / e}, "dev": {"post_mel": 1.1 / e}}
        for e in range(1, done + 1)
    ]
    (exp / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lineage = lineage or [{"tag": tag, "spk": data["spk"], "spk_fingerprint": fp}]
    (exp / "lineage.json").write_text(json.dumps(lineage))
    for name, values in (evals or {}).items():
        (exp / "eval" / name).mkdir(parents=True)
        (exp / "eval" / name / "summary.json").write_text(json.dumps(_eval(*values)))


@pytest.fixture
def exp_root(tmp_path):
    root = tmp_path / "recipe"
    files = {("train", "src", "u1"): 10, ("train", "tgt", "u1"): 11, ("dev", "src", "u2"): 12}
    _spk(root, "s1", "fp1", files, note="first data")
    more = {**files, ("train", "src", "u1"): 99, ("eval", "src", "u3"): 5}
    _spk(root, "s2", "fp2", more, {"trim": {"silence_thresh_t": -60}}, note="quieter trim")
    write_conf(root, "spk", "s1", SPK)
    write_conf(root, "spk", "s2", {"base": "s1", "trim": {"silence_thresh_t": -60}})
    base = {"spk": "s1", "note": "baseline", "train": {"batch_size": 16}}
    write_conf(root, "tag", "N2C_1", base)
    write_conf(
        root,
        "tag",
        "N2C_2",
        {"base": "N2C_1", "note": "gmm", "model": {"prosody": {"type": "gmm", "use_global": True}}},
    )
    ft = {
        "spk": "s2",
        "note": "fine-tune | bigger batch",
        "train": {"batch_size": 32},
        "pretrain": {"tag": "N2C_2", "checkpoint": "latest"},
    }
    write_conf(root, "tag", "N2C_10", ft)
    _tag(
        root,
        "N2C_1",
        base,
        best=0.40,
        evals={"best": (7.0, 30.0, 9.0, 60.0, 5.0, 20.0), "latest": (1.0, 1.0, 1.0, 1.0)},
    )
    _tag(
        root,
        "N2C_2",
        {**base, "note": "gmm", "model": {"prosody": {"type": "gmm", "use_global": True}}},
        best=0.35,
        evals={"latest": (6.5, 28.0, 9.0, 60.0)},
    )
    chain = [
        {"tag": "N2C_10", "spk": "s2", "spk_fingerprint": "fp2"},
        {
            "tag": "N2C_2",
            "spk": "s1",
            "spk_fingerprint": "fp1",
            "checkpoint": "exp/N2C_2/checkpoints/latest.pt",
            "epoch": 10,
        },
    ]
    _tag(root, "N2C_10", ft, done=20, best=0.45, lineage=chain, commit="def+dirty", fp="fp2")
    for skip in ("optuna", "report"):  # not tags, even with a summary inside
        (root / "exp" / skip).mkdir()
        (root / "exp" / skip / "summary.json").write_text("{}")
    return root


def _csv(records):
    return list(csv.DictReader(render(records, "csv").splitlines()))


def test_leaderboard_rows_in_natural_order(exp_root):
    rows = {r["tag"]: r for r in _csv(leaderboard(Layout(exp_root)))}
    assert list(rows) == ["N2C_1", "N2C_2", "N2C_10"]
    one, two, ten = rows["N2C_1"], rows["N2C_2"], rows["N2C_10"]
    assert one["eval_ckpt"] == "best" and float(one["mcd"]) == 7.0  # best preferred to latest
    assert float(one["floor_mcd"]) == 9.0 and float(one["floor_f0_rmse"]) == 60.0
    assert float(one["voc_mcd"]) == 5.0 and float(one["voc_f0_rmse"]) == 20.0
    assert two["voc_mcd"] == two["voc_f0_rmse"] == ""  # evaluated before the vocoder floor
    assert two["eval_ckpt"] == "latest" and float(two["f0_rmse"]) == 28.0
    assert two["prosody"] == "gmm+global" and one["prosody"] == "none"
    assert ten["pretrain"] == "N2C_2" and ten["batch"] == "32" and ten["spk"] == "s2"
    assert ten["mcd"] == "" and ten["eval_ckpt"] == ""  # no evaluation
    assert one["warmup"] == "4000@16" and one["epochs"] == "10"
    assert float(one["post_mel"]) == 0.40 and one["note"] == "baseline"
    table = render(leaderboard(Layout(exp_root)), "table").splitlines()
    assert table[0].split()[:3] == ["tag", "spk", "pretrain"]
    assert "src MCD  src F0 RMSE  voc MCD  voc F0 RMSE" in table[0]
    n2c1 = next(line for line in table if line.startswith("N2C_1 "))
    assert n2c1.split()[-7:] == ["9.00", "60.0", "5.00", "20.0", "-", "-", "baseline"]
    n2c10 = next(line for line in table if line.startswith("N2C_10"))
    assert " 20/20 " in n2c10 and " - " in n2c10  # epochs done/planned; missing shown as '-'


def test_leaderboard_sorting_and_selection(exp_root):
    layout = Layout(exp_root)
    by_mcd = [r.tag for r in leaderboard(layout, sort="mcd")]
    assert by_mcd == ["N2C_2", "N2C_1", "N2C_10"]  # ascending, missing last
    assert [r.tag for r in leaderboard(layout, sort="mcd", reverse=True)] == [
        "N2C_1",
        "N2C_2",
        "N2C_10",
    ]
    assert [r.tag for r in leaderboard(layout, sort="post_mel")] == ["N2C_2", "N2C_1", "N2C_10"]
    assert [r.tag for r in leaderboard(layout, sort="epochs", reverse=True)][0] == "N2C_10"
    assert select_tags(layout, ["N2C_1*"]) == ["N2C_1", "N2C_10"]
    assert select_tags(layout, ["N2C_2,N2C_10"]) == ["N2C_2", "N2C_10"]
    with pytest.raises(UserError, match="unknown leaderboard column 'speed'"):
        leaderboard(layout, sort="speed")


def test_leaderboard_formats_and_files(exp_root, tmp_path):
    records = leaderboard(Layout(exp_root))
    md = render(records, "md").splitlines()
    assert md[1].startswith("|---") and len(md) == 2 + len(records)
    assert all(line.count("|") - line.count("\\|") == len(COLUMN_KEYS) + 1 for line in md)
    assert "fine-tune \\| bigger batch" in md[-1]
    assert next(csv.reader(render(records, "csv").splitlines())) == list(COLUMN_KEYS)
    table = render(records, "table").splitlines()
    col = table[0].index("spk")  # every row has its spk where the header says
    assert [line[col : col + 3] for line in table] == ["spk", "---", "s1 ", "s1 ", "s2 "]
    written = write_leaderboard(records, tmp_path / "out")
    assert [p.name for p in written] == [
        "leaderboard.txt",
        "leaderboard.md",
        "leaderboard.csv",
        "loss_curves.png",
    ]
    assert (tmp_path / "out/loss_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_diff_lists_config_fingerprint_and_file_differences(exp_root):
    text = "\n".join(tag_diff(Layout(exp_root), "N2C_1", "N2C_10"))
    assert "train.batch_size: 16 -> 32" in text
    assert "spk: 's1' -> 's2'" in text
    assert "trim.silence_thresh_t: -100.0 -> -60.0" in text
    assert "pretrain: None -> {'tag': 'N2C_2'" in text
    assert "fingerprints differ" in text
    assert "only in B: 1 (eval/src/u3 w/s2/src/u3.wav)" in text
    assert "train/src/u1: w/s1/src/u1.wav (10 B) -> w/s2/src/u1.wav (99 B)" in text
    assert "A: N2C_1" in text and "B: N2C_10 <- N2C_2 (latest, epoch 10, fp fp1)" in text
    assert "commit: abc -> def+dirty" in text
    assert "MCD: 7 -> -" in text


def test_diff_same_features_and_unknown_tag(exp_root):
    text = "\n".join(tag_diff(Layout(exp_root), "N2C_1", "N2C_2"))
    assert "same spk 's1'" in text and "fingerprints equal" in text
    assert "model.prosody.type: 'none' -> 'gmm'" in text
    with pytest.raises(UserError, match="unknown tag 'N2C_99'"):
        tag_diff(Layout(exp_root), "N2C_1", "N2C_99")


def test_diff_reports_a_conf_changed_since_frozen(exp_root):
    write_conf(
        exp_root, "tag", "N2C_1", {"spk": "s1", "note": "baseline", "train": {"batch_size": 8}}
    )
    text = "\n".join(tag_diff(Layout(exp_root), "N2C_1", "N2C_2"))
    assert "conf/tag/N2C_1.yaml changed since N2C_1 was frozen" in text
    assert "train.batch_size: 16 -> 8" in text


def test_memo_orders_tags_and_draws_the_lineage(exp_root):
    text = memo(Layout(exp_root))
    heads = [line[4:] for line in text.splitlines() if line.startswith("### ")]
    assert heads == ["s1", "s2", "N2C_1", "N2C_2", "N2C_10"]
    s2 = text[text.index("### s2") : text.index("## Experiments")]
    assert "- base: s1; changes:" in s2 and "`trim.silence_thresh_t: -100.0 -> -60.0`" in s2
    assert "fingerprint `fp2`" in s2 and "kept 10 of 12 pairs" in s2 and "(silent 2)" in s2
    n2 = text[text.index("### N2C_2") : text.index("### N2C_10")]
    assert "changes from base N2C_1:" in n2 and "`model.prosody.type: 'none' -> 'gmm'`" in n2
    assert "eval (latest): MCD 6.50 dB (source 9.00), F0 RMSE 28.0 Hz (source 60.0)" in n2
    n1 = text[text.index("### N2C_1") : text.index("### N2C_2")]
    assert (
        "MCD 7.00 dB (source 9.00, vocoder 5.00), F0 RMSE 30.0 Hz (source 60.0, vocoder 20.0)" in n1
    )
    n10 = text[text.index("### N2C_10") :]
    assert "changes from pretrain parent N2C_2:" in n10 and "pretrain: N2C_2 (latest)" in n10
    tree = text[text.index("```") :].splitlines()
    assert tree[1:3] == ["N2C_2", "└── N2C_10  (from latest)"]


def test_lineage_tree_branches():
    lines = lineage_tree({"a": None, "b": "a", "c": "a", "d": "c", "x": None})
    assert lines == ["a", "├── b", "└── c", "    └── d"]
    assert lineage_tree({"x": None}) == []


def test_cli_and_wrappers(exp_root, tmp_path, capsys):
    root = ["--root", str(exp_root)]
    assert report_cli.main(["leaderboard", *root, "--sort", "mcd", "--format", "md"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| N2C_2 |")
    assert report_cli.main(["diff", "N2C_1", "N2C_2", *root]) == 0
    assert "fingerprints equal" in capsys.readouterr().out
    assert report_cli.main(["memo", *root, "--out", str(tmp_path / "m.md")]) == 0
    assert (tmp_path / "m.md").read_text().startswith("# Experiment memo")
    assert (
        report_cli.main(["plot", "--tags", "N2C_*", *root, "--out", str(tmp_path / "c.png")]) == 0
    )
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert report_cli.main(["diff", "N2C_1", *root]) == 1
    assert "needs two tags" in capsys.readouterr().err
    for script, command in (("leaderboard", "leaderboard"), ("tag_diff", "diff"), ("memo", "memo")):
        path = REPO / "utils" / f"{script}.sh"
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
        assert f"vc-report {command}" in path.read_text() and ". ./path.sh" in path.read_text()


def _labels(root, spk, split, pairs):
    """A packed split's manifest and labels: utterance ``u<i>`` speaks ``pairs[i]``."""
    folder = root / "dump" / spk / split
    folder.mkdir(parents=True, exist_ok=True)
    utts = [f"{split}{i}" for i in range(len(pairs))]
    manifest = ["utt_id\tsrc_frames\ttgt_frames\tn_seg", *(f"{u}\t4\t4\t1" for u in utts)]
    (folder / "manifest.tsv").write_text("\n".join(manifest) + "\n")
    rows = {u: Labels(u, *p.split("->")) for u, p in zip(utts, pairs, strict=True)}
    write_labels(folder / "labels.tsv", rows)


def _pair_block(mcd, floor_mcd, n=2):
    side = {"mcd": {"mean": mcd}, "f0_rmse_hz": {"mean": 20.0 + mcd}}
    return {
        "converted": side,
        "source": {"mcd": {"mean": floor_mcd}, "f0_rmse_hz": {"mean": 50.0}},
        "vocoder": {},
        "counts": {"listed": n, "scored": n},
    }


@pytest.fixture
def pairs_root(exp_root):
    """s1 holds pairs a->b, a->c, b->a (N2C_1 evaluated per pair); s2 the pair m3->f2."""
    _labels(exp_root, "s1", "dev", ["a->b", "a->c"])
    _labels(exp_root, "s1", "eval", ["b->a", "a->b"])
    _labels(exp_root, "s2", "eval", ["m3->f2"])
    exp = exp_root / "exp"
    SpeakerTable(speakers=["a", "b", "c"]).save(exp / "N2C_1" / "speakers.json")
    ft = SpeakerTable(speakers=["a", "b", "c", "m3", "f2"], seeded_from={"m3": "a", "f2": "mean"})
    ft.save(exp / "N2C_10" / "speakers.json")
    path = exp / "N2C_1" / "eval" / "best" / "summary.json"
    summary = json.loads(path.read_text())
    summary["per_pair"] = {
        p: {"src": p[0], "tgt": p[-1], "splits": {"eval": _pair_block(m, f)}, "overall": {}}
        for p, m, f in (("a->b", 6.0, 9.5), ("b->a", 8.0, 9.0))
    }
    path.write_text(json.dumps(summary))
    return exp_root


def test_leaderboard_shows_the_pairs_of_each_tag(pairs_root):
    rows = {r["tag"]: r for r in _csv(leaderboard(Layout(pairs_root)))}
    assert rows["N2C_1"]["pairs"] == rows["N2C_2"]["pairs"] == "3 pairs (3 speakers)"
    assert rows["N2C_10"]["pairs"] == "m3->f2"
    assert "pairs" in COLUMN_KEYS
    table = render(leaderboard(Layout(pairs_root)), "table").splitlines()
    assert table[0].split()[:4] == ["tag", "spk", "pretrain", "pairs"]
    assert [r.tag for r in leaderboard(Layout(pairs_root), sort="pairs")][0] == "N2C_1"


def test_pairs_come_from_the_evaluation_without_a_dump(exp_root):
    path = exp_root / "exp" / "N2C_2" / "eval" / "latest" / "summary.json"
    summary = json.loads(path.read_text())
    summary["per_pair"] = {"x->y": {}, "y->x": {}}
    path.write_text(json.dumps(summary))
    rows = {r["tag"]: r for r in _csv(leaderboard(Layout(exp_root)))}
    assert rows["N2C_2"]["pairs"] == "2 pairs (2 speakers)" and rows["N2C_1"]["pairs"] == ""


def test_memo_and_diff_show_speakers_and_pairs(pairs_root):
    text = memo(Layout(pairs_root))
    n1 = text[text.index("### N2C_1") : text.index("### N2C_2")]
    assert "- pairs: 3 pairs (3 speakers): a->b, a->c, b->a" in n1
    assert "- speakers of the model: a, b, c" in n1
    assert "  | pair | n | MCD | src MCD | voc MCD | F0 RMSE | src F0 RMSE | voc F0 RMSE |" in n1
    assert "  | a->b | 2 | 6.00 | 9.50 | - | 26.0 | 50.0 | - |" in n1
    assert "  | b->a | 2 | 8.00 | 9.00 | - | 28.0 | 50.0 | - |" in n1
    n10 = text[text.index("### N2C_10") :]
    assert "- pairs: m3->f2\n" in n10 and "| pair |" not in n10
    assert "- new speaker rows seeded: f2 from mean, m3 from a" in n10
    lines = tag_diff(Layout(pairs_root), "N2C_1", "N2C_10")
    section = lines[lines.index("== speakers (A -> B) ==") + 1 :]
    assert section[0] == "pairs: 3 pairs (3 speakers) -> m3->f2"
    assert section[1] == "speakers of the model: a, b, c -> a, b, c, m3, f2"
    assert section[2] == "pairs only in A: a->b, a->c, b->a"
    assert section[3] == "pairs only in B: m3->f2"
    same = tag_diff(Layout(pairs_root), "N2C_1", "N2C_2")
    assert "pairs: 3 pairs (3 speakers)" in same
