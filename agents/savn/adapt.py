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
"""

from __future__ import annotations

import torch

from .model import Params, SAVNNet, policy_step

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
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.net = net
        self.num_envs = num_envs
        self.adaptive = adaptive
        self.inner_lr = float(inner_lr)
        self.first_order = first_order
        self.max_updates = int(max_updates)
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
        dev = next(iter(theta.values())).device
        self.h = torch.zeros(n, cfg.hidden, device=dev)
        self.c = torch.zeros(n, cfg.hidden, device=dev)
        self.prev = torch.zeros(n, cfg.num_actions, device=dev)
        self.history: list[torch.Tensor] = []
        self.t = 0
        self.updates = torch.zeros(n, dtype=torch.long, device=dev)

    def act(self, features: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One batched forward for all environments: (logits (N, A), value (N,))."""
        logits, value, self.h, self.c = policy_step(self.fast, features, target, self.prev, self.h, self.c)
        probs = torch.softmax(logits, dim=-1)
        self.prev = probs
        if self.adaptive:
            self.history.append(torch.cat([self.h, probs], dim=1))
            self.history = self.history[-self.window :]
        self.t += 1
        return logits, value

    def value(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Critic value of the next state with the current weights (does not advance the state)."""
        _, value, _, _ = policy_step(self.fast, features, target, self.prev, self.h, self.c)
        return value

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
        names = [k for k, v in self.fast.items() if v.requires_grad]
        create = (not self.first_order) and torch.is_grad_enabled()
        with torch.enable_grad():
            grads = torch.autograd.grad(
                total,
                [self.fast[k] for k in names],
                create_graph=create,
                retain_graph=True,
                allow_unused=True,
            )
        for k, g in zip(names, grads, strict=True):
            if g is not None:  # the critic does not reach the interaction loss
                self.fast[k] = self.fast[k] - self.inner_lr * g
        self.updates = self.updates + eligible.long()
        return eligible
