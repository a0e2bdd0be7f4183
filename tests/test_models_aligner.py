"""The learned aligner: MAS and the forward-sum loss against brute force, durations,
padding, the binarisation loss, the prior, gradients, and a tiny training run that must
recover known durations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from vc_toolkit.config.aligner import Aligner
from vc_toolkit.config.core import ConfigError, build
from vc_toolkit.models.aligner import (
    ALIGNERS,
    AlignerBase,
    ConvAligner,
    TooFewFramesError,
    attention_image,
    beta_binomial_prior,
    binarization_loss,
    durations_from_alignment,
    forward_sum_loss,
    monotonic_alignment_search,
)
from vc_toolkit.models.frames import lengths_to_mask

# (frames T, tokens N) of a padded batch: T = N, N = 1, one frame per token and more
SHAPES = [(7, 4), (5, 2), (4, 4), (6, 1), (3, 3), (7, 3), (1, 1)]


def _padded_log_attn(shapes, seed, garbage=True):
    """Random soft alignments of utterances of ``shapes``, padded with garbage (or as the
    aligner pads: -inf on padded tokens, 0 on padded frames)."""
    gen = torch.Generator().manual_seed(seed)
    t_max, n_max = max(t for t, _ in shapes), max(n for _, n in shapes)
    out = 30.0 * torch.randn(len(shapes), t_max, n_max, generator=gen)  # padding garbage
    for b, (t, n) in enumerate(shapes):
        block = torch.log_softmax(2.0 * torch.randn(t, n, generator=gen), dim=-1)
        if not garbage:
            out[b] = 0.0
            out[b, :, n:] = float("-inf")
            out[b, t:] = 0.0
        out[b, :t, :n] = block
    text_lens = torch.tensor([n for _, n in shapes])
    mel_lens = torch.tensor([t for t, _ in shapes])
    return out, text_lens, mel_lens


def _monotonic_paths(t, n):
    """Every assignment of t frames to n tokens in order, each token >= 1 frame."""
    for cuts in itertools.combinations(range(1, t), n - 1):
        bounds = (0, *cuts, t)
        yield [k for k in range(n) for _ in range(bounds[k + 1] - bounds[k])]


def _brute_force_best(scores):
    """(best score, best path) over all monotonic paths of scores (T, N)."""
    t, n = scores.shape
    return max(
        (sum(float(scores[i, k]) for i, k in enumerate(p)), p) for p in _monotonic_paths(t, n)
    )


def _brute_force_forward_sum(scores, blank_logprob):
    """-log of the summed probability of every CTC path of tokens 1..N (blank 0), / N."""
    t, n = scores.shape
    probs = torch.log_softmax(
        torch.cat([torch.full((t, 1), blank_logprob), scores.double()], dim=1), dim=1
    )
    target = list(range(1, n + 1))
    total = []
    for labels in itertools.product(range(n + 1), repeat=t):
        collapsed = [k for i, k in enumerate(labels) if k != 0 and (i == 0 or labels[i - 1] != k)]
        if collapsed == target:
            total.append(sum(float(probs[i, k]) for i, k in enumerate(labels)))
    return -torch.logsumexp(torch.tensor(total), 0).item() / n


def _path_of(hard_row):
    """Token of every frame of a hard alignment (T, N), checking one 1 per frame."""
    assert torch.all(hard_row.sum(1) == 1)
    return hard_row.argmax(1).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_mas_equals_brute_force_on_a_padded_batch(seed):
    log_attn, text_lens, mel_lens = _padded_log_attn(SHAPES, seed)
    hard = monotonic_alignment_search(log_attn, text_lens, mel_lens)
    assert hard.shape == log_attn.shape and hard.dtype == log_attn.dtype
    for b, (t, n) in enumerate(SHAPES):
        best, path = _brute_force_best(log_attn[b, :t, :n])
        assert _path_of(hard[b, :t, :n]) == path, (b, t, n)
        assert torch.all(hard[b, t:] == 0) and torch.all(hard[b, :, n:] == 0)
        got = float((hard[b, :t, :n] * log_attn[b, :t, :n]).sum())
        assert got == pytest.approx(best, abs=1e-4)


def test_mas_result_does_not_depend_on_the_batch():
    log_attn, text_lens, mel_lens = _padded_log_attn(SHAPES, 7)
    hard = monotonic_alignment_search(log_attn, text_lens, mel_lens)
    for b, (t, n) in enumerate(SHAPES):
        alone = monotonic_alignment_search(
            log_attn[b : b + 1, :t, :n].clone(), text_lens[b : b + 1], mel_lens[b : b + 1]
        )
        assert torch.equal(alone[0], hard[b, :t, :n])


def test_mas_with_too_few_frames_is_a_clear_value_error():
    log_attn, text_lens, mel_lens = _padded_log_attn([(5, 3), (4, 4)], 0)
    mel_lens = torch.tensor([5, 3])  # the second utterance: 3 frames for 4 tokens
    for fn in (monotonic_alignment_search, forward_sum_loss):
        with pytest.raises(ValueError, match="utterance 1 of the batch has 3 frames for 4 tokens"):
            fn(log_attn, text_lens, mel_lens)
    with pytest.raises(TooFewFramesError):
        monotonic_alignment_search(log_attn[:1], torch.tensor([0]), mel_lens[:1])


@pytest.mark.parametrize(("seed", "blank"), [(0, -1.0), (1, 0.0), (2, -3.0)])
def test_forward_sum_equals_brute_force(seed, blank):
    shapes = [(5, 3), (4, 2), (6, 3), (3, 1), (3, 3)]
    log_attn, text_lens, mel_lens = _padded_log_attn(shapes, seed, garbage=False)
    per_utt = forward_sum_loss(log_attn, text_lens, mel_lens, blank, reduction="none")
    ref = [_brute_force_forward_sum(log_attn[b, :t, :n], blank) for b, (t, n) in enumerate(shapes)]
    np.testing.assert_allclose(per_utt.numpy(), ref, rtol=1e-5, atol=1e-5)
    mean = forward_sum_loss(log_attn, text_lens, mel_lens, blank)
    assert mean.item() == pytest.approx(float(np.mean(ref)), rel=1e-5, abs=1e-5)


def test_forward_sum_without_blanks_sums_the_monotonic_alignments():
    log_attn, text_lens, mel_lens = _padded_log_attn(SHAPES, 3, garbage=False)
    per_utt = forward_sum_loss(log_attn, text_lens, mel_lens, -1e4, reduction="none")
    for b, (t, n) in enumerate(SHAPES):
        scores = log_attn[b, :t, :n].double()
        paths = [sum(float(scores[i, k]) for i, k in enumerate(p)) for p in _monotonic_paths(t, n)]
        ref = -torch.logsumexp(torch.tensor(paths), 0).item() / n
        assert per_utt[b].item() == pytest.approx(ref, abs=1e-4)


def test_forward_sum_ignores_padding_and_has_finite_gradients():
    log_attn, text_lens, mel_lens = _padded_log_attn(SHAPES, 4)  # garbage in the padding
    log_attn.requires_grad_(True)
    per_utt = forward_sum_loss(log_attn, text_lens, mel_lens, reduction="none")
    for b, (t, n) in enumerate(SHAPES):
        alone = forward_sum_loss(
            log_attn[b : b + 1, :t, :n], text_lens[b : b + 1], mel_lens[b : b + 1]
        )
        assert alone.item() == pytest.approx(per_utt[b].item(), abs=1e-5)
    per_utt.sum().backward()
    assert torch.isfinite(log_attn.grad).all()
    pad = ~(lengths_to_mask(mel_lens)[:, :, None] & lengths_to_mask(text_lens)[:, None, :])
    assert torch.all(log_attn.grad[pad] == 0)


@pytest.mark.parametrize("seed", range(3))
def test_durations_sum_to_the_frame_count_and_are_positive(seed):
    gen = torch.Generator().manual_seed(seed)
    text_lens = torch.randint(1, 30, (6,), generator=gen)
    mel_lens = text_lens + torch.randint(0, 60, (6,), generator=gen)
    log_attn = torch.log_softmax(3 * torch.randn(6, int(mel_lens.max()), int(text_lens.max())), -1)
    dur = durations_from_alignment(monotonic_alignment_search(log_attn, text_lens, mel_lens))
    assert dur.dtype == torch.long and dur.shape == (6, int(text_lens.max()))
    assert torch.equal(dur.sum(1), mel_lens)
    tok = lengths_to_mask(text_lens)
    assert torch.all(dur[tok] >= 1) and torch.all(dur[~tok] == 0)


def test_durations_of_a_hand_alignment():
    hard = torch.zeros(1, 5, 3)
    hard[0, [0, 1, 2, 3], [0, 0, 1, 2]] = 1.0  # frame 4 is padding
    assert durations_from_alignment(hard).tolist() == [[2, 1, 1]]


def test_binarization_loss_hand_example():
    p = torch.tensor([[[0.5, 0.5], [0.2, 0.8], [0.1, 0.9]], [[1.0, 0.0], [0.3, 0.7], [0.3, 0.7]]])
    log_attn = torch.log(p).requires_grad_(True)  # log 0 = -inf where hard is 0: no NaN
    hard = torch.tensor([[[1.0, 0], [0, 1], [0, 1]], [[1, 0], [1, 0], [0, 1]]])  # [1, 2]: padding
    mel_mask = torch.tensor([[True, True, True], [True, True, False]])
    loss = binarization_loss(hard, log_attn, mel_mask)
    expected = -(math.log(0.5) + math.log(0.8) + math.log(0.9) + math.log(1.0) + math.log(0.3)) / 5
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(log_attn.grad, -hard * mel_mask[..., None] / 5)


def test_prior_shape_normalisation_and_diagonal():
    text_lens, mel_lens = torch.tensor([5, 3, 1]), torch.tensor([20, 9, 4])
    prior = beta_binomial_prior(text_lens, mel_lens)
    assert prior.shape == (3, 20, 5) and prior.dtype == torch.float32
    for b, (n, t) in enumerate(zip(text_lens.tolist(), mel_lens.tolist(), strict=True)):
        block = prior[b, :t, :n]
        np.testing.assert_allclose(block.exp().sum(1).numpy(), 1.0, rtol=1e-5)
        assert torch.all(prior[b, :t, n:] == float("-inf")) and torch.all(prior[b, t:, :n] == 0)
        mode = block.argmax(1)
        assert torch.all(mode[1:] >= mode[:-1]) and mode[0] == 0 and mode[-1] == n - 1
        diagonal = (torch.arange(1, t + 1) - 0.5) * n / t - 0.5
        assert torch.all((mode - diagonal).abs() <= 1.0)
    wide = beta_binomial_prior(text_lens, mel_lens, scaling=0.05)
    entropy = [-(q[0, :20, :5].exp() * q[0, :20, :5]).sum() for q in (prior, wide)]
    assert entropy[1] > entropy[0]  # a smaller omega is a wider prior
    sized = beta_binomial_prior(text_lens, mel_lens, max_frames=22, max_tokens=6)
    assert sized.shape == (3, 22, 6) and torch.equal(sized[:, :20, :5], prior)


def _aligner(text_dim=6, mel_dim=5, **cfg):
    torch.manual_seed(0)
    return ALIGNERS.get("conv")(text_dim, mel_dim, Aligner(**{"hidden": 8, **cfg}))


def test_registry_and_output_masks():
    aligner = _aligner()
    assert isinstance(aligner, ConvAligner) and isinstance(aligner, AlignerBase)
    assert ConvAligner.registry_name == "conv"
    with pytest.raises(ConfigError, match="model.aligner.type: unknown choice 'cnv'"):
        ALIGNERS.get("cnv")
    text_lens, mel_lens = torch.tensor([4, 2]), torch.tensor([9, 6])
    log_attn, logits = aligner(
        torch.randn(2, 4, 6),
        lengths_to_mask(text_lens),
        torch.randn(2, 9, 5),
        lengths_to_mask(mel_lens),
    )
    assert log_attn.shape == logits.shape == (2, 9, 4)
    np.testing.assert_allclose(log_attn[1, :6, :2].exp().sum(1).detach().numpy(), 1.0, rtol=1e-5)
    for x in (log_attn, logits):
        assert torch.all(x[1, :6, 2:] == float("-inf")) and torch.all(x[1, 6:, :2] == 0)


def test_logits_are_minus_temperature_times_squared_distance():
    aligner = _aligner(temperature=0.3)
    text_lens, mel_lens = torch.tensor([3, 2]), torch.tensor([5, 4])
    args = (torch.randn(2, 3, 6), lengths_to_mask(text_lens), torch.randn(2, 5, 5))
    _, logits = aligner(*args, lengths_to_mask(mel_lens))
    keys, queries = aligner.encode(*args, lengths_to_mask(mel_lens))
    assert keys.shape == (2, 3, 8) and queries.shape == (2, 5, 8)
    for b in range(2):
        t, n = int(mel_lens[b]), int(text_lens[b])
        dist = ((queries[b, :t, None] - keys[b, None, :n]) ** 2).sum(-1)
        torch.testing.assert_close(logits[b, :t, :n], -0.3 * dist, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("prior", [True, False])
def test_aligner_padding_never_leaks(prior):
    aligner = _aligner(prior=prior).eval()
    shapes = [(9, 4), (6, 2), (4, 3)]
    text_lens = torch.tensor([n for _, n in shapes])
    mel_lens = torch.tensor([t for t, _ in shapes])
    text, mel = 50 * torch.randn(3, 4, 6), 50 * torch.randn(3, 9, 5)  # garbage in the padding
    text[:, :, :] = torch.where(lengths_to_mask(text_lens)[..., None], torch.randn(3, 4, 6), text)
    mel[:, :, :] = torch.where(lengths_to_mask(mel_lens)[..., None], torch.randn(3, 9, 5), mel)
    log_attn, logits = aligner(text, lengths_to_mask(text_lens), mel, lengths_to_mask(mel_lens))
    hard = monotonic_alignment_search(log_attn, text_lens, mel_lens)
    loss = forward_sum_loss(log_attn, text_lens, mel_lens, reduction="none")
    for b, (t, n) in enumerate(shapes):
        one = torch.ones(1, t, dtype=torch.bool), torch.ones(1, n, dtype=torch.bool)
        la, lg = aligner(text[b : b + 1, :n], one[1], mel[b : b + 1, :t], one[0])
        torch.testing.assert_close(la[0], log_attn[b, :t, :n], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(lg[0], logits[b, :t, :n], atol=1e-5, rtol=1e-5)
        tl, ml = text_lens[b : b + 1], mel_lens[b : b + 1]
        assert torch.equal(monotonic_alignment_search(la, tl, ml)[0], hard[b, :t, :n])
        assert forward_sum_loss(la, tl, ml).item() == pytest.approx(loss[b].item(), abs=1e-5)


def test_prior_argument_overrides_and_config_prior_is_applied():
    aligner = _aligner(prior=True)
    text_lens, mel_lens = torch.tensor([3]), torch.tensor([7])
    args = (torch.randn(1, 3, 6), lengths_to_mask(text_lens), torch.randn(1, 7, 5))
    with_prior, logits = aligner(*args, lengths_to_mask(mel_lens))
    expected = torch.log_softmax(logits + beta_binomial_prior(text_lens, mel_lens), -1)
    torch.testing.assert_close(with_prior, expected)
    flat = torch.zeros(1, 7, 3)
    torch.testing.assert_close(
        aligner(*args, lengths_to_mask(mel_lens), prior=flat)[0], torch.log_softmax(logits, -1)
    )


def test_forward_sum_gradients_reach_both_encoders():
    aligner = _aligner()
    text_lens, mel_lens = torch.tensor([4, 3]), torch.tensor([8, 5])
    log_attn, _ = aligner(
        torch.randn(2, 4, 6),
        lengths_to_mask(text_lens),
        torch.randn(2, 8, 5),
        lengths_to_mask(mel_lens),
    )
    forward_sum_loss(log_attn, text_lens, mel_lens).backward()
    for name, param in aligner.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        assert name.startswith(("text_encoder.", "mel_encoder."))
    assert {n.split(".")[0] for n, _ in aligner.named_parameters()} == {
        "text_encoder",
        "mel_encoder",
    }


def _synthetic_batch(gen, table, batch=8):
    """Tokens of ``table`` (vocab, dim) in random order; mel frames are noisy copies of
    each token's embedding repeated by random known durations (neighbours differ, so
    every boundary is defined). Returns (text, text_lens, mel, mel_lens, durations)."""
    vocab, dim = table.shape
    text_lens = torch.randint(4, 9, (batch,), generator=gen)
    tokens = torch.zeros(batch, int(text_lens.max()), dtype=torch.long)
    dur = torch.zeros_like(tokens)
    for b in range(batch):
        n = int(text_lens[b])
        seq = [int(torch.randint(vocab, (1,), generator=gen))]
        while len(seq) < n:
            k = int(torch.randint(vocab, (1,), generator=gen))
            if k != seq[-1]:
                seq.append(k)
        tokens[b, :n] = torch.tensor(seq)
        dur[b, :n] = torch.randint(1, 6, (n,), generator=gen)
    mel_lens = dur.sum(1)
    mel = torch.zeros(batch, int(mel_lens.max()), dim)
    for b in range(batch):
        frames = table[tokens[b]].repeat_interleave(dur[b], dim=0)
        mel[b, : len(frames)] = frames + 0.3 * torch.randn(frames.shape, generator=gen)
    return table[tokens], text_lens, mel, mel_lens, dur


@pytest.fixture
def one_thread():
    """Tiny ops on a shared 2-core machine: one intra-op thread is much faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _duration_error(aligner, batch):
    text, text_lens, mel, mel_lens, dur = batch
    text_mask = lengths_to_mask(text_lens)
    with torch.no_grad():
        log_attn, _ = aligner(text, text_mask, mel, lengths_to_mask(mel_lens))
    found = durations_from_alignment(monotonic_alignment_search(log_attn, text_lens, mel_lens))
    assert torch.equal(found.sum(1), mel_lens)
    return (found - dur).abs()[text_mask].float().mean().item()


