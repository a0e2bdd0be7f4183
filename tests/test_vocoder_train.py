"""Library pieces for training HiFi-GAN: generator presets, discriminators, GAN losses,
the differentiable log-mel, and one optimisation step of tiny nets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vc_toolkit.config.spk import Mel
from vc_toolkit.errors import UserError
from vc_toolkit.features.spectral import log_mel_energy
from vc_toolkit.vocoder.discriminators import (
    DISCRIMINATOR_PRESETS,
    DiscriminatorConfig,
    HiFiGANDiscriminator,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    discriminator_config,
)
from vc_toolkit.vocoder.gan_losses import (
    LAMBDA_FM,
    LAMBDA_MEL,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    generator_loss,
    mel_l1_loss,
)
from vc_toolkit.vocoder.hifigan import load_hifigan
from vc_toolkit.vocoder.hifigan_generator import (
    PRESETS,
    Generator,
    factorise_hop,
    generator_config,
    original_config,
)
from vc_toolkit.vocoder.mel import LogMel

# ---- generator presets ----


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("hop", [256, 160, 200])
def test_every_preset_gives_frames_times_hop_samples(preset, hop):
    n_stages = len(PRESETS[preset]["upsample_rates"])
    cfg = generator_config(preset, n_mels=6, hop_length=hop, upsample_initial_channel=2**n_stages)
    assert cfg.hop_length == hop and len(cfg.upsample_rates) == n_stages
    assert list(cfg.upsample_rates) == sorted(cfg.upsample_rates, reverse=True)
    for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
        assert (k - u) % 2 == 0 and k >= 2 * u
    assert cfg.resblock == PRESETS[preset]["resblock"]
    with torch.no_grad():
        y = Generator(cfg)(torch.randn(2, 6, 5))
    assert y.shape == (2, 1, 5 * hop)
    assert torch.isfinite(y).all()


def test_presets_are_the_papers_at_hop_256():
    v1, v2, v3 = (generator_config(p, 80, 256) for p in ("V1", "v2", "v3"))
    assert v1.upsample_rates == (8, 8, 2, 2) and v1.upsample_kernel_sizes == (16, 16, 4, 4)
    assert (v1.upsample_initial_channel, v2.upsample_initial_channel) == (512, 128)
    assert v1.resblock == v2.resblock == "1" and v1.resblock_kernel_sizes == (3, 7, 11)
    assert v1.resblock_dilation_sizes == ((1, 3, 5),) * 3
    assert v3.upsample_rates == (8, 8, 4) and v3.upsample_kernel_sizes == (16, 16, 8)
    assert v3.upsample_initial_channel == 256 and v3.resblock == "2"
    assert v3.resblock_kernel_sizes == (3, 5, 7)
    assert v3.resblock_dilation_sizes == ((1, 2), (2, 6), (3, 12))
    tiny = generator_config("tiny", 20, 160)
    assert tiny.upsample_initial_channel == 32 and len(tiny.resblock_kernel_sizes) == 1


def test_hop_factorisation_and_explicit_rates():
    assert factorise_hop(256, (8, 8, 2, 2)) == (8, 8, 2, 2)
    assert factorise_hop(160, (8, 8, 4)) == (8, 5, 4)
    assert factorise_hop(300, (8, 8, 4)) == (10, 6, 5)
    cfg = generator_config("v1", 80, 160, upsample_rates=(5, 4, 8))
    assert cfg.upsample_rates == (5, 4, 8) and cfg.upsample_kernel_sizes == (11, 8, 16)
    same = generator_config("v1", 80, 256, upsample_rates=(8, 8, 2, 2))
    assert same.upsample_kernel_sizes == (16, 16, 4, 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(preset="v4", n_mels=80, hop_length=256), "unknown HiFi-GAN preset 'v4'"),
        (dict(preset="v3", n_mels=80, hop_length=251), "hop_length 251 is not a product of 3"),
        (dict(preset="v1", n_mels=80, hop_length=28), "hop_length 28 is not a product of 4"),
        (
            dict(preset="v1", n_mels=80, hop_length=160, upsample_rates=(8, 8, 2)),
            "multiply to hop_length 160",
        ),
        (
            dict(preset="v1", n_mels=80, hop_length=256, upsample_initial_channel=8),
            "at least 16",
        ),
    ],
)
def test_impossible_shapes_are_one_line_user_errors(kwargs, match):
    with pytest.raises(UserError, match=match) as err:
        generator_config(**kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_weight_normed_generator_saves_and_loads_as_an_original_checkpoint(tmp_path):
    cfg = generator_config("tiny", n_mels=8, hop_length=16, upsample_rates=(4, 4))
    torch.manual_seed(0)
    gen = Generator(cfg).init_weights(0.05).apply_weight_norm()
    assert any("parametrizations.weight.original0" in k for k in gen.state_dict())
    torch.save({"generator": gen.state_dict()}, tmp_path / "g_00000001")
    mel = Mel(n_fft=64, win_length=64, hop_length=16, n_mels=8, fmax=None)
    h = original_config(cfg, 16000, mel)
    (tmp_path / "config.json").write_text(json.dumps(h))
    loaded = load_hifigan(tmp_path / "g_00000001")
    x = torch.randn(1, 8, 7)
    with torch.no_grad():
        expected = gen(x)
        assert expected.abs().max() > 1e-3
        torch.testing.assert_close(loaded.generator(x), expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(gen.remove_weight_norm()(x), expected, rtol=0, atol=1e-6)
    assert not any("parametrizations" in k for k in gen.state_dict())
    with pytest.raises(UserError, match="hop 16, the spk has 32"):
        original_config(cfg, 16000, Mel(n_fft=64, win_length=64, hop_length=32, n_mels=8))


# ---- discriminators ----

TINY_D = DISCRIMINATOR_PRESETS["tiny"]


def _conv_out(n: int, k: int, s: int) -> int:
    return (n + 2 * ((k - 1) // 2) - k) // s + 1


@pytest.mark.parametrize("n", [480, 481])
def test_multi_period_shapes(n):
    torch.manual_seed(0)
    mpd = MultiPeriodDiscriminator(TINY_D)
    logits, feats = mpd(torch.randn(3, n))
    assert mpd.names == ["period2", "period3", "period5", "period7", "period11"]
    assert len(logits) == len(feats) == 5
    for p, out, fmaps in zip(TINY_D.periods, logits, feats):
        h = -(-n // p)  # reflect-padded to a multiple of p
        assert len(fmaps) == len(TINY_D.period_channels)
        for i, (fmap, c) in enumerate(zip(fmaps, TINY_D.period_channels)):
            h = _conv_out(h, 5, 1 if i == len(fmaps) - 1 else 3)
            assert fmap.shape == (3, c, h, p)
        assert out.shape == (3, h * p)
    assert [_norms(d) for d in mpd.discriminators] == [{"_WeightNorm"}] * 5


def _norms(module: torch.nn.Module) -> set[str]:
    """Kinds of weight parametrization on ``module``'s convs ("" for a plain conv)."""
    kinds = set()
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)):
            params = getattr(m, "parametrizations", {})
            kinds |= {type(p).__name__ for p in params["weight"]} if params else {""}
    return kinds


