"""Autoregressive pitch predictor: conv front-end, then an LSTM over reduced frames.

Each reduced frame's ``r`` pitch values are predicted from the front-end output
and the pitch of the ``n_prev`` previous reduced frames (zeros before the
start). Training uses teacher forcing (the previous ground-truth values), as
one fused ``nn.LSTM`` call when zoneout is 0; with zoneout, the LSTM runs as a
cell loop so every step can mix old and new states [Krueger et al., "Zoneout:
Regularizing RNNs by randomly preserving hidden activations", ICLR 2017]:
``h_t = d ⊙ h_{t-1} + (1 - d) ⊙ h̃_t`` with ``d ~ Bernoulli(p)`` in training
and its expectation ``d = p`` at evaluation. Inference is a true
autoregressive loop, one cell step per reduced frame for the whole batch.

With one LSTM layer and ``n_prev = 1`` (the usual setting), the fed-back value
is a linear function of the previous hidden state, ``p_{t-1} = W_p h_{t-1} + b_p``,
so its contribution to the gates folds into the recurrent weights:
``W_hh' = W_hh + W_prev W_p`` and bias ``b' = b + W_prev b_p`` (minus the bias at
``t = 0``, where nothing is fed back). The evaluation-mode decoding is then an
ordinary LSTM over the front-end output — exactly the same recursion, run by
PyTorch's fused LSTM kernel when zoneout is 0, or by a short cell loop with
about half the operations per frame otherwise (:meth:`ARPitchPredictor.generate`).

Registered as ``model.pitch_predictor.type: ar``. The LSTM decoding runs on
given front-end features (:meth:`ARPitchPredictor.decode_forced`,
:meth:`ARPitchPredictor.decode`), so a variant may arrange the sequences it
decodes differently (``arnar``: :mod:`vc_toolkit.models.arnar_pitch`).

Example:
    >>> import torch
    >>> from vc_toolkit.config.tag import PitchPredictor, ARPitch
    >>> cfg = PitchPredictor(type="ar", channels=8, ar=ARPitch(lstm_hidden=8, zoneout=0.0))
    >>> pred = ARPitchPredictor(16, cfg, r=2).eval()
    >>> x, mask = torch.randn(1, 3, 16), torch.ones(1, 3, dtype=torch.bool)
    >>> pred.generate(x, mask).shape
    torch.Size([1, 3, 2])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vc_toolkit.config.tag import PitchPredictor
from vc_toolkit.models.interfaces import PitchPredictorBase
from vc_toolkit.models.layers import ConvStack
from vc_toolkit.models.registry import PITCH_PREDICTORS

State = list[tuple[Tensor, Tensor]]


@PITCH_PREDICTORS.register("ar")
class ARPitchPredictor(PitchPredictorBase):
    """Conv front-end + LSTM pitch head, ``r`` values per reduced frame.

    Args:
        in_dim (int): input width (model hidden).
        cfg (PitchPredictor): front-end settings and ``cfg.ar`` (LSTM units, layers,
            zoneout, output dropout, ``n_prev``).
        r (int): reduction factor (pitch values per reduced frame).
    """

    def __init__(self, in_dim: int, cfg: PitchPredictor, r: int) -> None:
        super().__init__()
        ar = cfg.ar
        self.stop_gradient, self.r, self.n_prev = cfg.stop_gradient, r, ar.n_prev
        self.zoneout, self.channels = ar.zoneout, cfg.channels
        self.front = ConvStack(in_dim, cfg.channels, cfg.layers, cfg.kernel_size, cfg.dropout)
        self.lstm = nn.LSTM(
            cfg.channels + ar.n_prev * r, ar.lstm_hidden, ar.lstm_layers, batch_first=True
        )
        self.dropout = nn.Dropout(ar.dropout)
        self.proj = nn.Linear(ar.lstm_hidden, r)

    def history(self, pitch: Tensor) -> Tensor:
        """Previous reduced frames of pitch, most recent first.

        Args:
            pitch (Tensor): pitch, (B, L, r).

        Returns:
            Tensor: ``[p_{t-1}, ..., p_{t-n_prev}]`` per frame ``t`` (zeros before the start),
            (B, L, n_prev * r).
        """
        n, length = self.n_prev, pitch.shape[1]
        padded = F.pad(pitch, (0, 0, n, 0))
        return torch.cat([padded[:, n - k : n - k + length] for k in range(1, n + 1)], dim=-1)

    def _front(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.front(x.detach() if self.stop_gradient else x, mask)

    def _weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        lstm = self.lstm
        return (
            getattr(lstm, f"weight_ih_l{layer}"),
            getattr(lstm, f"bias_ih_l{layer}"),
            getattr(lstm, f"weight_hh_l{layer}"),
            getattr(lstm, f"bias_hh_l{layer}"),
        )

    def _zoneout(self, old: Tensor, new: Tensor) -> Tensor:
        p = self.zoneout
        if p == 0:
            return new
        if self.training:
            return torch.where(torch.rand_like(new) < p, old, new)
        return p * old + (1 - p) * new

    def _step(self, gates_in: Tensor, state: State) -> tuple[Tensor, State]:
        """One LSTM step over all layers; ``gates_in`` is layer 0's input projection (B, 4H)."""
        new_state, below = [], None
        for layer, (h, c) in enumerate(state):
            w_ih, b_ih, w_hh, b_hh = self._weights(layer)
            gates = gates_in if layer == 0 else F.linear(below, w_ih, b_ih)
            i, f, g, o = (gates + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            h_new, c_new = self._zoneout(h, h_new), self._zoneout(c, c_new)
            new_state.append((h_new, c_new))
            below = h_new
        return below, new_state

    def _zero_state(self, x: Tensor) -> State:
        shape = (x.shape[0], self.lstm.hidden_size)
        return [(x.new_zeros(shape), x.new_zeros(shape)) for _ in range(self.lstm.num_layers)]

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        target: Tensor | None = None,
        seg_ids: Tensor | None = None,
    ) -> Tensor:
        """Teacher-forced prediction.

        Args:
            x (Tensor): hidden sequence at reduced target frames, (B, L, in_dim).
            mask (Tensor): real frames, (B, L) bool.
            target (Tensor | None): ground-truth normalised log-F0, (B, L, r); ``None``:
                free-running (:meth:`generate`).
            seg_ids (Tensor | None): ignored (one sequence per utterance).

        Returns:
            Tensor: predicted pitch, (B, L, r), zero on padding.
        """
        if target is None:
            return self.generate(x, mask)
        return self.decode_forced(self._front(x, mask), target).masked_fill(~mask[..., None], 0.0)

    def infer(self, x: Tensor, mask: Tensor, seg_ids: Tensor | None = None) -> Tensor:
        """Autoregressive prediction (:meth:`generate`); ``seg_ids`` ignored."""
        return self.generate(x, mask)

    def decode_forced(self, front: Tensor, target: Tensor) -> Tensor:
        """Teacher-forced LSTM decoding of front-end features, each row from a zero state.

        Args:
            front (Tensor): front-end output, (N, L, channels).
            target (Tensor): pitch fed back, (N, L, r).

        Returns:
            Tensor: pitch, (N, L, r) (not masked).
        """
        inputs = torch.cat([front, self.history(target)], dim=-1)
        if self.zoneout == 0:
            out, _ = self.lstm(inputs)
        else:
            w_ih, b_ih, _, _ = self._weights(0)
            gates_in, state, outs = F.linear(inputs, w_ih, b_ih), self._zero_state(front), []
            for t in range(inputs.shape[1]):
                h, state = self._step(gates_in[:, t], state)
                outs.append(h)
            out = torch.stack(outs, dim=1)
        return self.proj(self.dropout(out))

    def foldable(self) -> bool:
        """Whether :meth:`generate` may fold the feedback into the recurrence (see module doc)."""
        return not self.training and self.lstm.num_layers == 1 and self.n_prev == 1

    def generate(
        self, x: Tensor, mask: Tensor, teacher: Tensor | None = None, fold: bool = True
    ) -> Tensor:
        """Autoregressive prediction, one cell step per reduced frame.

        Args:
            x (Tensor): hidden sequence at reduced target frames, (B, L, in_dim).
            mask (Tensor): real frames, (B, L) bool.
            teacher (Tensor | None): if given, (B, L, r) values fed back instead of the
                predictions (to check the loop against teacher forcing).
            fold (bool): use the folded recursion when :meth:`foldable` (same result,
                faster); False always runs the explicit feedback loop.

        Returns:
            Tensor: predicted pitch, (B, L, r), zero on padding.
        """
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], 0, self.r)
        return self.decode(self._front(x, mask), teacher, fold).masked_fill(~mask[..., None], 0.0)

    def decode(self, front: Tensor, teacher: Tensor | None = None, fold: bool = True) -> Tensor:
        """Autoregressive LSTM decoding of front-end features, each row from a zero state.

        Args:
            front (Tensor): front-end output, (N, L, channels), ``L >= 1``.
            teacher (Tensor | None): values fed back instead of the predictions, (N, L, r).
            fold (bool): as in :meth:`generate`.

        Returns:
            Tensor: pitch, (N, L, r) (not masked).
        """
        if teacher is None and fold and self.foldable():
            return self._generate_folded(front)
        return self._generate_loop(front, teacher)

    def _generate_folded(self, front: Tensor) -> Tensor:
        """Evaluation-mode decoding with the feedback folded into the recurrence, (B, L, r)."""
        c, p = self.channels, self.zoneout
        w_ih, b_ih, w_hh, b_hh = self._weights(0)
        w_front, w_prev = w_ih[:, :c], w_ih[:, c:]
        feedback = w_prev @ self.proj.bias  # (4H,): the fed-back bias's share of the gates
        w_rec = w_hh + w_prev @ self.proj.weight  # (4H, H)
        zero = front.new_zeros(front.shape[0], self.lstm.hidden_size)
        # t = 0: nothing is fed back, so its gates lack the feedback bias
        h, c_state = self._cell(F.linear(front[:, 0], w_front, b_ih + b_hh), zero)
        h, c_state = torch.lerp(h, zero, p), torch.lerp(c_state, zero, p)
        if front.shape[1] > 1 and p == 0:
            params = [w_front, w_rec, b_ih + feedback, b_hh]
            rest, _, _ = torch.lstm(
                front[:, 1:], (h[None], c_state[None]), params, True, 1, 0.0, False, False, True
            )
            return self.proj(torch.cat([h[:, None], rest], dim=1))
        gates = F.linear(front[:, 1:], w_front, b_ih + b_hh + feedback)
        w_rec_t, outs = w_rec.t(), [h]
        for t in range(gates.shape[1]):
            h_new, c_new = self._cell(torch.addmm(gates[:, t], h, w_rec_t), c_state)
            h, c_state = torch.lerp(h_new, h, p), torch.lerp(c_new, c_state, p)
            outs.append(h)
        return self.proj(torch.stack(outs, dim=1))

    @staticmethod
    def _cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """LSTM nonlinearity on precomputed gates (B, 4H) (PyTorch's i, f, g, o order)."""
        i, f, g, o = gates.chunk(4, dim=-1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_new), c_new

    def _generate_loop(self, front: Tensor, teacher: Tensor | None) -> Tensor:
        """The explicit feedback loop (any layers, ``n_prev``, train or eval mode), (B, L, r)."""
        c = self.channels
        w_ih, b_ih, _, _ = self._weights(0)
        front_gates = F.linear(front, w_ih[:, :c], b_ih)
        w_prev = w_ih[:, c:]
        given = None if teacher is None else self.history(teacher)
        prev = front.new_zeros(front.shape[0], self.n_prev * self.r)
        state, outs = self._zero_state(front), []
        for t in range(front.shape[1]):
            if given is not None:
                prev = given[:, t]
            h, state = self._step(front_gates[:, t] + F.linear(prev, w_prev), state)
            y = self.proj(self.dropout(h))
            prev = torch.cat([y, prev[:, : -self.r]], dim=-1)
            outs.append(y)
        return torch.stack(outs, dim=1)
