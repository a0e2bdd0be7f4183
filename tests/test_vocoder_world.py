"""WORLD vocoder: the F0 given is the F0 one hears; F0 in the vocoder interface and conversion."""

from __future__ import annotations

import numpy as np
import pytest
import pyworld

from vc_toolkit.config.spk import DemoCorpus, Feats, Mel, SpkConfig
from vc_toolkit.config.tag import Infer
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.features import spectral
from vc_toolkit.features.pitch import output_voicing, voiced_f0
from vc_toolkit.infer.convert import resolve_infer
from vc_toolkit.vocoder import VOCODERS, GriffinLim, HiFiGAN, World, build_vocoder

SR = 16000
MEL = Mel(n_fft=512, win_length=512, hop_length=128, n_mels=80, fmin=0.0, fmax=8000.0)
HOP = MEL.hop_length
UNVOICED = slice(45, 75)  # frames given F0 0 in the resynthesis tests


def spk_with(mel: Mel = MEL) -> SpkConfig:
    return SpkConfig(corpus=DemoCorpus(), sample_rate=SR, feats=Feats(mel=mel))


def vibrato_f0(n_frames: int, base: float = 150.0) -> np.ndarray:
    """F0 of :func:`harmonic_signal` at the frame times ``t * hop / sr``, Hz."""
    t = np.arange(n_frames) * HOP / SR
    return base * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))


def harmonic_signal(seconds: float = 1.0) -> np.ndarray:
    """Harmonics of a 150 Hz F0 with 3 Hz vibrato up to 7.3 kHz, 1/k amplitudes."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(150.0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / SR
    return sum(0.3 / k * np.sin(k * phase) for k in range(1, 45))


def harvest(y: np.ndarray) -> np.ndarray:
    f0, _ = pyworld.harvest(y.astype(np.float64), SR, 60.0, 500.0, 1000.0 * HOP / SR)
    return f0


def periodicity(frame: np.ndarray) -> float:
    """Highest normalised autocorrelation at a lag of 2-16 ms (F0 60-500 Hz)."""
    x = frame - frame.mean()
    ac = np.correlate(x, x, "full")[len(x) - 1 :]
    return float(ac[SR // 500 : SR // 60].max() / ac[0])


@pytest.fixture(scope="module")
def analysed():
    """The harmonic signal's log-mel (the spk analysis) and its known F0 per frame."""
    x = harmonic_signal()
    log_mel, _ = spectral.log_mel_energy(x.astype(np.float32), SR, MEL)
    return x, log_mel, vibrato_f0(len(log_mel))


def test_output_length_dtype_and_determinism():
    voc = World(SR, MEL)
    rng = np.random.default_rng(0)
    mels = [rng.normal(-4, 1, size=(n, 80)) for n in (17, 9, 1)]
    f0s = [np.where(rng.random(n) > 0.3, rng.uniform(80, 300, n), 0.0) for n in (17, 9, 1)]
    out = voc.batch(mels, f0s)
    assert [len(w) for w in out] == [17 * HOP, 9 * HOP, HOP]
    assert all(w.dtype == np.float32 and np.isfinite(w).all() for w in out)
    assert np.array_equal(voc(mels[0], f0s[0]), out[0])  # batching changes nothing
    assert np.array_equal(voc(mels[0], f0s[0]), voc(mels[0], f0s[0]))
    # a spk with a small FFT still synthesises 40 Hz as voiced (WORLD's FFT is enlarged)
    small = World(SR, Mel(n_fft=256, win_length=256, hop_length=80, n_mels=20))
    assert small.fft_size == 512 and len(small(np.full((5, 20), -3.0), np.full(5, 40.0))) == 400


@pytest.mark.parametrize("scale", [1.0, 1.3])
def test_the_f0_heard_is_the_f0_given_and_unvoiced_frames_are_noise(analysed, scale):
    x, log_mel, known = analysed
    given = known * scale  # 1.3: another F0 than the one the mel was analysed from
    given[UNVOICED] = 0.0
    y = World(SR, MEL)(log_mel, given)
    assert len(y) == len(log_mel) * HOP
    heard = harvest(y)[: len(given)]
    edges = np.zeros(len(given), bool)  # frames near the ends and voicing changes
    edges[:4] = edges[-4:] = True
    edges[UNVOICED.start - 3 : UNVOICED.start + 3] = True
    edges[UNVOICED.stop - 3 : UNVOICED.stop + 3] = True
    voiced = (given > 0) & ~edges
    assert (heard[voiced] > 0).all()
    err = np.abs(heard[voiced] - given[voiced])
    assert np.median(err) < 1.0 and err.max() < 4.0, err
    # unvoiced frames: noise at a level like the speech's, with no periodicity (harvest
    # itself bridges a few frames of this low-pass noise, so it is not the judge here)
    noise = [y[t * HOP : (t + 4) * HOP] for t in range(UNVOICED.start + 2, UNVOICED.stop - 6, 4)]
    speech = [y[t * HOP : (t + 4) * HOP] for t in range(8, UNVOICED.start - 6, 4)]
    level = np.sqrt(np.mean(np.square(noise)) / np.mean(np.square(speech)))
    assert 0.1 < level < 2.0
    assert max(map(periodicity, noise)) < 0.4 and min(map(periodicity, speech)) > 0.6


