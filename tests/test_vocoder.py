"""Vocoders: Griffin-Lim copy synthesis and HiFi-GAN checkpoint loading."""

from __future__ import annotations

import json
import math

import librosa
import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import weight_norm

from vc_toolkit.config.spk import DemoCorpus, Feats, Mel, SpkConfig
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.errors import UserError
from vc_toolkit.vocoder import GriffinLim, build_vocoder
from vc_toolkit.vocoder.hifigan import fold_weight_norm

SR = 16000
MEL = Mel(n_fft=512, win_length=512, hop_length=128, n_mels=80, fmin=0.0, fmax=8000.0)


def spk_with(mel: Mel, sample_rate: int = SR) -> SpkConfig:
    return SpkConfig(corpus=DemoCorpus(), sample_rate=sample_rate, feats=Feats(mel=mel))


def log_mel(x: np.ndarray, mel: Mel, base: str = "e") -> np.ndarray:
    """The spk analysis, written out: |STFT| (centred, reflect) → Slaney mel → log."""
    spec = np.abs(
        librosa.stft(
            x,
            n_fft=mel.n_fft,
            hop_length=mel.hop_length,
            win_length=mel.win_length,
            window="hann",
            center=True,
            pad_mode="reflect",
        )
    )
    basis = librosa.filters.mel(
        sr=SR, n_fft=mel.n_fft, n_mels=mel.n_mels, fmin=mel.fmin, fmax=mel.fmax, norm="slaney"
    )
    logged = np.log(np.maximum(basis @ spec, mel.clip))
    return (logged if base == "e" else logged / math.log(10)).T


