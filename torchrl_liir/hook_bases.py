"""The bases of this package's trainer hooks: one with nothing to checkpoint, and the batch feed that turns a
collected batch into the inputs of optimiser steps."""
from __future__ import annotations

from torchrl.trainers import TrainerHookBase


class StatelessHook(TrainerHookBase):
    """A trainer hook with nothing to checkpoint."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        return None


class BatchFeed(StatelessHook):
    """How one collected batch of padded ``[episodes, T]`` episodes becomes the inputs of optimiser steps.

    The trainer runs ``epochs`` epochs of ``steps_per_epoch`` optimiser steps per batch; a feed that
    registers nothing hands each step the whole batch (on-policy losses, one step per batch).
    """

    epochs: int = 1
    steps_per_epoch: int = 1

    def register(self, trainer, name: str = "batch_feed") -> None:
        return None
