"""Fig. 2 of the paper: learned intrinsic reward of "Good" vs "Bad" actions in 1D Pursuit."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from matplotlib.figure import Figure
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torchrl.envs import EnvBase, TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_liir.collectors import first_episode_mask
from torchrl_liir.envs.pursuit import action_labels
from torchrl_liir.studies import StudyInterrupted
from torchrl_liir.transforms import IntrinsicRewardTransform


def auroc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann–Whitney U)."""
    negative = negative.sort().values
    below = torch.searchsorted(negative, positive, right=False)
    at_or_below = torch.searchsorted(negative, positive, right=True)
    wins = below.double() + 0.5 * (at_or_below - below).double()
    return (wins.sum() / (positive.numel() * negative.numel())).item()


@torch.no_grad()
def intrinsic_reward_study(
    env: EnvBase,
    actor: TensorDictModuleBase,
    intrinsic_reward: TensorDictModule,
    out_dir: str | Path,
    *,
    max_steps: int,
    stop_requested: Callable[[], bool] | None = None,
) -> dict:
    """Runs one episode in each of ``env``'s batched pursuit games with the trained policy (stopped by
    :class:`~torchrl_liir.studies.StudyInterrupted` at the first step where ``stop_requested()`` is true).

    Collects r_in of every taken action, labels it Good (approaching 0) or Bad
    (moving away), and writes ``fig2_intrinsic_reward.png`` (histograms, as in
    the paper's Fig. 2) and ``fig2_intrinsic_reward.json`` (counts, means, AUROC
    of r_in separating Good from Bad) into ``out_dir``. Returns the JSON dict.
    """
    # ``env`` is usually transformed already (the trainer's episode-start marker): the reward transform joins
    # its chain rather than wrapping it (said explicitly, which also silences TorchRL's warning about the default).
    env = TransformedEnv(env, IntrinsicRewardTransform(intrinsic_reward, lambda_in=0.0), auto_unwrap=True)
    def stop_if_requested(*_) -> None:
        if stop_requested is not None and stop_requested():
            raise StudyInterrupted

    with set_exploration_type(ExplorationType.RANDOM):
        rollout = env.rollout(max_steps, actor, break_when_any_done=False, callback=stop_if_requested)
    valid = first_episode_mask(rollout.get(("next", "done"))).unsqueeze(-1)
    good, bad = action_labels(rollout.get(("agents", "observation")), rollout.get(("agents", "action")))
    r_in = rollout.get(("next", "agents", "intrinsic_reward"))[..., 0]
    r_good, r_bad = r_in[good & valid].cpu().float(), r_in[bad & valid].cpu().float()
    stats = {
        "episodes": env.batch_size[0],
        "good": {"count": r_good.numel(), "mean": r_good.mean().item() if r_good.numel() else None},
        "bad": {"count": r_bad.numel(), "mean": r_bad.mean().item() if r_bad.numel() else None},
        "auroc": auroc(r_good, r_bad) if r_good.numel() and r_bad.numel() else None,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fig2_intrinsic_reward.json").write_text(json.dumps(stats, indent=2))

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    bins = torch.linspace(r_in.min().item(), r_in.max().item() + 1e-6, 41).tolist()
    ax.hist(r_good.tolist(), bins=bins, alpha=0.6, label=f"Good ({r_good.numel()})", color="tab:green")
    ax.hist(r_bad.tolist(), bins=bins, alpha=0.6, label=f"Bad ({r_bad.numel()})", color="tab:red")
    ax.set_xlabel("learned intrinsic reward $r^{in}$")
    ax.set_ylabel("count")
    auc = stats["auroc"]
    ax.set_title(f"1D Pursuit, {stats['episodes']} episodes" + (f" (AUROC {auc:.3f})" if auc is not None else ""))
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "fig2_intrinsic_reward.png", dpi=120)
    return stats