def test_copy_synthesis_keeps_the_spectrum(analysed):
    x, log_mel, known = analysed
    y = World(SR, MEL)(log_mel, known)
    again = spectral.log_mel_energy(y, SR, MEL)[0][: len(log_mel)]
    band = slice(2, 75)  # leave out the lowest bins (below F0) and the top of the band
    err = np.abs(again[5:-5, band] - log_mel[5:-5, band])
    assert err.mean() < 0.2  # nepers (Griffin-Lim, 32 iterations: 0.25)


def test_world_needs_f0_and_checks_it():
    voc, mel = World(SR, MEL), np.full((6, 80), -3.0)
    with pytest.raises(ValueError, match="world vocoder synthesises a given F0 and got none"):
        voc(mel)
    with pytest.raises(ValueError, match="got none"):
        voc.batch([mel])
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        voc(mel, np.zeros(5))
    with pytest.raises(ValueError, match=">= 0"):
        voc(mel, np.full(6, -1.0))
    with pytest.raises(ValueError, match="2 F0 contours for 1"):
        voc.batch([mel], [np.zeros(6), np.zeros(6)])
    assert "\n" not in str(pytest.raises(ValueError, voc, mel).value)


def test_vocoders_without_f0_ignore_it():
    gl = GriffinLim(SR, MEL, n_iter=2)
    mel = np.random.default_rng(1).normal(-4, 1, size=(12, 80))
    assert np.array_equal(gl(mel), gl(mel, np.full(12, 123.0)))
    assert not GriffinLim.uses_f0 and not HiFiGAN.uses_f0 and World.uses_f0


def test_world_is_chosen_by_name_with_its_settings():
    cfg = VocoderConfig(type="world", world_ap_db=-30.0, world_max_voiced_hz=5000.0)
    voc = build_vocoder(cfg, spk_with())
    assert isinstance(voc, World) and (voc.ap_db, voc.max_voiced_hz) == (-30.0, 5000.0)
    assert (voc.sample_rate, voc.hop_length, voc.n_mels) == (SR, HOP, 80)
    assert "world" in VOCODERS.choices()
    assert resolve_infer(Infer(), {"vocoder": "world"}).vocoder.type == "world"


def test_the_cli_offers_every_vocoder():
    import argparse

    from vc_toolkit.bin.convert import add_infer_options

    p = argparse.ArgumentParser()
    add_infer_options(p)
    choices = next(a.choices for a in p._actions if a.dest == "vocoder")
    assert list(choices) == list(VOCODERS.choices())


def test_output_voicing_by_hand():
    # r = 2: source frames (1 0 | 1 1 | 0 1 | 0 0), durations (2, 0, 1, 3)
    src_vuv = np.array([1, 0, 1, 1, 0, 1, 0, 0], dtype=np.float32)
    duration = np.array([2, 0, 1, 3])
    got = output_voicing(src_vuv, duration, 2)
    # reduced frame 0 -> 4 frames: its first frame twice, its second twice: 1 1 0 0;
    # frame 1 dropped; frame 2 -> 2 frames: 0 1; frame 3 -> 6 frames: 0 0 0 0 0 0
    assert got.astype(int).tolist() == [1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert len(got) == 2 * duration.sum()
    # r = 1 and durations of 1: the source mask itself; a trailing odd frame is not used
    assert output_voicing(src_vuv, np.ones(8, int), 1).tolist() == (src_vuv > 0.5).tolist()
    assert output_voicing(np.array([1, 1, 0]), np.array([1]), 2).tolist() == [True, True]
    with pytest.raises(ValueError, match="need 6 source frames"):
        output_voicing(src_vuv[:4], np.array([1, 1, 1]), 2)
    f0 = voiced_f0(np.log(np.full(12, 200.0)), got)
    assert f0.dtype == np.float32 and set(f0[got].round(3)) == {200.0} and (f0[~got] == 0).all()
