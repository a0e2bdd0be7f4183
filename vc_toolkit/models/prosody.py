"""Segment prosody embeddings with a Gaussian-mixture predictor (wGMM).

A reference extractor (conv stack over the target mel) gives one embedding
per target segment (mean-pooled, ``tanh``-bounded) and optionally one per
utterance. During training they are added to the encoder output; a predictor
learns their distribution as a mixture density network [Bishop, "Mixture
density networks", 1994], autoregressively over segments with a GRU, in the
spirit of phone-level prosody MDNs [Du & Yu, "Rich prosody diversity modelling
with phone-level mixture density network", Interspeech 2021]. At inference
the predicted mixtures supply the embeddings. Registered as
``model.prosody.type: gmm`` (:class:`ProsodyModule`, loss terms ``gmm`` and, with
``use_global``, ``global_gmm``: the negative log-likelihoods of the extracted
embeddings); ``none`` (:class:`NoProsody`) leaves the encoder output unchanged.

Segments are given as counts of reduced frames per segment, ``(B, K)`` with
``n_seg`` real segments per utterance; with ``n_seg == 1`` (or no segment
information) the whole utterance is one segment, and frames past the last
segment count belong to the last segment.

Example:
    >>> import torch
    >>> ids, seg_mask = segment_ids(torch.tensor([[2, 1]]), torch.tensor([2]),
    ...                             torch.tensor([4]), max_len=4)
    >>> ids.tolist(), seg_mask.tolist()
    ([[0, 0, 1, 1]], [[True, True]])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vc_toolkit.config.tag import Prosody
from vc_toolkit.data.batch import Batch
from vc_toolkit.models.frames import masked_mean
from vc_toolkit.models.interfaces import ProsodyBase
from vc_toolkit.models.layers import ConvStack
from vc_toolkit.models.registry import PROSODY, LossTerm

Mixture = tuple[Tensor, Tensor, Tensor]


def segment_ids(
    seg: Tensor | None, n_seg: Tensor | None, lengths: Tensor, max_len: int
) -> tuple[Tensor, Tensor]:
    """Segment index of every frame.

    Args:
        seg (Tensor | None): frames per segment, (B, K) long; ``None``: one segment.
        n_seg (Tensor | None): real segments, (B,) long; ``None``: all ``K`` columns.
        lengths (Tensor): real frames, (B,) long.
        max_len (int): frames per row.

    Returns:
        tuple[Tensor, Tensor]: segment ids in ``[0, n_seg - 1]`` (B, max_len) long
        (meaningless on padded frames), and the real-segment mask (B, K) bool.
    """
    if seg is None or seg.shape[1] == 0:
        seg, n_seg = lengths[:, None], torch.ones_like(lengths)
    if n_seg is None:
        n_seg = torch.full_like(lengths, seg.shape[1])
    n_seg = n_seg.clamp(min=1)
    cols = torch.arange(seg.shape[1], device=seg.device)
    seg_mask = cols[None, :] < n_seg[:, None]
    seg = torch.where(seg_mask, seg, torch.zeros_like(seg))
    whole = (n_seg == 1)[:, None] & (cols == 0)[None, :]
    seg = torch.where(whole, lengths[:, None].expand_as(seg), seg)
    steps = torch.arange(max_len, device=seg.device).expand(len(seg), max_len).contiguous()
    ids = torch.searchsorted(seg.cumsum(dim=1).contiguous(), steps, right=True)
    return torch.minimum(ids, (n_seg - 1)[:, None]), seg_mask


def segment_pool(x: Tensor, ids: Tensor, mask: Tensor, n_cols: int) -> Tensor:
    """Mean of the real frames of each segment.

    Args:
        x (Tensor): frames, (B, L, D).
        ids (Tensor): segment ids, (B, L) long.
        mask (Tensor): real frames, (B, L) bool.
        n_cols (int): segment columns K.

    Returns:
        Tensor: per-segment means (0 for empty segments), (B, K, D).
    """
    cols = torch.arange(n_cols, device=x.device)
    member = ((ids[:, None, :] == cols[None, :, None]) & mask[:, None, :]).to(x.dtype)
    return (member @ x) / member.sum(-1, keepdim=True).clamp(min=1)


def utterance_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of the real frames of each row: (B, L, D), mask (B, L) → (B, D)."""
    weights = mask.to(x.dtype)[..., None]
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1)


