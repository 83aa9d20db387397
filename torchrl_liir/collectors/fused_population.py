"""Several members' SMAX batches from one compiled program: populations of runs collect together."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDictBase

from torchrl_liir.collectors.fused_smax import FusedSMAXCollector, run_members


class FusedSMAXPopulation:
    """Each member's next batch, as its own :class:`FusedSMAXCollector` would collect it, from one call of one
    compiled program over all members (``jax.vmap`` over a member axis).

    Every member keeps its policy, its env's reset and step key streams and its sampling keys, so member ``i``'s
    batches are those its collector would collect alone; only the call is shared. That is for GPUs, where one
    member's 32 battles leave the device nearly idle. On a CPU it is slower than the members one by one (BENCHMARKS.md,
    "Collection"): the fused program has no per-call cost left to share, and every member's battles are stepped
    until the slowest member's have ended.
    The members' collectors must agree on the map, the wall rule, the battle count, the limits, the policy's
    structure, the exploration type and the device.

    Args:
        members: one :class:`FusedSMAXCollector` per member; they hold the members' state (keys, frames).
    """

    def __init__(self, members: Sequence[FusedSMAXCollector]) -> None:
        if not members:
            raise ValueError("a population needs at least one member")
        first = members[0]

        def shape(c: FusedSMAXCollector) -> tuple:
            base = c._base
            return (base.map_name, base.walls_cause_death, base.batch_size.numel(), base.episode_limit,
                    c.episode_limit, c._policy.structure, c.layout, c.exploration_type, base.device)

        for i, member in enumerate(members[1:], start=1):
            if shape(member) != shape(first):
                raise ValueError(f"member {i} differs from member 0 in its map, wall rule, battles, limits, policy "
                                 "structure, exploration type or device: members must share one program")
        self.members = list(members)
        self._program = first._program  # one program serves any number of members

    @torch.no_grad()
    def rollout(self) -> list[TensorDictBase]:
        """Every member's next batch (``[episodes, T]``, ``T`` the member's own longest episode)."""
        buffers, steps = run_members(self._program, self.members)
        return [member._batch(buffers[i], steps[i]) for i, member in enumerate(self.members)]

    def hand_over(self) -> None:
        """Collects every member's next batch in one call and hands each to its collector, whose next
        ``rollout`` (and so its iterator) returns it: trainers iterating their own collectors train on batches
        collected together."""
        for member, batch in zip(self.members, self.rollout()):
            member.hand_over(batch)