def test_multi_scale_shapes_and_norms():
    torch.manual_seed(0)
    msd = MultiScaleDiscriminator(TINY_D)
    x = torch.randn(2, 1, 512)
    logits, feats = msd(x)
    assert msd.names == ["scale1", "scale2", "scale4"]
    for n, out, fmaps in zip([512, 257, 129], logits, feats):  # pooled: N // 2 + 1
        for fmap, c, k, s in zip(
            fmaps, TINY_D.scale_channels, TINY_D.scale_kernels, TINY_D.scale_strides
        ):
            n = _conv_out(n, k, s)
            assert fmap.shape == (2, c, n)
        assert out.shape == (2, n)
    norms = [_norms(d) for d in msd.discriminators]
    assert norms == [{"_SpectralNorm"}, {"_WeightNorm"}, {"_WeightNorm"}]


def test_combined_discriminator_orders_mpd_then_msd():
    torch.manual_seed(0)
    disc = HiFiGANDiscriminator(discriminator_config("TINY"))
    x = torch.randn(2, 300)
    logits, feats = disc(x)
    assert disc.names == disc.mpd.names + disc.msd.names and len(logits) == len(feats) == 8
    torch.testing.assert_close(logits[0], disc.mpd(x[:, None])[0][0])
    torch.testing.assert_close(feats[-1][-1], disc.msd(x)[1][-1][-1])
    with pytest.raises(ValueError, match=r"\(B, N\) or \(B, 1, N\)"):
        disc(torch.randn(2, 2, 300))


