"""Vocoder training data: pairs, hop-exact random segments, determinism, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_wav
from factories import TINY_SPK

from vc_toolkit.config.core import build
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.data.vocoder import (
    VocoderPairs,
    collate_segments,
    fit_audio,
    gt_aligned_pair,
    load_pair,
    make_pair,
    mel_floor,
    save_pair,
    segment,
)
from vc_toolkit.features import frontend, spectral

HOP = 8


def encoded(n_frames: int, n_samples: int | None = None, n_mels: int = 3) -> dict:
    """A pair whose mel row t is t + 1 and whose sample i is i // HOP + 1: a segment is
    hop-exact iff every sample equals its frame's mel value. ``n_samples`` defaults to the
    STFT-consistent ``(n_frames - 1) * HOP + 3``, shorter than ``n_frames * HOP``."""
    n = (n_frames - 1) * HOP + 3 if n_samples is None else n_samples
    mel = np.repeat(np.arange(1, n_frames + 1, dtype=np.float32)[:, None], n_mels, axis=1)
    return {"mel": mel, "audio": (np.arange(n) // HOP + 1).astype(np.float32)}


def check_aligned(mel: np.ndarray, audio: np.ndarray, start: int, n_frames: int) -> None:
    frames = len(mel)
    assert audio.shape == (frames * HOP,)
    by_frame = audio.reshape(frames, HOP)
    for j in range(frames):
        t = start + j
        if t < n_frames:
            assert np.all(mel[j] == t + 1)
            real = by_frame[j][by_frame[j] != 0]  # zero padding past the recording's end
            assert np.all(real == t + 1) and len(real) > 0
        else:
            assert np.all(by_frame[j] == 0)


@pytest.fixture
def pair_files(tmp_path):
    lengths = [40, 25, 11, 7]  # frames; with L = 12 the last two are short
    paths = []
    for k, t in enumerate(lengths):
        paths.append(tmp_path / f"utt{k}.npz")
        save_pair(paths[-1], encoded(t))
    return paths, lengths


def test_every_segment_is_hop_exact(pair_files):
    paths, lengths = pair_files
    ds = VocoderPairs(paths, HOP, segment_frames=12, seed=3)
    starts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i, t in enumerate(lengths):
            item = ds[i]
            assert item["utt_id"] == f"utt{i}"
            assert item["mel"].shape == (12, 3) and item["audio"].shape == (12 * HOP,)
            assert 0 <= item["start"] <= max(t - 12, 0)
            check_aligned(item["mel"], item["audio"], item["start"], t)
            starts.add((i, item["start"]))
    assert len({s for i, s in starts if i == 0}) > 3  # segments do move


@pytest.mark.parametrize("n_samples", [10 * HOP - 5, 10 * HOP, 10 * HOP + 2 * HOP + 3])
def test_segment_fits_audio_of_any_plausible_length(n_samples):
    pair = encoded(10, n_samples)
    for start in range(0, 10):
        mel, audio = segment(pair["mel"], pair["audio"], HOP, start, 4, mel_pad=-1.0)
        check_aligned(np.where(mel == -1.0, 0, mel), audio, start, 10)


def test_segments_are_a_function_of_seed_epoch_and_index(pair_files):
    paths, _ = pair_files
    a = VocoderPairs(paths, HOP, 12, seed=5)
    b = VocoderPairs(paths, HOP, 12, seed=5, preload=True)
    a.set_epoch(2)
    b.set_epoch(2)
    forward = [a[i] for i in range(len(a))]
    backward = [b[i] for i in reversed(range(len(b)))][::-1]
    for x, y in zip(forward, backward):
        assert x["start"] == y["start"]
        np.testing.assert_array_equal(x["audio"], y["audio"])
    b.set_epoch(3)
    assert [b[i]["start"] for i in range(2)] != [x["start"] for x in forward[:2]]
    c = VocoderPairs(paths, HOP, 12, seed=6)
    c.set_epoch(2)
    assert [c[i]["start"] for i in range(2)] != [x["start"] for x in forward[:2]]
    # worker processes draw the same segments as the main process
    loader = torch.utils.data.DataLoader(
        a, batch_size=2, num_workers=2, collate_fn=collate_segments, shuffle=False
    )
    batches = list(loader)
    assert [s for batch in batches for s in batch.starts.tolist()] == [x["start"] for x in forward]


def test_short_utterances_are_padded(pair_files):
    paths, lengths = pair_files
    floor = -11.5
    ds = VocoderPairs(paths, HOP, 12, seed=0, mel_pad=floor)
    item = ds[3]  # 7 frames < 12
    assert item["start"] == 0
    np.testing.assert_array_equal(item["mel"][7:], floor)
    assert np.all(item["audio"][7 * HOP :] == 0)
    check_aligned(np.where(item["mel"] == floor, 0, item["mel"]), item["audio"], 0, 7)
    by_min = VocoderPairs(paths, HOP, 12, seed=0)[3]
    np.testing.assert_array_equal(by_min["mel"][7:], 1.0)  # the utterance's minimum


def test_whole_utterances_and_collate(pair_files):
    paths, lengths = pair_files
    ds = VocoderPairs(paths, HOP, segment_frames=None)
    item = ds[1]
    assert item["start"] == 0 and item["mel"].shape == (25, 3)
    check_aligned(item["mel"], item["audio"], 0, 25)
    batch = collate_segments([ds[1]])
    assert batch.mel.shape == (1, 25, 3) and batch.audio.shape == (1, 25 * HOP)
    with pytest.raises(ValueError, match="batch size 1"):
        collate_segments([ds[0], ds[1]])
    seg = VocoderPairs(paths, HOP, segment_frames=5, seed=1)
    batch = collate_segments([seg[i] for i in range(4)]).to("cpu")
    assert batch.mel.shape == (4, 5, 3) and batch.audio.shape == (4, 5 * HOP)
    assert batch.mel.dtype == batch.audio.dtype == torch.float32
    assert batch.utt_ids == ["utt0", "utt1", "utt2", "utt3"] and len(batch) == 4


def test_gt_aligned_pair_cuts_or_pads_the_audio_to_the_mel():
    mel = np.zeros((20, 4), np.float32)
    longer = gt_aligned_pair(mel, np.ones(20 * HOP + 2 * HOP + 1), HOP)  # frames cut to r
    shorter = gt_aligned_pair(mel, np.ones(19 * HOP + 1), HOP)
    assert longer["audio"].shape == shorter["audio"].shape == (20 * HOP,)
    assert longer["audio"].dtype == np.float32 and np.all(longer["audio"] == 1)
    assert np.all(shorter["audio"][19 * HOP + 1 :] == 0) and shorter["mel"].shape == (20, 4)
    with pytest.raises(ValueError, match="does not fit 20 frames of hop 8"):
        gt_aligned_pair(mel, np.ones(10 * HOP), HOP)
    with pytest.raises(ValueError, match="does not fit"):
        fit_audio(np.ones(40 * HOP), 20, HOP)
    with pytest.raises(ValueError, match=r"\(T, n_mels\)"):
        gt_aligned_pair(np.zeros(20), np.ones(20 * HOP), HOP)


@pytest.mark.parametrize("reduction_cut", [False, True])
def test_make_pair_gives_the_acoustic_model_features(tmp_path, reduction_cut):
    spk = build(SpkConfig, TINY_SPK)
    wav = make_wav(tmp_path / "a.wav", seconds=0.77)
    pair = make_pair(wav, spk, reduction_cut=reduction_cut)
    speech = frontend.load_speech(wav, spk)
    hop = spk.feats.mel.hop_length
    mel, _ = spectral.log_mel_energy(speech.samples, spk.sample_rate, spk.feats.mel)
    t = frontend.num_frames(speech, spk) if reduction_cut else len(mel)
    assert t == len(pair["mel"]) and (not reduction_cut or t % spk.reduction_factor == 0)
    np.testing.assert_array_equal(pair["mel"], mel[:t])
    assert pair["audio"].shape == (t * hop,) and pair["audio"].dtype == np.float32
    n = min(len(speech.samples), t * hop)
    np.testing.assert_array_equal(pair["audio"][:n], speech.samples[:n])
    assert np.all(pair["audio"][n:] == 0)
    save_pair(tmp_path / "a.npz", pair)
    back = load_pair(tmp_path / "a.npz")
    np.testing.assert_array_equal(back["mel"], pair["mel"])
    np.testing.assert_array_equal(back["audio"], pair["audio"])
    assert mel_floor(spk.feats.mel) == pytest.approx(np.log(1e-5))
    assert float(mel.min()) >= mel_floor(spk.feats.mel) - 1e-6
