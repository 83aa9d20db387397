"""Batch feeds and schedules the algorithms register with TorchRL's ``Trainer``.

TorchRL's ``ReplayBufferTrainer``, ``TargetNetUpdaterHook`` and ``ValueEstimatorHook`` come close, but the
first stores padding steps and whole keys sets, and the other two keep no state a checkpoint could restore (a
target copy's counter, the minibatch order); these keep it.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig
from tensordict import TensorDict, TensorDictBase, pad
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.data import TensorDictReplayBuffer
from torchrl.modules import EGreedyModule
from torchrl.objectives import HardUpdate, LossModule
from torchrl.trainers import Trainer, TrainerHookBase

from torchrl_liir.algorithms.algorithm import has_exploration_floor
from torchrl_liir.algorithms.base import make_policy
from torchrl_liir.algorithms.recipe import EnvDims
from torchrl_liir.collectors import PADDING_MASK
from torchrl_liir.hook_bases import BatchFeed, StatelessHook
from torchrl_liir.modules.exploration_floor import ExplorationFloor, linear_epsilon
from torchrl_liir.objectives import COMALoss
from torchrl_liir.optimizer_steps import OptimizerGroup, guarded_step


class ReplayFeed(BatchFeed):
    """IQL and QMIX: each batch's valid steps (``keys`` only) go into ``buffer``; each of the batch's
    ``steps`` optimiser steps gets a fresh sample."""

    def __init__(self, buffer: TensorDictReplayBuffer, keys: list[NestedKey], steps: int) -> None:
        self.buffer, self.keys, self.steps_per_epoch = buffer, keys, steps

    def extend(self, batch: TensorDictBase) -> TensorDictBase:
        self.buffer.extend(batch[batch.get(PADDING_MASK)].select(*self.keys, strict=False))
        return batch

    def sample(self, batch: TensorDictBase) -> TensorDictBase:
        return self.buffer.sample()

    def state_dict(self) -> dict:
        # Only the filled part of the storage: TorchRL's buffer state holds the whole preallocated capacity
        # (1.2 GB for QMIX on SMAX 3m, whatever has been stored).
        filled = len(self.buffer)
        packed = self.pack(self.buffer.storage[torch.arange(filled)]) if filled else {"steps": None}
        return {"filled": filled, **packed, "writer": self.buffer.writer.state_dict()}

    def pack(self, stored: TensorDictBase) -> dict:
        """What a checkpoint keeps of the ``stored`` items."""
        return {"steps": stored}

    def unpack(self, state_dict: dict) -> TensorDictBase:
        """The stored items back from :meth:`pack`'s entries (a checkpoint gives them as nested mappings)."""
        return TensorDict(state_dict["steps"], batch_size=[state_dict["filled"]])

    def load_state_dict(self, state_dict: dict) -> None:
        self.buffer.empty()
        if state_dict["filled"]:
            self.buffer.extend(self.unpack(state_dict))
        self.buffer.writer.load_state_dict(state_dict["writer"])

    def register(self, trainer: Trainer, name: str = "replay_buffer") -> None:
        trainer.register_op("pre_epoch", self.extend)
        trainer.register_op("process_optim_batch", self.sample)
        trainer.register_module(name, self)


