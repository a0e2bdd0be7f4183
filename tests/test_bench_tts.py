"""The TTS benchmark rows (bench/tts.py) give well-formed records on a tiny text dump."""

from __future__ import annotations

import math
import sys

from conftest import REPO, copy_root, write_conf
from tts_fixtures import make_text_spk, tts_tag

BENCH = REPO / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import tts  # noqa: E402

from vc_toolkit.paths import Layout  # noqa: E402


def test_tts_training_and_synthesis_rows_on_a_tiny_text_spk(tiny_features_root, tmp_path):
    root = copy_root(tiny_features_root, tmp_path)
    make_text_spk(root)
    write_conf(root, "tag", "t", tts_tag())
    res = tts.bench_tts(Layout(root), "tinytts", "t", steps=2, warmup=1, reps=1, threads=1)
    assert res["spk"] == "tinytts" and res["tag"] == "t"  # the existing text dump, no temp spk
    train = res["training"]
    assert train["steps"] == 2 and train["frames_per_second"]["n"] == 2
    assert train["frames_per_second"]["median"] > 0 and train["params"] > 0
    synth = res["synthesis"]
    assert synth["utterances"] == 2 and synth["mean_reduced_frames_per_token"] > 1
    for n in (1, 8):
        block = synth[f"batch_{n}"]
        total = block["total_rtf"]["median"]
        parts = block["acoustic_rtf"]["median"] + block["vocoder_rtf"]["median"]
        assert math.isclose(total, parts, rel_tol=1e-9) and block["audio_seconds"] > 0
    # durations set to the spk's speech rate: the audio is about as long as the recordings
    rate = synth["mean_reduced_frames_per_token"]
    assert rate == tts._bundle(Layout(root), tts.tts_config(Layout(root), "t", "tinytts"))[1]
    text = "\n".join(tts.markdown(res))
    assert "## 7. Text-to-speech" in text and "synthesis RTF, batch 8" in text
