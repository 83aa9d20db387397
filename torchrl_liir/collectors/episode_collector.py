"""Batches of whole episodes, one per env, each played from its start: the paper's (pymarl's) sampling."""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterator

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.collectors import BaseCollector
from torchrl.envs import EnvBase, TransformedEnv
from torchrl.envs.batched_envs import BatchedEnvBase
from torchrl.envs.utils import ExplorationType, set_exploration_type

#: The key of a batch's ``[episodes, T]`` mask of the steps that hold data (the rest is padding).
PADDING_MASK = ("collector", "mask")


def first_episode_mask(done: torch.Tensor) -> torch.Tensor:
    """``[N, T]`` mask of the steps of each row's first episode (``done`` is ``[N, T, 1]``).

    Examples:
        >>> import torch
        >>> from torchrl_liir.collectors import first_episode_mask
        >>> first_episode_mask(torch.tensor([[[False], [True], [False], [True]]]))
        tensor([[ True,  True, False, False]])
    """
    done = done[..., 0].long()
    return (done.cumsum(-1) - done) == 0


def env_episode_limit(env: EnvBase) -> int | None:
    """The longest episode ``env`` (or the env it transforms) declares: ``episode_limit`` or ``max_steps``."""
    while isinstance(env, TransformedEnv):
        env = env.base_env
    for name in ("episode_limit", "max_steps"):
        # A batched env forwards unknown attributes to its workers (and recurses while they are not started):
        # only its own attributes are read.
        if isinstance(env, BatchedEnvBase):
            limit = inspect.getattr_static(env, name, None)
        else:
            limit = getattr(env, name, None)
        if isinstance(limit, int):
            return limit
    return None