class EpisodeReplayFeed(ReplayFeed):
    """IQL and QMIX as pymarl replays them: ``buffer`` holds whole episodes (``keys`` and the padding mask, padded
    to ``episode_limit`` steps); each optimiser step gets the valid steps of a fresh sample of episodes.

    A sample of ``batch_episodes`` episodes then replays their valid steps only, so its size follows the episodes'
    lengths, where :class:`ReplayFeed` replays ``batch_episodes × episode_limit`` steps whatever they are. The
    episodes are drawn with replacement (TorchRL's ``RandomSampler``); pymarl draws distinct ones. Memory, as
    pymarl's: ``buffer_episodes × episode_limit`` steps once full (SMAX 8m: 5000 × 120 × 18 KB, about 11 GB).
    """

    def __init__(self, buffer: TensorDictReplayBuffer, keys: list[NestedKey], steps: int,
                 episode_limit: int) -> None:
        super().__init__(buffer, [*keys, PADDING_MASK], steps)
        self.episode_limit = episode_limit

    def extend(self, batch: TensorDictBase) -> TensorDictBase:
        episodes = batch.select(*self.keys, strict=False)
        self.buffer.extend(pad(episodes, [0, 0, 0, self.episode_limit - batch.shape[1]]))
        return batch

    def pack(self, stored: TensorDictBase) -> dict:
        """The valid steps and each episode's length: padding is most of a padded episode (SMAX 8m: about 100 of
        its 120 steps, about 9 GB of a full buffer at 18 KB a step)."""
        mask = stored.get(PADDING_MASK)
        return {"steps": stored[mask], "lengths": mask.sum(-1)}

    def unpack(self, state_dict: dict) -> TensorDictBase:
        lengths = state_dict["lengths"]
        steps = TensorDict(state_dict["steps"], batch_size=[int(lengths.sum())])
        shape = [lengths.shape[0], self.episode_limit]
        episodes = steps.apply(lambda x: x.new_zeros((*shape, *x.shape[1:])), batch_size=shape)
        episodes[torch.arange(self.episode_limit) < lengths.unsqueeze(-1)] = steps
        return episodes

    def sample(self, batch: TensorDictBase) -> TensorDictBase:
        episodes = self.buffer.sample()
        return episodes[episodes.get(PADDING_MASK)]


class MinibatchEpochs(BatchFeed):
    """MAPPO: ``prepare(batch)`` (GAE on the padded episodes) once per batch, then ``epochs`` passes of
    ``minibatches`` shuffled minibatches over its valid steps.

    The epochs run inside one Trainer epoch of ``epochs × minibatches`` steps: with ``num_epochs > 1``, TorchRL's
    Trainer restarts its running mean of the losses each epoch, so the logged losses would be the last epoch's.
    """

    def __init__(self, prepare: Callable[[TensorDictBase], TensorDictBase], epochs: int, minibatches: int) -> None:
        self.prepare, self.passes, self.minibatches = prepare, epochs, minibatches
        self.steps_per_epoch = epochs * minibatches
        self._steps: TensorDictBase | None = None
        self._passes_left = 0
        self._queue: list[TensorDictBase] = []

    def start(self, batch: TensorDictBase) -> TensorDictBase:
        self._steps = self.prepare(batch)[batch.get(PADDING_MASK)]
        self._passes_left, self._queue = self.passes, []
        return batch

    def next_minibatch(self, batch: TensorDictBase) -> TensorDictBase:
        if not self._queue and self._passes_left:
            self._passes_left -= 1
            order = torch.randperm(self._steps.shape[0], device=self._steps.device)
            self._queue = [self._steps[index] for index in order.chunk(self.minibatches)]
        if not self._queue:
            raise StopIteration  # fewer valid steps than minibatches: the update ends early
        return self._queue.pop(0)

    def register(self, trainer: Trainer, name: str = "minibatch_epochs") -> None:
        trainer.register_op("pre_epoch", self.start)
        trainer.register_op("process_optim_batch", self.next_minibatch)


class TargetCopies(TrainerHookBase):
    """Copies the online parameters of ``loss`` into its target ones every ``interval`` optimiser steps
    (``per="optim_step"``) or collected batches (``per="batch"``)."""

    def __init__(self, loss: LossModule, interval: int, per: str) -> None:
        # HardUpdate copies on the call after its counter reaches value_network_update_interval.
        self.updater = HardUpdate(loss, value_network_update_interval=interval - 1)
        self.per = per

    def __call__(self) -> None:
        self.updater.step()

    def state_dict(self) -> dict:
        return {"counter": self.updater.counter}

    def load_state_dict(self, state_dict: dict) -> None:
        self.updater.counter = state_dict["counter"]

    def register(self, trainer: Trainer, name: str = "target_copies") -> None:
        trainer.register_op("post_optim" if self.per == "optim_step" else "post_steps", self)
        trainer.register_module(name, self)