@pytest.mark.usefixtures("one_thread")
def test_training_recovers_known_durations():
    """A few hundred steps of forward-sum (then binarisation) loss on fresh synthetic
    batches; the durations of a held-out batch must come out right."""
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(10, 8, generator=gen)
    held_out = _synthetic_batch(gen, table, batch=16)
    cfg = {"hidden": 32, "bin_start_steps": 200, "bin_warmup_steps": 50}
    aligner = _aligner(text_dim=8, mel_dim=8, **cfg)  # default temperature, kernels, prior
    assert _duration_error(aligner, held_out) > 0.8  # the prior alone does not find them
    opt = torch.optim.Adam(aligner.parameters(), lr=1e-2)
    for step in range(300):
        text, text_lens, mel, mel_lens, _ = _synthetic_batch(gen, table)
        mel_mask = lengths_to_mask(mel_lens)
        log_attn, _ = aligner(text, lengths_to_mask(text_lens), mel, mel_mask)
        loss = forward_sum_loss(log_attn, text_lens, mel_lens, aligner.cfg.blank_logprob)
        if aligner.cfg.bin_scale(step) > 0:
            hard = monotonic_alignment_search(log_attn, text_lens, mel_lens)
            loss = loss + aligner.cfg.bin_scale(step) * binarization_loss(hard, log_attn, mel_mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert _duration_error(aligner, held_out) < 0.2


def test_config_defaults_validation_and_schedule():
    cfg = build(Aligner, None)
    assert (cfg.type, cfg.prior, cfg.prior_scaling, cfg.blank_logprob) == ("conv", True, 1.0, -1.0)
    assert cfg.text_kernel % 2 == 1 and cfg.mel_kernel % 2 == 1 and cfg.temperature > 0
    for bad, match in [
        ({"text_kernel": 4}, "model.aligner.text_kernel must be odd"),
        ({"temperature": 0.0}, "model.aligner.temperature must be > 0"),
        ({"prior_scaling": 0.0}, "model.aligner.prior_scaling must be > 0"),
        ({"blank_logprob": 1.0}, "must be <= 0"),
    ]:
        with pytest.raises(ConfigError, match=match):
            build(Aligner, bad)
    cfg = Aligner(bin_start_steps=10, bin_warmup_steps=4)
    assert [cfg.bin_scale(s) for s in (0, 9, 10, 11, 13, 100)] == [0, 0, 0.25, 0.5, 1, 1]
    assert Aligner(bin_start_steps=10, bin_warmup_steps=0).bin_scale(10) == 1.0


def test_attention_image_draws_soft_and_hard():
    from vc_toolkit.plots import plt

    log_attn, text_lens, mel_lens = _padded_log_attn([(6, 3), (4, 2)], 0)
    hard = monotonic_alignment_search(log_attn, text_lens, mel_lens)
    fig = attention_image(log_attn[1], hard[1], 2, 4, title="utt")
    images = [ax.images[0].get_array() for ax in fig.axes]
    assert len(images) == 2 and images[0].shape == (2, 4)  # tokens up, frames across
    np.testing.assert_allclose(images[0], log_attn[1, :4, :2].exp().T.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(images[1], hard[1, :4, :2].T.numpy())
    plt.close(fig)
    fig = attention_image(log_attn[:1], None, 3, 6)
    assert len(fig.axes) == 1
    plt.close(fig)