def test_discriminator_config_is_checked():
    paper = DiscriminatorConfig()
    assert paper.periods == (2, 3, 5, 7, 11) and paper.scales == 3
    assert discriminator_config("paper") == paper
    with pytest.raises(UserError, match="groups 3 must divide"):
        DiscriminatorConfig(
            scale_channels=(4, 8), scale_kernels=(3, 3), scale_strides=(1, 1), scale_groups=(1, 3)
        )
    with pytest.raises(UserError, match="same length"):
        DiscriminatorConfig(scale_channels=(4, 8))
    with pytest.raises(UserError, match="unknown HiFi-GAN discriminator preset"):
        discriminator_config("huge")


# ---- losses, against values computed by hand ----


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_least_squares_discriminator_and_generator_losses_by_hand():
    real = [t([1.0, 0.0]), t([2.0], [1.0])]
    fake = [t([0.0, 1.0]), t([-1.0], [3.0])]
    # k=1: mean((1-1)^2, (0-1)^2) = 0.5; mean(0^2, 1^2) = 0.5
    # k=2: mean((2-1)^2, (1-1)^2) = 0.5; mean((-1)^2, 3^2) = 5
    assert discriminator_loss(real, fake).item() == pytest.approx(6.5)
    # k=1: mean((0-1)^2, (1-1)^2) = 0.5; k=2: mean((-1-1)^2, (3-1)^2) = 4
    assert generator_adversarial_loss(fake).item() == pytest.approx(4.5)
    with pytest.raises(ValueError, match="1 real and 2 generated"):
        discriminator_loss(real[:1], fake)


def test_feature_matching_loss_by_hand_and_real_maps_are_targets():
    real = [[t([1.0, 2.0]), t([0.0], [0.0])], [t([[1.0, 1.0]])]]
    fake = [[t([2.0, 0.0]), t([1.0], [-3.0])], [t([[1.0, 0.0]])]]
    for maps in real + fake:
        for m in maps:
            m.requires_grad_(True)
    # mean(1, 2) = 1.5; mean(1, 3) = 2; mean(0, 1) = 0.5
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(4.0)
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


def test_mel_l1_and_weighted_generator_loss_by_hand():
    target, generated = t([[0.0, 1.0]], [[2.0, 2.0]]), t([[1.0, 1.0]], [[2.0, -2.0]])
    assert mel_l1_loss(target, generated).item() == pytest.approx(1.25)  # (1 + 0 + 0 + 4) / 4
    with pytest.raises(ValueError, match="differ"):
        mel_l1_loss(target, generated[:1])
    fake_logits = [t([0.0])]  # adv = 1
    real_feats, fake_feats = [[t([1.0])]], [[t([0.5])]]  # fm = 0.5
    total, terms = generator_loss(fake_logits, real_feats, fake_feats, target, generated)
    assert {k: v.item() for k, v in terms.items()} == pytest.approx(
        {"adv": 1.0, "fm": 0.5, "mel": 1.25}
    )
    assert (LAMBDA_FM, LAMBDA_MEL) == (2.0, 45.0)
    assert total.item() == pytest.approx(1.0 + 2.0 * 0.5 + 45.0 * 1.25)
    total, _ = generator_loss(fake_logits, real_feats, fake_feats, target, generated, 1.0, 0.0)
    assert total.item() == pytest.approx(1.5)


# ---- the torch log-mel ----