class EpisodeCollector(BaseCollector):
    """Each batch: every env of the batched ``env`` plays one episode from its start with the current policy.

    A batch restarts all envs, steps them until each has finished its first
    episode (or ``episode_limit`` steps have passed), and yields a padded
    ``[episodes, T]`` batch, ``T`` the longest of its episodes, whose
    ``("collector", "mask")`` marks each row's steps. Envs whose episode did not
    end within ``episode_limit`` are left out. Collecting "the first K episodes
    to finish" instead over-samples short episodes and carries long ones across
    policy updates, which biases the policy gradient.

    Written by hand because TorchRL's ``Collector`` runs a fixed number of
    frames per batch: it would keep stepping (and partially resetting) battles
    whose episode is over, for data that is thrown away. Finished envs are
    passed TorchRL's partial-step mask (``"_step"``): batched envs
    (``SerialEnv``, ``ParallelEnv``) skip them, batch-locked vectorised envs
    step them within the same call and their steps are masked out.

    Args:
        env: a batched env (``batch_size`` ``[N]``).
        policy: the acting policy (the trainer's own module: no weights to copy).
        episode_limit: the most steps of one episode; default the env's
            ``episode_limit`` (or ``max_steps``).
        total_frames: stop after this many collected steps (``-1``: never).
        exploration_type: how the policy acts (``RANDOM``: sampling).
        sync_every: steps between checks that every env has finished (each check waits for the
            device); default 1 on CPU, 4 on GPUs. The batch is trimmed to its longest episode either way.
        postproc: applied to each batch before it is handed out, as TorchRL collectors' ``postproc``
            (e.g. :class:`~torchrl_liir.transforms.IntrinsicRewardTransform` in batch mode).

    Iterating yields the batches (``postproc`` applied) until ``total_frames`` valid steps; :meth:`rollout` returns
    one batch as is.

    Examples:
        >>> from torchrl_liir import EpisodeCollector, PursuitEnv, make_mlp_policy
        >>> env = PursuitEnv(num_envs=4, seed=0)  # games of at most 20 steps
        >>> policy = make_mlp_policy(2, 2, 3, action_mask_key=("agents", "action_mask"))
        >>> collector = EpisodeCollector(env, policy, total_frames=100)
        >>> collector
        EpisodeCollector(envs=4, episode_limit=20, frames=0)
        >>> batches = list(collector)  # whole batches until 100 valid steps have been collected
        >>> batch = batches[0]
        >>> batch.batch_size[0], batch.batch_size[1] <= 20  # [episodes, T], T the longest episode
        (4, True)
        >>> mask = batch.get(("collector", "mask"))  # each row's steps; the rest is padding
        >>> mask.dtype, collector.frames >= 100
        (torch.bool, True)
    """

    def __init__(
        self,
        env: EnvBase,
        policy: TensorDictModuleBase,
        episode_limit: int | None = None,
        *,
        total_frames: int = -1,
        exploration_type: ExplorationType = ExplorationType.RANDOM,
        sync_every: int | None = None,
        postproc: Callable[[TensorDictBase], TensorDictBase] | None = None,
    ) -> None:
        super().__init__()
        if env.batch_dims != 1:
            raise ValueError(f"EpisodeCollector needs an env with one batch dim, got batch_size={env.batch_size}")
        declared = env_episode_limit(env)
        if episode_limit is not None and declared is not None and 1 <= episode_limit < declared:
            warnings.warn(f"episode_limit={episode_limit} is shorter than the env's {declared}: episodes longer than "
                          f"{episode_limit} steps are left out of every batch", stacklevel=2)
        episode_limit = declared if episode_limit is None else episode_limit
        if episode_limit is None or episode_limit < 1:
            raise ValueError(f"episode_limit={episode_limit}: pass the env's longest episode (>= 1 steps)")
        self.env, self.policy = env, policy
        self.episode_limit, self.total_frames = int(episode_limit), total_frames
        self.exploration_type = exploration_type
        self.postproc = postproc
        self.sync_every = sync_every or (1 if env.device is None or env.device.type == "cpu" else 4)
        self.requested_frames_per_batch = env.batch_size.numel() * self.episode_limit
        self.trajs_per_batch = None
        self.init_random_frames = 0  # TorchRL's Trainer reads it: no random warm-up before training
        self._iterator = None
        self.frames = 0

    @torch.no_grad()
    def rollout(self) -> TensorDictBase:
        """One batch: ``[episodes, T]`` with ``("collector", "mask")``."""
        env = self.env
        finished = torch.zeros(env.batch_size, dtype=torch.bool, device=env.device)
        steps = []
        with set_exploration_type(self.exploration_type):
            td = env.reset()
            for t in range(self.episode_limit):
                td = self.policy(td)
                td.set("_step", ~finished)
                td = env.step(td)
                td.pop("_step", None)
                steps.append(td)
                finished = finished | td.get(("next", "done")).reshape(env.batch_size)
                if (t + 1) % self.sync_every == 0 and finished.all():
                    break
                td = env.step_mdp(td)
        batch = torch.stack(steps, dim=1)
        mask = first_episode_mask(batch.get(("next", "done")))
        batch.set(PADDING_MASK, mask)
        ended = batch.get(("next", "done"))[..., 0].any(-1)
        longest = int((mask & ended.unsqueeze(-1)).sum(-1).max())
        batch = batch if bool(ended.all()) else batch[ended]
        return batch[:, :longest] if longest < batch.shape[1] else batch

    def iterator(self) -> Iterator[TensorDictBase]:
        while self.total_frames < 0 or self.frames < self.total_frames:
            batch = self.rollout()
            if batch.shape[0] == 0:
                raise RuntimeError(f"no episode ended within episode_limit={self.episode_limit} steps; "
                                   "pass the env's longest episode")
            self.frames += int(batch.get(PADDING_MASK).sum())
            yield batch if self.postproc is None else self.postproc(batch)

    def update_policy_weights_(self, *args, **kwargs) -> None:
        """Nothing to copy: the collector acts with the policy object it was given."""

    def set_seed(self, seed: int, static_seed: bool = False) -> int:
        return self.env.set_seed(seed, static_seed=static_seed)

    def shutdown(self, *args, **kwargs) -> None:
        if not self.env.is_closed:
            self.env.close()

    def state_dict(self) -> dict:
        return {"frames": self.frames}

    def load_state_dict(self, state_dict: dict) -> None:
        self.frames = state_dict["frames"]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(envs={self.env.batch_size.numel()}, episode_limit={self.episode_limit}, "
                f"frames={self.frames})")

