"""run.sh option parsing and stage selection (with --dry_run: commands are printed, not run)."""

from __future__ import annotations

import subprocess

import pytest
from conftest import REPO


def _parse(args: list[str]) -> subprocess.CompletedProcess:
    script = (
        'stage=0; stop_stage=4; force=false; tag=demo; _po_options="stage stop_stage force tag"\n'
        'help_message="usage: test"\n'
        f". {REPO}/utils/parse_options.sh\n"
        'echo "$stage|$stop_stage|$force|$tag"\n'
    )
    return subprocess.run(["bash", "-c", script, "test", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "0|4|false|demo"),
        (["--stage", "2", "--tag", "N2C_23"], "2|4|false|N2C_23"),
        (["--stop-stage", "1"], "0|1|false|demo"),
        (["--stop_stage=3", "--force"], "0|3|true|demo"),
        (["--force", "--stage", "1"], "1|4|true|demo"),
        (["--force", "false"], "0|4|false|demo"),
        (["--stage", "optuna"], "optuna|4|false|demo"),
    ],
)
def test_parse_options(args, expected):
    out = _parse(args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def test_unknown_option_suggests_closest():
    out = _parse(["--stgae", "1"])
    assert out.returncode == 2
    assert "unknown option --stgae (did you mean --stage?)" in out.stderr


def test_missing_value_and_stray_argument():
    assert "needs a value" in _parse(["--tag"]).stderr
    assert "unexpected argument 'foo'" in _parse(["foo"]).stderr


def test_help():
    out = _parse(["--help"])
    assert out.returncode == 0 and out.stdout.strip() == "usage: test"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / "run.sh"), "--dry_run", *args], capture_output=True, text=True, cwd=REPO
    )


def _commands(out: subprocess.CompletedProcess) -> list[str]:
    assert out.returncode == 0, out.stderr
    return [line[2:].split()[0] for line in out.stdout.splitlines() if line.startswith("+ ")]


def test_run_sh_help_lists_stages_and_options():
    out = subprocess.run([str(REPO / "run.sh"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for word in ("data preparation", "optuna_export", "--stop_stage", "--tag", "--nj", "--device"):
        assert word in out.stdout


def test_numbered_stages_run_in_range():
    cmds = _commands(_run("--stage", "1", "--stop_stage", "3", "--spk", "demo"))
    assert cmds == ["vc-preprocess", "vc-train", "vc-convert"]
    assert _commands(_run("--spk", "demo")) == [
        "vc-prepare-data",
        "vc-preprocess",
        "vc-train",
        "vc-convert",
        "vc-evaluate",
        "vc-report",
    ]


def test_named_stage_runs_alone():
    assert _commands(_run("--stage", "optuna", "--study", "demo")) == ["vc-tune"]
    assert _commands(_run("--stage", "pack", "--spk", "demo")) == ["vc-pack"]


def test_voc_stage_trains_the_named_vocoder():
    out = _run("--stage", "voc", "--voc", "demo_hifigan_ft", "--with_pretrain")
    assert _commands(out) == ["vc-train-vocoder"]
    assert "+ vc-train-vocoder --voc demo_hifigan_ft --device auto --nj 2 --with_pretrain" in (
        out.stdout
    )


def test_spk_defaults_to_the_tags_spk():
    out = _run("--stage", "0", "--stop_stage", "0", "--tag", "demo_ar")
    assert "+ vc-prepare-data --spk demo" in out.stdout


def test_bad_stage_ranges():
    assert _run("--stage", "3", "--stop_stage", "1", "--spk", "demo").returncode == 2
    assert "unknown stage 'trian'" in _run("--stage", "trian", "--spk", "demo").stderr