def segment_expand(e: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
    """Copy segment values ``e`` (B, K, D) to their frames → (B, L, D), zero on padding."""
    out = torch.gather(e, 1, ids[..., None].expand(-1, -1, e.shape[-1]))
    return out.masked_fill(~mask[..., None], 0.0)


def gmm_log_likelihood(x: Tensor, mixture: Mixture) -> Tensor:
    """Log-density of a diagonal Gaussian mixture.

    ``log p(x) = logsumexp_g [log π_g + Σ_d (-½((x_d - μ_gd)/σ_gd)² - log σ_gd - ½ log 2π)]``.

    Args:
        x (Tensor): points, (..., D).
        mixture (tuple[Tensor, Tensor, Tensor]): logits (..., G), means (..., G, D) and
            log-scales (..., G, D).

    Returns:
        Tensor: log-densities, (...).

    Example:
        >>> z = torch.zeros(1, 1)
        >>> round(float(gmm_log_likelihood(z[0], (z, z[:, None], z[:, None]))), 4)
        -0.9189
    """
    logits, means, log_scales = mixture
    z = (x[..., None, :] - means) * torch.exp(-log_scales)
    comp = (-0.5 * z**2 - log_scales - 0.5 * math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(torch.log_softmax(logits, dim=-1) + comp, dim=-1)


def gmm_choose(mixture: Mixture, mode: str = "mean", temperature: float = 1.0) -> Tensor:
    """A point from a diagonal Gaussian mixture.

    Args:
        mixture (tuple[Tensor, Tensor, Tensor]): logits (..., G), means and log-scales
            (..., G, D).
        mode (str): ``mean``: the mean of the most likely component; ``sample``: draw a
            component, then a point with the scales multiplied by ``temperature``.
        temperature (float): scale multiplier for ``sample``.

    Returns:
        Tensor: points, (..., D).
    """
    logits, means, log_scales = mixture
    if mode == "mean":
        comp = logits.argmax(dim=-1)
    elif mode == "sample":
        comp = torch.distributions.Categorical(logits=logits).sample()
    else:
        raise ValueError(f"prosody mode must be 'mean' or 'sample', got {mode!r}")
    index = comp[..., None, None].expand(*comp.shape, 1, means.shape[-1])
    mu = means.gather(-2, index).squeeze(-2)
    if mode == "mean":
        return mu
    scale = log_scales.gather(-2, index).squeeze(-2).exp()
    return mu + temperature * scale * torch.randn_like(mu)


class MixtureHead(nn.Module):
    """Linear layer emitting a diagonal Gaussian mixture over ``dim``-vectors.

    Args:
        in_dim (int): input width.
        components (int): mixture components G.
        dim (int): embedding size D.
        log_scale_min (float): floor of the log-scales (keeps the likelihood bounded).
    """

    def __init__(self, in_dim: int, components: int, dim: int, log_scale_min: float = -5.0):
        super().__init__()
        self.components, self.dim, self.log_scale_min = components, dim, log_scale_min
        self.proj = nn.Linear(in_dim, components * (1 + 2 * dim))

    def forward(self, h: Tensor) -> Mixture:
        """(..., in_dim) → logits (..., G), means (..., G, D), log-scales (..., G, D)."""
        g, d = self.components, self.dim
        out = self.proj(h)
        logits, rest = out[..., :g], out[..., g:].unflatten(-1, (g, 2 * d))
        means, log_scales = rest[..., :d], rest[..., d:].clamp(min=self.log_scale_min)
        return logits, means, log_scales


def _log_likelihood(outputs: dict[str, Tensor], prefix: str) -> Tensor:
    """Log-likelihood of the (detached) extracted embeddings under the ``prefix`` mixtures."""
    target_key = "prosody_target" if prefix == "gmm" else "global_prosody_target"
    mixture = tuple(outputs[f"{prefix}_{part}"] for part in ("logits", "means", "log_scales"))
    return gmm_log_likelihood(outputs[target_key].detach(), mixture)


def _gmm_loss(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Mean segment NLL over the real segments (``seg_mask``)."""
    return masked_mean(-_log_likelihood(outputs, "gmm"), outputs["seg_mask"])


def _global_gmm_loss(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Mean utterance-level NLL."""
    return -_log_likelihood(outputs, "global_gmm").mean()


GMM_TERM = LossTerm("gmm", "beta", _gmm_loss, header="dev gmm")
GLOBAL_GMM_TERM = LossTerm("global_gmm", "g_beta", _global_gmm_loss)


@PROSODY.register("none")
class NoProsody(ProsodyBase):
    """No prosody module: the encoder output passes unchanged, no outputs, no parameters.

    Args:
        hidden (int): model width (unused).
        mel_dim (int): width of a reduced target mel frame (unused).
        cfg (Prosody): prosody settings (unused).
    """

    def __init__(self, hidden: int, mel_dim: int, cfg: Prosody) -> None:
        super().__init__()

    def forward(
        self,
        enc: Tensor,
        src_mask: Tensor,
        src_ids: Tensor,
        n_cols: int,
        tgt_mel: Tensor,
        tgt_mask: Tensor,
        tgt_ids: Tensor,
        seg_mask: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``(enc, {})``."""
        return enc, {}

    def infer(
        self,
        enc: Tensor,
        src_mask: Tensor,
        src_ids: Tensor,
        n_cols: int,
        mode: str = "mean",
        temperature: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``(enc, {})``."""
        return enc, {}


@PROSODY.register("gmm")
class ProsodyModule(ProsodyBase):
    """Reference extractor, segment/global embeddings and their mixture predictors.

    Args:
        hidden (int): model width.
        mel_dim (int): width of a reduced target mel frame (``n_mels * r``).
        cfg (Prosody): prosody settings.
    """

    segment_outputs = ("prosody",)

    def __init__(self, hidden: int, mel_dim: int, cfg: Prosody) -> None:
        super().__init__()
        d, c = cfg.dim, cfg.extractor_channels
        self.use_global, self.stop_gradient = cfg.use_global, cfg.stop_gradient
        self.extractor = ConvStack(mel_dim, c, cfg.extractor_layers, cfg.extractor_kernel, 0.0)
        self.seg_embed = nn.Linear(c, d)
        self.seg_proj = nn.Linear(d, hidden)
        self.gru = nn.GRU(
            hidden + d * (2 if cfg.use_global else 1), cfg.gru_hidden, batch_first=True
        )
        self.seg_head = MixtureHead(cfg.gru_hidden, cfg.num_gaussians, d)
        if cfg.use_global:
            self.global_embed = nn.Linear(c, d)
            self.global_proj = nn.Linear(d, hidden)
            self.global_net = nn.Sequential(nn.Linear(hidden, cfg.gru_hidden), nn.Tanh())
            self.global_head = MixtureHead(cfg.gru_hidden, cfg.global_num_gaussians, d)

    def _gru_input(self, pooled: Tensor, prev: Tensor, glob: Tensor | None) -> Tensor:
        parts = [pooled, prev]
        if glob is not None:
            parts.append(glob[:, None].expand(-1, pooled.shape[1], -1))
        return torch.cat(parts, dim=-1)

    def _add(self, enc: Tensor, mask: Tensor, ids: Tensor, seg: Tensor, glob: Tensor | None):
        out = enc + segment_expand(self.seg_proj(seg), ids, mask)
        if glob is not None:
            out = out + self.global_proj(glob)[:, None].masked_fill(~mask[..., None], 0.0)
        return out

    def _predictor_input(self, enc: Tensor, mask: Tensor, ids: Tensor, n_cols: int):
        h = enc.detach() if self.stop_gradient else enc
        return segment_pool(h, ids, mask, n_cols), utterance_mean(h, mask)

    def forward(
        self,
        enc: Tensor,
        src_mask: Tensor,
        src_ids: Tensor,
        n_cols: int,
        tgt_mel: Tensor,
        tgt_mask: Tensor,
        tgt_ids: Tensor,
        seg_mask: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Training: add the extracted embeddings, predict their mixtures (teacher forced).

        Args:
            enc (Tensor): encoder output, (B, Ls, hidden).
            src_mask (Tensor): real reduced source frames, (B, Ls) bool.
            src_ids (Tensor): source segment ids, (B, Ls) long.
            n_cols (int): segment columns K.
            tgt_mel (Tensor): reduced target mel, (B, Lt, mel_dim).
            tgt_mask (Tensor): real reduced target frames, (B, Lt) bool.
            tgt_ids (Tensor): target segment ids, (B, Lt) long.
            seg_mask (Tensor | None): real segments, (B, K) bool; ``None``: the segments
                that have a real source frame.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: encoder output with embeddings added, and
            ``prosody_target`` (B, K, D) (detached), ``gmm_logits`` (B, K, G), ``gmm_means``
            and ``gmm_log_scales`` (B, K, G, D), ``seg_mask`` (B, K); with ``use_global``
            also ``global_prosody_target`` (B, D), ``global_gmm_logits`` (B, G'),
            ``global_gmm_means`` and ``global_gmm_log_scales`` (B, G', D).
        """
        if seg_mask is None:
            cols = torch.arange(n_cols, device=enc.device)
            seg_mask = (src_ids.masked_fill(~src_mask, -1)[..., None] == cols).any(dim=1)
        feats = self.extractor(tgt_mel, tgt_mask)
        seg = torch.tanh(self.seg_embed(segment_pool(feats, tgt_ids, tgt_mask, n_cols)))
        glob = None
        pooled, pooled_global = self._predictor_input(enc, src_mask, src_ids, n_cols)
        out: dict[str, Tensor] = {"prosody_target": seg.detach()}
        if self.use_global:
            glob = torch.tanh(self.global_embed(utterance_mean(feats, tgt_mask)))
            mix = self.global_head(self.global_net(pooled_global))
            out.update(global_prosody_target=glob.detach(), **_named("global_gmm", mix))
        prev = torch.cat([torch.zeros_like(seg[:, :1]), seg[:, :-1]], dim=1).detach()
        states, _ = self.gru(self._gru_input(pooled, prev, None if glob is None else glob.detach()))
        out.update(_named("gmm", self.seg_head(states)), seg_mask=seg_mask)
        return self._add(enc, src_mask, src_ids, seg, glob), out

    @torch.no_grad()
    def infer(
        self,
        enc: Tensor,
        src_mask: Tensor,
        src_ids: Tensor,
        n_cols: int,
        mode: str = "mean",
        temperature: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Inference: choose embeddings from the predicted mixtures, segment by segment.

        Args:
            enc (Tensor): encoder output, (B, Ls, hidden).
            src_mask (Tensor): real reduced source frames, (B, Ls) bool.
            src_ids (Tensor): source segment ids, (B, Ls) long.
            n_cols (int): segment columns K.
            mode (str): ``mean`` or ``sample`` (see :func:`gmm_choose`).
            temperature (float): sampling temperature.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: encoder output with embeddings added, and
            ``prosody`` (B, K, D) (plus ``global_prosody`` (B, D) with ``use_global``).
            Samples are clipped to [-1, 1], the range of the extracted embeddings.
        """
        pooled, pooled_global = self._predictor_input(enc, src_mask, src_ids, n_cols)
        glob, out = None, {}
        if self.use_global:
            mix = self.global_head(self.global_net(pooled_global))
            glob = gmm_choose(mix, mode, temperature).clamp(-1.0, 1.0)
            out["global_prosody"] = glob
        prev = enc.new_zeros(len(enc), 1, self.seg_embed.out_features)
        hidden, chosen = None, []
        for k in range(n_cols):
            state, hidden = self.gru(self._gru_input(pooled[:, k : k + 1], prev, glob), hidden)
            prev = gmm_choose(self.seg_head(state), mode, temperature).clamp(-1.0, 1.0)
            chosen.append(prev)
        seg = torch.cat(chosen, dim=1)
        out["prosody"] = seg
        return self._add(enc, src_mask, src_ids, seg, glob), out

    @classmethod
    def loss_terms(cls, cfg: Prosody) -> tuple[LossTerm, ...]:
        """``gmm`` (weight ``loss.beta``), and ``global_gmm`` (``loss.g_beta``) with global."""
        return (GMM_TERM, GLOBAL_GMM_TERM) if cfg.use_global else (GMM_TERM,)

    @classmethod
    def all_loss_terms(cls) -> tuple[LossTerm, ...]:
        return (GMM_TERM, GLOBAL_GMM_TERM)

    @classmethod
    def loss_condition(cls, name: str) -> str:
        return "use_global" if name == GLOBAL_GMM_TERM.name else ""

    @classmethod
    def label(cls, cfg: Prosody) -> str:
        return "gmm+global" if cfg.use_global else "gmm"


def _named(prefix: str, mixture: Mixture) -> dict[str, Tensor]:
    logits, means, log_scales = mixture
    return {
        f"{prefix}_logits": logits,
        f"{prefix}_means": means,
        f"{prefix}_log_scales": log_scales,
    }
