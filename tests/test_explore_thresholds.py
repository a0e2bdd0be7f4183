"""Threshold explorer on generated wavs: table rows, outputs, PNGs; stricter trims more."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from vc_toolkit.bin.explore_thresholds import main
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout
from vc_toolkit.preprocess import explore

SR = 16000


def voiced(ms: int, f0: float) -> np.ndarray:
    t = np.arange(ms * SR // 1000) / SR
    return sum(0.25 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 5))


def hum(ms: int, db: float, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(ms * SR // 1000)
    return x / np.sqrt(np.mean(x**2)) * 10 ** (db / 20)


def make_root(tmp_path: Path, n_utts: int = 3) -> Path:
    """A recipe root whose spk 'x' has train lists of pairs with a -45 dBFS hum at the start."""
    root = tmp_path / "recipe"
    spk = {
        "corpus": {"name": "parallel", "src_wav_root": "wav/src", "tgt_wav_root": "wav/tgt"},
        "sample_rate": SR,
        "trim": {
            "silence_thresh_h": -50,
            "silence_thresh_t": -60,
            "chunk_size": 10,
            "min_silence_len": 150,
        },
        "feats": {
            "mel": {"n_fft": 512, "win_length": 512, "hop_length": 160, "n_mels": 20, "fmax": 7600}
        },
    }
    (root / "conf" / "spk").mkdir(parents=True)
    (root / "conf" / "spk" / "x.yaml").write_text(yaml.safe_dump(spk))
    lists = {"src": [], "tgt": []}
    for i in range(n_utts):
        for side, f0, pause in (("src", 120.0, 200), ("tgt", 210.0, 100 + 100 * (i % 2))):
            x = np.concatenate(
                [
                    hum(300, -45.0, i),
                    voiced(400, f0),
                    np.zeros(pause * 16),
                    voiced(300, f0),
                    np.zeros(2000),
                ]
            )
            path = root / "wav" / side / f"u{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
            lists[side].append(f"u{i} wav/{side}/u{i}.wav\n")
    for side, lines in lists.items():
        scp = root / "data" / "x" / "train" / f"{side}.scp"
        scp.parent.mkdir(parents=True, exist_ok=True)
        scp.write_text("".join(lines))
    return root


def test_cli_writes_table_and_pngs(tmp_path: Path, capsys) -> None:
    root = make_root(tmp_path)
    argv = [
        "--root",
        str(root),
        "--spk",
        "x",
        "-n",
        "2",
        "--thresh-h",
        "-40",
        "-50",
        "--thresh-t=-60",
        "--min-silence-len",
        "150",
        "--verbose",
        "0",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:3] == ["thresh_h", "thresh_t", "min_sil"]
    assert [line.split()[:3] for line in printed[1:3]] == [
        ["-40", "-60", "150"],
        ["-50", "-60", "150"],
    ]
    assert printed[2].rstrip().endswith("*")  # -50/-60/150 is the spk's own setting
    out = root / "exp" / "thresholds" / "x"
    tsv = (out / "thresholds.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == list(explore.COLUMNS) and len(tsv) == 3
    md = (out / "thresholds.md").read_text()
    assert "| thresh_h |" in md and md.count("\n|") == 4
    pngs = sorted(out.glob("png/*/*.png"))
    assert len(pngs) == 4  # 2 utterances x 2 settings
    assert {p.name for p in pngs} == {"h-40_t-60_m150.png", "h-50_t-60_m150.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_stricter_threshold_trims_more(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    rows = explore.explore(
        "x",
        Layout(root),
        num_utts=3,
        thresh_h=[-40.0, -50.0],
        thresh_t=[-60.0],
        min_silence_len=[150, 250],
        plots=False,
    )
    by = {(r["thresh_h"], r["min_sil"]): r for r in rows}
    # the 300 ms hum at -45 dBFS is silence for -40 but not for -50
    assert by[-40.0, 150]["head_s"] == pytest.approx(0.3)
    assert by[-50.0, 150]["head_s"] == 0.0
    assert by[-40.0, 150]["kept"] < by[-50.0, 150]["kept"]
    assert by[-40.0, 150]["tail_s"] == pytest.approx(0.12)  # 125 ms of zeros: 12 chunks
    # source pauses are 200 ms; target pauses alternate 100 / 200 ms
    assert by[-50.0, 150]["seg_src"] == 2.0
    assert by[-50.0, 150]["seg_tgt"] == pytest.approx(4 / 3)  # 1, 2, 1 segments
    assert by[-50.0, 150]["mismatch"] == pytest.approx(2 / 3)
    assert by[-50.0, 250]["seg_src"] == 1.0 and by[-50.0, 250]["mismatch"] == 0.0
    assert by[-50.0, 150]["silent"] == 0


def test_needs_stage_0(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "data" / "x" / "train" / "tgt.scp").unlink()
    with pytest.raises(UserError, match=r"run stage 0 first: ./run.sh --stage 0 --spk x"):
        explore.explore("x", Layout(root), plots=False)
    with pytest.raises(UserError, match="must be <= 0"):
        explore.grid([5.0], [-60.0], [100])
