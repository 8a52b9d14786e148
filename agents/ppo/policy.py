"""The acting side of a trained PPO policy: :func:`load_policy` → :class:`PPOPolicy`, a batched
policy that keeps its own recurrent state (what evaluation loops call)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from thorgym.agents.runtime import resolve_device
from thorgym.rundir import checkpoint_contents, load_torch_checkpoint

from .model import PolicySpec, RecurrentActorCritic
from .trainer import CKPT_FORMAT, latest_checkpoint, obs_to_torch

__all__ = ["PPOPolicy", "load_policy"]


class PPOPolicy:
    """A trained policy acting for a batch of environments; keeps its own recurrent state."""

    def __init__(self, model: RecurrentActorCritic, device: torch.device, seed: int = 0) -> None:
        self.model = model.eval()
        self.device = device
        self.spec = model.spec
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.state: torch.Tensor | None = None
        self.prev: torch.Tensor | None = None

    def reset(self, n: int) -> None:
        """Forget the recurrent state: ``n`` environments, all at an episode start."""
        self.state = torch.zeros(n, self.model.state_size, device=self.device)
        self.prev = torch.full((n,), self.spec.num_actions, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def act(
        self, obs: dict[str, np.ndarray], episode_start: np.ndarray, deterministic: bool = False
    ) -> np.ndarray:
        """(N,) int64 actions for the observations ``obs``; ``episode_start`` (N,) bool marks
        environments whose observation is the first of an episode (their state is zeroed)."""
        o = obs_to_torch(obs, self.spec, self.device)
        n = o["target"].shape[0]
        if self.state is None or self.state.shape[0] != n:
            self.reset(n)
        starts = torch.as_tensor(np.asarray(episode_start, dtype=bool), device=self.device).reshape(n)
        prev = torch.where(starts, self.spec.num_actions, self.prev)
        vis = self.model.visual(o)
        logits, _, self.state = self.model.forward_sequence(
            vis[None], {k: v[None] for k, v in o.items()}, prev[None], starts[None], self.state
        )
        logits = logits[0]
        if deterministic:
            action = logits.argmax(-1)
        else:
            action = torch.multinomial(logits.softmax(-1), 1, generator=self.gen).squeeze(1)
        self.prev = action
        return action.cpu().numpy().astype(np.int64)


_HINT = "pass a final.pt or checkpoints/ckpt_*.pt written by `thorgym train objectnav --agent ppo`"


def load_policy(path: Path, device: str = "cpu", seed: int = 0) -> PPOPolicy:
    """Load a PPO checkpoint (``final.pt``, a ``ckpt_<steps>.pt`` or a run directory: its
    ``final.pt``, else its latest checkpoint) as a batched acting :class:`PPOPolicy`."""
    path = Path(path)
    if path.is_dir():
        found = path / "final.pt" if (path / "final.pt").is_file() else latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"{path} holds neither final.pt nor checkpoints/ckpt_*.pt")
        path = found
    payload = load_torch_checkpoint(path, CKPT_FORMAT, "PPO", _HINT)
    dev = resolve_device(device)
    with checkpoint_contents(path, "PPO"):
        model = RecurrentActorCritic(PolicySpec.from_dict(payload["spec"]))
        model.load_state_dict(payload["model"])
    return PPOPolicy(model.to(dev), dev, seed)