def harmonic(seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(150.0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / SR
    return sum(0.3 / k * np.sin(k * phase) for k in range(1, 45))


def test_griffin_lim_length_dtype_and_determinism():
    gl = build_vocoder(VocoderConfig(gl_iters=4), spk_with(MEL))
    rng = np.random.default_rng(0)
    mels = [rng.normal(-4, 1, size=(n, 80)) for n in (17, 9)]
    out = gl.batch(mels)
    assert [len(w) for w in out] == [17 * 128, 9 * 128]
    assert all(w.dtype == np.float32 for w in out)
    assert np.array_equal(gl(mels[0]), gl(mels[0]))
    with pytest.raises(ValueError, match=r"\(T, 80\)"):
        gl(mels[0].T)


@pytest.mark.parametrize("base", ["e", "10"])
def test_griffin_lim_copy_synthesis_recovers_the_spectrum(base):
    mel = Mel(**{**MEL.__dict__, "log_base": base})
    x = harmonic()
    target = log_mel(x, mel, base)
    noise = log_mel(np.random.default_rng(0).normal(0, 0.1, len(x)), mel, base)
    gl = GriffinLim(SR, mel, n_iter=32, power=1.0)
    y = gl(target)
    assert len(y) == len(target) * mel.hop_length
    again = log_mel(y.astype(np.float64), mel, base)[: len(target)]
    err = np.abs(again - target).mean()
    unit = 1.0 if base == "e" else 1 / math.log(10)
    assert err < 0.3 * unit
    assert err < 0.2 * np.abs(noise - target).mean()


# ---- HiFi-GAN: a reference generator written out with the original module names ----


class RefResBlock(nn.Module):
    def __init__(self, ch: int, k: int, dilations: list[int], kind: str):
        super().__init__()

        def conv(d: int) -> nn.Module:
            return weight_norm(nn.Conv1d(ch, ch, k, 1, dilation=d, padding=(k * d - d) // 2))

        self.kind = kind
        if kind == "1":
            self.convs1 = nn.ModuleList([conv(d) for d in dilations])
            self.convs2 = nn.ModuleList([conv(1) for _ in dilations])
        else:
            self.convs = nn.ModuleList([conv(d) for d in dilations])

    def forward(self, x):
        if self.kind == "1":
            for c1, c2 in zip(self.convs1, self.convs2):
                x = c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1)) + x
        else:
            for c in self.convs:
                x = c(F.leaky_relu(x, 0.1)) + x
        return x


class RefGenerator(nn.Module):
    def __init__(self, h: dict):
        super().__init__()
        ch = h["upsample_initial_channel"]
        self.n = len(h["resblock_kernel_sizes"])
        self.conv_pre = weight_norm(nn.Conv1d(h["num_mels"], ch, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
            c = ch // 2 ** (i + 1)
            self.ups.append(weight_norm(nn.ConvTranspose1d(2 * c, c, k, u, padding=(k - u) // 2)))
            for kr, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(RefResBlock(c, kr, d, h["resblock"]))
        self.conv_post = weight_norm(nn.Conv1d(c, 1, 7, 1, padding=3))

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            xs = 0
            for j in range(self.n):
                xs = xs + self.resblocks[i * self.n + j](x)
            x = xs / self.n
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def tiny_config(resblock: str = "1") -> dict:
    return {
        "resblock": resblock,
        "upsample_rates": [2, 2],
        "upsample_kernel_sizes": [4, 4],
        "upsample_initial_channel": 16,
        "resblock_kernel_sizes": [3, 5],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]] if resblock == "1" else [[1, 2], [2, 6]],
        "num_mels": 8,
        "sampling_rate": SR,
        "hop_size": 4,
        "n_fft": 16,
        "win_size": 16,
        "fmin": 0,
        "fmax": 8000,
    }


TINY_MEL = Mel(n_fft=16, win_length=16, hop_length=4, n_mels=8, fmax=None)


def make_reference(h: dict) -> RefGenerator:
    torch.manual_seed(0)
    ref = RefGenerator(h).eval()
    with torch.no_grad():  # larger weights than the default init, so the output is not ~0
        for name, p in ref.named_parameters():
            if name.endswith("weight_g"):
                p.mul_(3.0)
    return ref


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("resblock", ["1", "2"])
def test_hifigan_loads_original_checkpoint_and_reproduces_it(tmp_path, resblock):
    h = tiny_config(resblock)
    ref = make_reference(h)
    assert any(k.endswith("weight_g") for k in ref.state_dict())
    torch.save({"generator": ref.state_dict()}, tmp_path / "g_00000010")
    (tmp_path / "config.json").write_text(json.dumps(h))
    voc = build_vocoder(
        VocoderConfig(type="hifigan", checkpoint=str(tmp_path / "g_00000010")), spk_with(TINY_MEL)
    )
    x = np.random.default_rng(1).normal(-2, 1, size=(13, 8)).astype(np.float32)
    y = voc(x)
    assert y.shape == (13 * 2 * 2,) and y.dtype == np.float32
    with torch.no_grad():
        expected = ref(torch.from_numpy(x.T)[None])[0, 0].numpy()
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_array_equal(y, expected)
    both = voc.batch([x, x[:5]])
    assert [len(w) for w in both] == [52, 20]


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_hifigan_loads_parallel_wavegan_checkpoint(tmp_path):
    h = tiny_config("1")
    ref = make_reference(h)
    renames = [("conv_pre.", "input_conv."), ("conv_post.", "output_conv.1.")]
    state = {}
    for key, value in ref.state_dict().items():
        for ours, theirs in renames:
            key = key.replace(ours, theirs)
        parts = key.split(".")
        if parts[0] == "ups":  # upsamples.i = Sequential(LeakyReLU, ConvTranspose1d)
            key = ".".join(["upsamples", parts[1], "1", *parts[2:]])
        if parts[0] == "resblocks":  # blocks.k.convsX.m = Sequential(LeakyReLU, Conv1d)
            key = ".".join(["blocks", *parts[1:4], "1", *parts[4:]])
        state[key] = value
    ckpt = tmp_path / "checkpoint-10steps.pkl"
    torch.save({"model": {"generator": state}, "steps": 10}, ckpt)
    params = {
        "in_channels": 8,
        "out_channels": 1,
        "channels": 16,
        "kernel_size": 7,
        "upsample_scales": [2, 2],
        "upsample_kernal_sizes": [4, 4],
        "resblock_kernel_sizes": [3, 5],
        "resblock_dilations": [[1, 3, 5], [1, 3, 5]],
        "use_additional_convs": True,
    }
    cfg = {"generator_type": "HiFiGANGenerator", "generator_params": params, "num_mels": 8}
    cfg.update(sampling_rate=SR, hop_size=4, fft_size=16, win_length=16, fmin=0, fmax=None)
    (tmp_path / "config.yml").write_text(yaml.safe_dump(cfg))
    mean = np.linspace(-3, -1, 8)
    scale = np.linspace(0.5, 1.5, 8)
    np.save(tmp_path / "stats.npy", np.stack([mean, scale]))
    voc = build_vocoder(
        VocoderConfig(type="hifigan", checkpoint=str(ckpt)),
        spk_with(TINY_MEL),  # natural-log mel in; the checkpoint wants z-normalised log10
    )
    x = np.random.default_rng(2).normal(-4, 1, size=(11, 8))
    feats = (x / math.log(10) - mean) / scale
    with torch.no_grad():
        expected = ref(torch.tensor(feats.T, dtype=torch.float32)[None])[0, 0].numpy()
    np.testing.assert_allclose(voc(x), expected, rtol=0, atol=1e-5)
    (tmp_path / "stats.npy").unlink()
    with pytest.raises(UserError, match="statistics"):
        build_vocoder(VocoderConfig(type="hifigan", checkpoint=str(ckpt)), spk_with(TINY_MEL))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_hifigan_mismatch_names_both_values(tmp_path):
    h = tiny_config("2")
    torch.save({"generator": make_reference(h).state_dict()}, tmp_path / "g")
    (tmp_path / "config.json").write_text(json.dumps(h))
    cfg = VocoderConfig(type="hifigan", checkpoint=str(tmp_path / "g"))
    with pytest.raises(UserError, match="sample rate 16000 .* have 22050"):
        build_vocoder(cfg, spk_with(TINY_MEL, sample_rate=22050))
    with pytest.raises(UserError, match="hop length 4 .* have 8"):
        build_vocoder(cfg, spk_with(Mel(**{**TINY_MEL.__dict__, "hop_length": 8})))
    with pytest.raises(UserError, match="mel bins 8 .* have 10"):
        build_vocoder(cfg, spk_with(Mel(**{**TINY_MEL.__dict__, "n_mels": 10})))


def test_fold_weight_norm_understands_parametrizations():
    conv = nn.utils.parametrizations.weight_norm(nn.ConvTranspose1d(6, 3, 4, 2))
    state = conv.state_dict()
    assert "parametrizations.weight.original0" in state
    folded = fold_weight_norm({f"up.{k}": v for k, v in state.items()})
    assert sorted(folded) == ["up.bias", "up.weight"]
    torch.testing.assert_close(folded["up.weight"], conv.weight.detach())


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_hifigan_reports_checkpoint_config_disagreement(tmp_path):
    h = tiny_config("1")
    torch.save({"generator": make_reference(h).state_dict()}, tmp_path / "g")
    spk = spk_with(TINY_MEL)
    cfg = VocoderConfig(type="hifigan", checkpoint=str(tmp_path / "g"))
    (tmp_path / "config.json").write_text(json.dumps({**h, "resblock_kernel_sizes": [3, 7]}))
    with pytest.raises(UserError, match="does not fit"):
        build_vocoder(cfg, spk)
    (tmp_path / "config.json").write_text(
        json.dumps({k: v for k, v in h.items() if k != "resblock"})
    )
    with pytest.raises(UserError, match="lacks key 'resblock'"):
        build_vocoder(cfg, spk)
    (tmp_path / "config.json").unlink()
    with pytest.raises(UserError, match="no config.json"):
        build_vocoder(cfg, spk)