class CriticTimeSteps(TrainerHookBase):
    """pymarl's COMA critic training, before the actor's step on each batch: one guarded step of ``critic`` per
    loss of :meth:`~torchrl_liir.objectives.COMALoss.critic_time_step_losses` (its optimiser state checkpointed
    here, with the count of batches it has trained on, which names the update in a non-finite error). The
    trainer's stepper leaves the critic out; any TorchRL ``Trainer`` can register it."""

    def __init__(self, loss: COMALoss, critic: OptimizerGroup) -> None:
        self.loss, self.critic = loss, critic
        self.batches = 0

    def __call__(self, batch: TensorDictBase) -> TensorDictBase:
        self.batches += 1
        for loss_critic in self.loss.critic_time_step_losses(batch):
            guarded_step({"critic": self.critic}, {"loss_critic": loss_critic}, self.batches)
        return batch

    def state_dict(self) -> dict:
        return {"optimizer": self.critic.optimizer.state_dict(), "batches": self.batches}

    def load_state_dict(self, state_dict: dict) -> None:
        self.critic.optimizer.load_state_dict(state_dict["optimizer"])
        self.batches = int(state_dict.get("batches", 0))  # checkpoints written before the count was kept

    def register(self, trainer: Trainer, name: str = "critic_time_steps") -> None:
        trainer.register_op("pre_epoch", self)
        trainer.register_module(name, self)


class EpsilonSchedule(TrainerHookBase):
    """Anneals ε-greedy exploration by the frames collected, once per batch."""

    def __init__(self, explore: EGreedyModule) -> None:
        self.explore, self.frames = explore, 0
        self._trainer: Trainer | None = None

    def __call__(self) -> None:
        frames = int(self._trainer.collected_frames)
        self.explore.step(frames - self.frames)
        self.frames = frames

    def state_dict(self) -> dict:
        return {"frames": self.frames, "eps": self.explore.eps.detach().clone()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.frames = int(state_dict["frames"])
        self.explore.eps.copy_(state_dict["eps"])

    def register(self, trainer: Trainer, name: str = "epsilon_schedule") -> None:
        self._trainer = trainer
        trainer.register_op("post_steps", self)
        trainer.register_module(name, self)


class ExplorationFloorSchedule(StatelessHook):
    """Sets the policy's exploration floor ε by the frames collected, once per batch: linear from ``start`` to
    ``end`` over ``anneal_frames`` (the authors' code: 0.5 → 0.01 over 50k steps). ε is a buffer of the actor,
    so checkpoints save and restore it with the actor; the hook keeps no state of its own."""

    def __init__(self, floor: ExplorationFloor, start: float, end: float, anneal_frames: int) -> None:
        self.floor, self.start, self.end, self.anneal_frames = floor, start, end, anneal_frames
        self.floor.epsilon.fill_(start)
        self._trainer: Trainer | None = None

    def __call__(self) -> None:
        frames = int(self._trainer.collected_frames)
        self.floor.epsilon.fill_(linear_epsilon(frames, self.start, self.end, self.anneal_frames))

    def register(self, trainer: Trainer, name: str = "exploration_floor_schedule") -> None:
        self._trainer = trainer
        trainer.register_op("post_steps", self)


def policy_with_exploration_floor(algo: DictConfig, model: DictConfig, dims: EnvDims,
                                  device: torch.device) -> tuple[TensorDictModuleBase, dict[str, TrainerHookBase]]:
    """The policy of :func:`~torchrl_liir.algorithms.base.make_policy`, with the exploration floor and the hook
    that anneals it when ``algo.epsilon_floor_*`` ask for one (no hook otherwise)."""
    floor = ExplorationFloor() if has_exploration_floor(algo) else None
    actor = make_policy(algo, model, dims, device, exploration_floor=floor)
    if floor is None:
        return actor, {}
    schedule = ExplorationFloorSchedule(floor, algo.epsilon_floor_start, algo.epsilon_floor_end,
                                        algo.epsilon_floor_anneal_frames)
    return actor, {"exploration_floor_schedule": schedule}