def speechlike(n: int, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone, amplitude-modulated, with noise and a zeroed gap."""
    t = np.arange(n) / sr
    phase = 2 * np.pi * np.cumsum(140.0 * (1 + 0.2 * np.sin(2 * np.pi * 2 * t))) / sr
    x = sum(0.3 / k * np.sin(k * phase) for k in range(1, 40))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))
    x = x + 0.01 * np.random.default_rng(seed).standard_normal(n)
    x[n // 3 : n // 3 + n // 10] = 0.0
    return x.astype(np.float32)


@pytest.mark.parametrize(
    "cfg",
    [
        Mel(n_fft=512, win_length=512, hop_length=160, n_mels=20, fmax=7600),
        Mel(n_fft=1024, win_length=800, hop_length=200, n_mels=80, fmax=None, log_base="10"),
        Mel(n_fft=1024, win_length=1024, hop_length=256, n_mels=80, clip=0.0),
    ],
)
def test_log_mel_equals_the_numpy_features(cfg):
    sr = 16000
    log_mel = LogMel(cfg, sr)
    x = speechlike(12000)
    for wav in (x, x[:3001], x[:100]):  # the last one is shorter than the padding
        expected, _ = log_mel_energy(wav, sr, cfg)
        got = log_mel(torch.from_numpy(wav)[None])
        assert got.shape == (1, 1 + len(wav) // cfg.hop_length, cfg.n_mels)
        np.testing.assert_allclose(got[0].numpy(), expected, rtol=0, atol=1e-4)
    batch = np.stack([x[:8000], speechlike(8000, seed=1)])
    got = log_mel(torch.from_numpy(batch)[:, None])  # (B, 1, N) is accepted too
    for wav, mel in zip(batch, got):
        np.testing.assert_allclose(mel.numpy(), log_mel_energy(wav, sr, cfg)[0], atol=1e-4)
    assert not dict(log_mel.state_dict())


def test_log_mel_has_finite_gradients_through_silence():
    cfg = Mel(n_fft=256, win_length=256, hop_length=64, n_mels=16, fmax=None)
    wav = torch.from_numpy(speechlike(2048)).requires_grad_(True)
    LogMel(cfg, 16000)(torch.stack([wav, torch.zeros(2048)])).sum().backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all() and wav.grad.abs().sum() > 0


# ---- one optimisation step of tiny nets ----


def test_one_gan_step_of_tiny_nets_stays_finite():
    torch.manual_seed(0)
    mel_cfg = Mel(n_fft=64, win_length=64, hop_length=16, n_mels=8, fmax=None)
    log_mel = LogMel(mel_cfg, 16000)
    gen = Generator(generator_config("tiny", 8, 16, (4, 4))).init_weights().apply_weight_norm()
    disc = HiFiGANDiscriminator(DISCRIMINATOR_PRESETS["tiny"])
    opt_g = torch.optim.AdamW(gen.parameters(), 2e-4, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW(disc.parameters(), 2e-4, betas=(0.8, 0.99))
    audio = torch.from_numpy(speechlike(2 * 8 * 16).reshape(2, -1))  # B = 2, L = 8 frames
    mel = log_mel(audio)[:, :8]  # the segment's input frames
    before_g = [p.detach().clone() for p in gen.parameters()]
    before_d = [p.detach().clone() for p in disc.parameters()]

    fake = gen(mel.transpose(1, 2))[:, 0]
    assert fake.shape == audio.shape
    real_logits, _ = disc(audio)
    fake_logits, _ = disc(fake.detach())
    loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad()
    loss_d.backward()
    assert all(p.grad is None for p in gen.parameters())
    opt_d.step()

    _, real_feats = disc(audio)
    fake_logits, fake_feats = disc(fake)
    loss_g, terms = generator_loss(
        fake_logits, real_feats, fake_feats, log_mel(audio), log_mel(fake)
    )
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()

    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    assert all(torch.isfinite(v) for v in terms.values())
    for params, before in ((list(gen.parameters()), before_g), (list(disc.parameters()), before_d)):
        assert all(torch.isfinite(p).all() for p in params)
        assert any(not torch.equal(p, b) for p, b in zip(params, before))
