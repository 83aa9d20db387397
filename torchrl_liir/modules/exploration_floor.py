"""The exploration floor of the LIIR authors' released code: π'(u|o) = (1 − ε)·π(u|o) + ε / |available actions|.

The paper does not mention it; the authors' SMAC code (pymarl's non-test-mode agent output) mixes every
actor-critic policy with a uniform distribution over the available actions, with ε annealed linearly from
0.5 to 0.01 over the first 50k environment steps (100k in pymarl's COMA), and trains on the log-probabilities
of that mixture.
TorchRL has ε-greedy for value-based actors (``EGreedyModule``) but nothing that mixes a stochastic policy's
probabilities, so it is written here. Greedy actions are unchanged: the mixture is monotone in π.
"""
from __future__ import annotations

import torch
from torch import nn


class ExplorationFloor(nn.Module):
    """Logits of π' = (1 − ε)·softmax(logits) + ε·uniform(available actions).

    ``epsilon`` is a buffer (saved with the actor, moved with it, and left out of its parameters, so the
    meta-gradient's functional policy step sees the same mixture as the collector). Without a mask, every
    action is available. ``forward(logits [..., n_actions], mask=None)`` returns the mixture's log-probabilities
    ``[..., n_actions]``, used as the categorical's logits.

    Args:
        epsilon: ε, the uniform share of the mixture (0: π itself).
    """

    def __init__(self, epsilon: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("epsilon", torch.tensor(float(epsilon)))

    def forward(self, logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones_like(logits, dtype=torch.bool)
        probs = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
        uniform = mask.to(probs.dtype) / mask.sum(-1, keepdim=True).clamp_min(1)
        eps = self.epsilon.to(probs.dtype)
        mixed = (1 - eps) * probs + eps * uniform
        # Unavailable actions have probability 0: clamping before the log keeps their gradient finite (0),
        # and the masked distribution ignores their logits.
        return mixed.clamp_min(torch.finfo(mixed.dtype).tiny).log()


def linear_epsilon(frames: int, start: float, end: float, anneal_frames: int) -> float:
    """ε after ``frames`` environment steps: linear from ``start`` to ``end`` over ``anneal_frames``, then flat
    (pymarl's ``DecayThenFlatSchedule``)."""
    if anneal_frames <= 0:
        return end
    return start + (end - start) * min(frames / anneal_frames, 1.0)
