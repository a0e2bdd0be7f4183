"""Alignment maths of the learned aligner: prior, forward-sum loss, MAS, durations.

Shapes: ``B`` utterances, ``T`` frames, ``N`` tokens (both padded to the batch maximum).
A soft alignment ``log_attn`` (B, T, N) holds, for every frame, the log-probabilities of
the tokens (a log-softmax over the real tokens); padded tokens are ``-inf`` and padded
frames 0, as :class:`~vc_toolkit.models.aligner.AlignerBase` returns it. Every function
here reads only the real ``(t < T_b, n < N_b)`` block of each utterance, so what padding
holds never changes a result.

- :func:`beta_binomial_prior`: the static alignment prior that favours the diagonal
  (Badlani et al., "One TTS Alignment To Rule Them All", ICASSP 2022).
- :func:`forward_sum_loss`: the negative log-likelihood of the text given the mel, summed
  over every monotonic alignment (Badlani et al. 2022), computed with the CTC
  forward algorithm (Graves et al., "Connectionist Temporal Classification", ICML 2006).
- :func:`monotonic_alignment_search`: the most likely monotonic alignment, by Viterbi
  (Kim et al., "Glow-TTS", NeurIPS 2020).
- :func:`durations_from_alignment`, :func:`binarization_loss` (Badlani et al. 2022).

Example:
    >>> log_attn = torch.log_softmax(torch.randn(2, 6, 3), dim=-1)
    >>> text_lens, mel_lens = torch.tensor([3, 2]), torch.tensor([6, 4])
    >>> hard = monotonic_alignment_search(log_attn, text_lens, mel_lens)
    >>> durations_from_alignment(hard).sum(dim=1).tolist()
    [6, 4]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vc_toolkit.errors import UserError
from vc_toolkit.models.frames import lengths_to_mask

_FLOOR = -1e4
"""Log-score standing in for -inf where a gradient must stay finite."""


class TooFewFramesError(UserError, ValueError):
    """An utterance has fewer frames than tokens, so no alignment gives every token a frame."""


def check_lengths(text_lens: Tensor, mel_lens: Tensor, what: str) -> None:
    """Raise :class:`TooFewFramesError` unless every utterance has 1 <= N_b <= T_b.

    Args:
        text_lens (Tensor): tokens per utterance, (B,) long.
        mel_lens (Tensor): frames per utterance, (B,) long.
        what (str): the computation, for the message.
    """
    bad = ((mel_lens < text_lens) | (text_lens < 1)).nonzero().flatten().tolist()
    if bad:
        b = bad[0]
        raise TooFewFramesError(
            f"{what}: utterance {b} of the batch has {int(mel_lens[b])} frames for "
            f"{int(text_lens[b])} tokens; every token needs at least one frame: drop "
            "utterances with fewer frames than tokens (or use a smaller reduction factor)"
        )


def beta_binomial_prior(
    text_lens: Tensor,
    mel_lens: Tensor,
    scaling: float = 1.0,
    *,
    max_frames: int | None = None,
    max_tokens: int | None = None,
) -> Tensor:
    """Log beta-binomial alignment prior (Badlani et al. 2022).

    For frame ``t`` (1-based) of an utterance with ``T`` frames and ``N`` tokens, the
    prior over token ``k`` (0-based) is BetaBinomial(k; n=N-1, alpha=w t, beta=w (T-t+1))
    with ``w = scaling``; its mode moves along the diagonal ``k ~ t N / T``. Larger
    ``scaling`` gives a narrower prior (towards Binomial(N-1, t / (T+1))).

    Args:
        text_lens (Tensor): tokens per utterance, (B,) long.
        mel_lens (Tensor): frames per utterance, (B,) long.
        scaling (float): the prior's omega (> 0).
        max_frames (int | None): T of the result (``None``: ``mel_lens.max()``).
        max_tokens (int | None): N of the result (``None``: ``text_lens.max()``).

    Returns:
        Tensor: log-prior, (B, T, N) float32; a log-distribution over the real tokens of
        every real frame, ``-inf`` on padded tokens and 0 on padded frames.
    """
    device = text_lens.device
    n_max = int(text_lens.max()) if max_tokens is None else max_tokens
    t_max = int(mel_lens.max()) if max_frames is None else max_frames
    k = torch.arange(n_max, device=device, dtype=torch.float64)[None, None, :]
    t = torch.arange(1, t_max + 1, device=device, dtype=torch.float64)[None, :, None]
    n = (text_lens.to(torch.float64) - 1)[:, None, None]
    big_t = mel_lens.to(torch.float64)[:, None, None]
    alpha, beta = scaling * t, (scaling * (big_t - t + 1)).clamp(min=1e-12)  # 0 on padding
    lg = torch.lgamma
    log_choose = lg(n + 1) - lg(k + 1) - lg((n - k).clamp(min=0) + 1)
    log_beta = lg(k + alpha) + lg((n - k).clamp(min=0) + beta) - lg(n + alpha + beta)
    log_norm = lg(alpha) + lg(beta) - lg(alpha + beta)
    prior = (log_choose + log_beta - log_norm).float()
    tok = lengths_to_mask(text_lens, n_max)[:, None, :]
    frames = lengths_to_mask(mel_lens, t_max)[:, :, None]
    prior = prior.masked_fill(~tok, float("-inf"))
    return prior.masked_fill(~frames, 0.0)


def forward_sum_loss(
    log_attn: Tensor,
    text_lens: Tensor,
    mel_lens: Tensor,
    blank_logprob: float = -1.0,
    reduction: str = "mean",
) -> Tensor:
    """Forward-sum loss: -log P(tokens 1..N in order | mel) over all monotonic alignments.

    Every frame's token scores are extended by a blank of score ``blank_logprob`` and
    renormalised (a log-softmax over blank + real tokens); the loss is the CTC loss
    (Graves et al. 2006) of the target sequence ``1, 2, ..., N_b`` (token indices, blank 0),
    as in Badlani et al. 2022. So an alignment maps every frame to blank or a
    token, tokens in order, each token on one run of >= 1 consecutive frames, blanks
    anywhere between; the loss sums the probability of all of them. Padded frames and
    padded tokens take no part (CTC lengths; padded tokens get no probability).

    Normalisation: each utterance's negative log-likelihood is divided by its number of
    tokens ``N_b`` (as ``torch.nn.functional.ctc_loss(reduction="mean")`` does), then
    averaged over the batch.

    Args:
        log_attn (Tensor): soft alignment, (B, T, N) log-probabilities over tokens.
        text_lens (Tensor): tokens per utterance, (B,) long.
        mel_lens (Tensor): frames per utterance, (B,) long.
        blank_logprob (float): log-score of the blank before renormalisation.
        reduction (str): ``mean`` (scalar, as above) or ``none`` (per-utterance
            ``nll / N_b``, (B,)).

    Returns:
        Tensor: the loss, scalar (or (B,) for ``reduction="none"``).

    Raises:
        TooFewFramesError: an utterance has fewer frames than tokens (infinite loss).
    """
    check_lengths(text_lens, mel_lens, "forward-sum loss")
    b, t_max, n_max = log_attn.shape
    tok = lengths_to_mask(text_lens, n_max)[:, None, :]
    # padded tokens get a tiny finite score, not -inf (whose CTC gradient is NaN)
    scores = log_attn.float().masked_fill(~tok, _FLOOR)
    blank = scores.new_full((b, t_max, 1), blank_logprob)
    log_probs = F.log_softmax(torch.cat([blank, scores], dim=-1), dim=-1)
    targets = torch.arange(1, n_max + 1, device=log_attn.device).expand(b, n_max)
    nll = F.ctc_loss(
        log_probs.transpose(0, 1),
        targets,
        mel_lens,
        text_lens,
        blank=0,
        reduction="none",
        zero_infinity=False,
    )
    per_utt = nll / text_lens.to(nll.dtype)
    if reduction == "none":
        return per_utt
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return per_utt.mean()


def _viterbi(scores: np.ndarray, text_lens: np.ndarray, mel_lens: np.ndarray) -> np.ndarray:
    """Token index of every frame on the best monotonic path, (B, T) int (-1 on padding).

    ``scores`` (B, T, N) float64, finite; only each utterance's real block is read.
    Vectorised over the batch and the token axis; one step per frame.
    """
    b, t_max, n_max = scores.shape
    best = np.full((b, n_max), -np.inf)
    best[:, 0] = scores[:, 0, 0]
    moved = np.zeros((b, t_max, n_max), dtype=bool)  # came from token n - 1 at frame t - 1
    for t in range(1, t_max):
        advance = np.concatenate([np.full((b, 1), -np.inf), best[:, :-1]], axis=1)
        moved[:, t] = advance > best
        best = np.maximum(best, advance) + scores[:, t]
    path = np.full((b, t_max), -1, dtype=np.int64)
    rows = np.arange(b)
    token = text_lens - 1
    for t in range(t_max - 1, -1, -1):
        live = t < mel_lens
        path[live, t] = token[live]
        step = moved[rows, t, np.maximum(token, 0)] & live
        token = token - step
    return path


def monotonic_alignment_search(log_attn: Tensor, text_lens: Tensor, mel_lens: Tensor) -> Tensor:
    """Hard alignment: the monotonic path of highest total log-probability (Viterbi).

    Monotonic alignment search (Kim et al., Glow-TTS 2020): every real frame goes to
    exactly one token, the first frame to the first token and the last frame to the last,
    and from one frame to the next the token stays or advances by one, so tokens come in
    order and each gets at least one frame. The search runs on the CPU in numpy (float64),
    over each utterance's real block only; no gradient flows through it. Between two
    equally good predecessors it keeps the frame on the same token.

    Args:
        log_attn (Tensor): soft alignment, (B, T, N) log-probabilities over tokens.
        text_lens (Tensor): tokens per utterance, (B,) long.
        mel_lens (Tensor): frames per utterance, (B,) long.

    Returns:
        Tensor: hard alignment, (B, T, N) 0/1 of ``log_attn``'s dtype and device, one 1
        in every real frame, zeros on padding.

    Raises:
        TooFewFramesError: an utterance has fewer frames than tokens (or no token).
    """
    check_lengths(text_lens, mel_lens, "monotonic alignment search")
    b, t_max, n_max = log_attn.shape
    n_lens = text_lens.detach().cpu().numpy().astype(np.int64)
    t_lens = mel_lens.detach().cpu().numpy().astype(np.int64)
    scores = log_attn.detach().cpu().double().numpy().copy()
    # -inf or NaN inside the real block would leave no finite path: floor them instead
    scores = np.nan_to_num(scores, nan=-1e9, neginf=-1e9, posinf=1e9).clip(-1e9, 1e9)
    # padding needs no masking: the path ends at (T_b - 1, N_b - 1) and only ever moves to
    # earlier frames and tokens, and the scores of a cell depend on no later cell
    path = _viterbi(scores, n_lens, t_lens)
    hard = torch.zeros(b, t_max, n_max, dtype=log_attn.dtype)
    frames = torch.from_numpy(path)
    live = frames >= 0
    hard[live.nonzero(as_tuple=True) + (frames[live],)] = 1.0
    return hard.to(log_attn.device)


def durations_from_alignment(hard: Tensor) -> Tensor:
    """Frames per token of a hard alignment.

    Args:
        hard (Tensor): hard alignment, (B, T, N) 0/1 (from :func:`monotonic_alignment_search`).

    Returns:
        Tensor: durations, (B, N) long; each row sums to the utterance's frame count, every
        real token has >= 1 frame and padded tokens 0.
    """
    return hard.sum(dim=1).round().long()


def binarization_loss(hard: Tensor, log_attn: Tensor, mel_mask: Tensor) -> Tensor:
    """Binarisation loss: -mean over real frames of sum_n hard * log_attn (Badlani et al.
    2022), pulling the soft alignment towards the hard one.

    Args:
        hard (Tensor): hard alignment, (B, T, N) 0/1 (no gradient is taken through it).
        log_attn (Tensor): soft alignment, (B, T, N) log-probabilities over tokens.
        mel_mask (Tensor): real frames, (B, T) bool.

    Returns:
        Tensor: scalar; 0 when there is no real frame.
    """
    on = (hard.detach() > 0) & mel_mask[..., None]
    picked = torch.where(on, log_attn, torch.zeros_like(log_attn))
    return -picked.sum() / mel_mask.sum().clamp(min=1)
