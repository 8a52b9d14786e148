"""SAVN's inner loop: per-environment fast weights adapted by the learned interaction loss.

At an episode start every environment's fast weights are the initial weights θ (a stride-0
``expand`` view, no copy). After every ``window`` (6) actions each environment still running
takes one SGD step ``fast_i ← fast_i − inner_lr · ∇_{fast_i} L_φ(history_i)`` with its own
interaction loss, at most ``max_updates`` (4) per episode. The gradients of all environments come
from one ``autograd.grad`` of ``Σ_i active_i · L_i``: ``L_i`` depends only on environment i's
slice of the fast weights, so the slice of the gradient is environment i's own gradient.

``first_order=False`` builds the graph of the inner steps (``create_graph=True``) so that a loss
computed later in the episode differentiates through them to θ and to the loss network φ — SAVN's
MAML-style meta-gradient. ``first_order=True`` treats the inner gradients as constants: θ still
gets the gradient of the adapted weights (identity Jacobian), but φ gets none, since φ reaches the
outer loss only through the second-order term.

``adaptive=False`` is the paper's non-adaptive A3C baseline: the same network with shared weights
and no inner steps.

``lowrank=True`` (default) computes the same thing faster for the LSTM's two big matrices
(``4·hidden × fuse·G²`` and ``4·hidden × hidden``): their gradient over the steps that used the
current fast weights is ``Σ_t g_t x_tᵀ`` (``g_t`` = gradient at the step's gate pre-activation,
``x_t`` its input), so each environment's fast matrix is kept as ``θ + Σ U Vᵀ`` with ``U = −lr·[g_t]``
and ``V = [x_t]`` (rank ≤ 6 per inner step) and applied as ``θx + U(Vᵀx)``. Per-environment
``(N, out, in)`` matrices and their per-step gradients — most of the dense version's time — are
never formed. The values and the meta-gradient are those of ``lowrank=False`` (a test checks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import Params, SAVNNet, heads, lstm_cell, lstm_input, policy_step

_LOWRANK = ("lstm.weight_ih", "lstm.weight_hh")

__all__ = ["FastWeightLearner"]


class FastWeightLearner:
    """Acts for N synchronised environments (all start their episodes together) and adapts.

    Usage per episode batch: :meth:`reset`, then per step :meth:`act` and :meth:`maybe_adapt`.
    """

    def __init__(
        self,
        net: SAVNNet,
        num_envs: int,
        adaptive: bool = True,
        inner_lr: float = 1e-4,
        first_order: bool = False,
        max_updates: int = 4,
        lowrank: bool = True,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.net = net
        self.num_envs = num_envs
        self.adaptive = adaptive
        self.inner_lr = float(inner_lr)
        self.first_order = first_order
        self.max_updates = int(max_updates)
        self.lowrank = bool(lowrank) and adaptive
        self.window = net.config.loss.window
        self.fast: Params = {}
        self.reset()

    def reset(self) -> None:
        """New episodes for all environments: fast weights back to θ, LSTM state and history cleared."""
        n, cfg = self.num_envs, self.net.config
        theta = self.net.policy_params()
        if self.adaptive:
            self.fast = {k: p.unsqueeze(0).expand(n, *p.shape) for k, p in theta.items()}
        else:
            self.fast = dict(theta)
        # lowrank: the LSTM matrices stay θ (shared) in `fast`; each environment's change is
        # U @ V^T with U (N, out, R), V (N, in, R); `segment` holds (input, pre-activation) of
        # each matrix at the steps since the last inner step (the steps that used the current
        # fast weights)
        self.factors: dict[str, tuple[torch.Tensor, torch.Tensor] | None] = {}
        self.segment: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        if self.lowrank:
            for k in _LOWRANK:
                self.fast[k] = theta[k]
                self.factors[k] = None
                self.segment[k] = []
        dev = next(iter(theta.values())).device
        self.h = torch.zeros(n, cfg.hidden, device=dev)
        self.c = torch.zeros(n, cfg.hidden, device=dev)
        self.prev = torch.zeros(n, cfg.num_actions, device=dev)
        self.history: list[torch.Tensor] = []
        self.t = 0
        self.updates = torch.zeros(n, dtype=torch.long, device=dev)

    def act(self, features: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One batched forward for all environments: (logits (N, A), value (N,))."""
        logits, value, self.h, self.c = self._step(features, target, record=True)
        probs = torch.softmax(logits, dim=-1)
        self.prev = probs
        if self.adaptive:
            self.history.append(torch.cat([self.h, probs], dim=1))
            self.history = self.history[-self.window :]
        self.t += 1
        return logits, value

    def value(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Critic value of the next state with the current weights (does not advance the state)."""
        _, value, _, _ = self._step(features, target, record=False)
        return value

    def _step(
        self, features: torch.Tensor, target: torch.Tensor, record: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if not self.lowrank:
            return policy_step(self.fast, features, target, self.prev, self.h, self.c)
        x = lstm_input(self.fast, features, target, self.prev)
        gi = self._matrix("lstm.weight_ih", x, record)
        gh = self._matrix("lstm.weight_hh", self.h, record)
        bias = self.fast["lstm.bias_ih"] + self.fast["lstm.bias_hh"]
        h, c = lstm_cell(gi + gh + bias, self.c)
        logits, value = heads(self.fast, h)
        return logits, value, h, c

    def _matrix(self, name: str, x: torch.Tensor, record: bool) -> torch.Tensor:
        """``fast_i x_i`` for the low-rank matrix ``name``: ``θx + U(Vᵀx)``."""
        y = F.linear(x, self.fast[name])
        uv = self.factors[name]
        if uv is not None:
            u, v = uv
            y = y + torch.bmm(u, torch.bmm(x.unsqueeze(1), v).transpose(1, 2)).squeeze(2)
        if record:
            self.segment[name].append((x, y))
        return y

    def fast_weight(self, name: str) -> torch.Tensor:
        """Environment i's current fast weight ``name`` as ``(N, *shape)`` (built when low-rank)."""
        if name in self.factors:
            theta = self.fast[name]
            w = theta.unsqueeze(0).expand(self.num_envs, *theta.shape)
            uv = self.factors[name]
            return w if uv is None else w + torch.bmm(uv[0], uv[1].transpose(1, 2))
        w = self.fast[name]
        return w if self.adaptive else w.expand(self.num_envs, *w.shape)

    def maybe_adapt(self, active: torch.Tensor) -> torch.Tensor:
        """After every ``window``-th action: one inner SGD step for the active environments that
        have not reached ``max_updates``. Returns the (N,) bool mask of environments updated."""
        none = torch.zeros(self.num_envs, dtype=torch.bool, device=self.updates.device)
        if not self.adaptive or self.t == 0 or self.t % self.window != 0:
            return none
        eligible = active.to(self.updates.device).bool() & (self.updates < self.max_updates)
        if not bool(eligible.any()):
            return none
        losses = self.net.interaction_loss(torch.stack(self.history, dim=1))
        total = (losses * eligible.to(losses.dtype)).sum()
        names = [k for k, v in self.fast.items() if v.requires_grad and k not in self.factors]
        seg = [(k, x, y) for k in self.factors for x, y in self.segment[k]]
        create = (not self.first_order) and torch.is_grad_enabled()
        with torch.enable_grad():
            grads = torch.autograd.grad(
                total,
                [self.fast[k] for k in names] + [y for _, _, y in seg],
                create_graph=create,
                retain_graph=True,
                allow_unused=True,
            )
        for k, g in zip(names, grads[: len(names)], strict=True):
            if g is not None:  # the critic does not reach the interaction loss
                self.fast[k] = self.fast[k] - self.inner_lr * g
        for k in self.factors:
            # grad of fast_i = Σ_t g_t x_tᵀ over the segment: append U = −lr·[g_t], V = [x_t]
            pairs = [(x, g) for (kk, x, _), g in zip(seg, grads[len(names) :], strict=True) if kk == k]
            pairs = [(x, g) for x, g in pairs if g is not None]
            if pairs:
                u = -self.inner_lr * torch.stack([g for _, g in pairs], dim=2)
                v = torch.stack([x for x, _ in pairs], dim=2)
                if not create:  # first order: the update is a constant, as in the dense version
                    u, v = u.detach(), v.detach()
                old = self.factors[k]
                self.factors[k] = (
                    (u, v) if old is None else (torch.cat([old[0], u], 2), torch.cat([old[1], v], 2))
                )
            self.segment[k] = []
        self.updates = self.updates + eligible.long()
        return eligible
