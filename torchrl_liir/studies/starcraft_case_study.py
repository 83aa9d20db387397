"""The paper's intrinsic-reward case studies on StarCraft battles (§5.2.3, Figs. 4 and 5)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from matplotlib.figure import Figure
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_liir.collectors import first_episode_mask, first_episodes


@torch.no_grad()
def record_test_episodes(
    env: EnvBase, actor: TensorDictModuleBase, intrinsic_reward: TensorDictModule, max_steps: int
) -> TensorDictBase:
    """Greedy ``[battles, T]`` rollout with r_in(o_t, u_t) of every taken action.

    r_in is only evaluated, never used to act (as in the paper's case study).
    Adds ``("agents", "intrinsic_reward")`` and ``"first_episode"`` (the steps of
    each battle's first episode).
    """
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        rollout = env.rollout(max_steps, actor, break_when_any_done=False)
    if rollout.ndim == 1:
        rollout = rollout.unsqueeze(0)
    intrinsic_reward(rollout)
    rollout.set("first_episode", first_episode_mask(rollout.get(("next", "done"))))
    return rollout


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two vectors."""
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0).item()


def attack_health_statistic(rollout: TensorDictBase, n_enemies: int, health_below: float = 0.5) -> dict:
    """§5.2.3: cosine similarity of health and r_in for attacks taken below ``health_below`` health.

    Attack actions are the last ``n_enemies`` actions (SMAC and SMAX both end the
    action list with one attack per enemy). The cosine is taken per episode over
    its (agent, step) samples, then averaged over episodes with at least two
    samples (the paper's "averaged cosine similarity"); the cosine and Pearson
    correlation over all samples pooled are reported too.
    """
    n_actions = rollout.get(("agents", "action_mask")).shape[-1]
    health = rollout.get(("agents", "health"))[..., 0]
    r_in = rollout.get(("agents", "intrinsic_reward"))[..., 0]
    attack = rollout.get(("agents", "action")) >= n_actions - n_enemies
    alive = rollout.get(("agents", "alive"))[..., 0]
    chosen = rollout.get("first_episode").unsqueeze(-1) & alive & attack & (health < health_below)
    per_episode = [cosine(health[e][chosen[e]], r_in[e][chosen[e]])
                   for e in range(rollout.shape[0]) if chosen[e].sum() >= 2]
    pooled_h, pooled_r = health[chosen], r_in[chosen]
    enough = pooled_h.numel() >= 2
    return {
        "episodes": rollout.shape[0],
        "episodes_with_samples": len(per_episode),
        "samples": int(chosen.sum()),
        "health_below": health_below,
        "mean_cosine_per_episode": sum(per_episode) / len(per_episode) if per_episode else None,
        "pooled_cosine": cosine(pooled_h, pooled_r) if enough else None,
        "pooled_pearson": torch.corrcoef(torch.stack([pooled_h, pooled_r]).double())[0, 1].item() if enough else None,
        "mean_intrinsic_reward_of_these_attacks": pooled_r.mean().item() if enough else None,
    }


def plot_episode(rollout: TensorDictBase, episode: int, path: str | Path, title: str) -> None:
    """Figs. 4/5: each agent's r_in and health over one test episode, deaths marked."""
    steps = int(rollout.get("first_episode")[episode].sum())
    r_in = rollout.get(("agents", "intrinsic_reward"))[episode, :steps, :, 0].cpu()
    health = rollout.get(("agents", "health"))[episode, :steps, :, 0].cpu()
    alive = rollout.get(("agents", "alive"))[episode, :steps, :, 0].cpu()
    end_health = rollout.get(("next", "agents", "health"))[episode, steps - 1, :, 0].cpu()
    won = bool(rollout.get(("next", "info", "battle_won"))[episode, steps - 1])
    fig = Figure(figsize=(8, 5.5))
    ax_r, ax_h = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    t = torch.arange(steps)
    for agent in range(r_in.shape[-1]):
        color = f"C{agent}"
        live = alive[:, agent]
        ax_r.plot(t[live], r_in[live, agent], color=color, marker=".", label=f"agent {agent}")
        ax_h.plot(torch.arange(steps + 1), torch.cat([health[:, agent], end_health[agent:agent + 1]]), color=color)
        died = (~live).nonzero()
        death = int(died[0]) if died.numel() else (steps if end_health[agent] == 0 else None)
        if death is not None:
            for ax in (ax_r, ax_h):
                ax.axvline(death, color=color, linestyle=":", alpha=0.8)
            ax_h.plot([death], [0.0], marker="x", color=color, markersize=10, mew=2)
    ax_r.set_ylabel("intrinsic reward $r^{in}_i$")
    ax_r.legend(loc="best", fontsize=8)
    ax_r.set_title(f"{title}: {'won' if won else 'lost'} in {steps} steps (dotted: death)")
    ax_h.set_ylabel("health (fraction)")
    ax_h.set_xlabel("time step")
    ax_h.set_ylim(-0.05, 1.05)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def intrinsic_reward_case_study(
    env: EnvBase,
    actor: TensorDictModuleBase,
    intrinsic_reward: TensorDictModule,
    n_enemies: int,
    max_steps: int,
    out_dir: str | Path,
    *,
    title: str,
    episode: int | None = None,
    seed: int = 0,
) -> dict:
    """Runs one greedy test episode per battle of ``env``; writes the statistic and one episode's plot.

    Files: ``intrinsic_reward_statistic.json`` and ``intrinsic_reward_episode.png``
    (``episode`` or, by default, one drawn at random with ``seed`` among the
    finished ones, as the paper picks a random test replay).
    """
    rollout = record_test_episodes(env, actor, intrinsic_reward, max_steps)
    stats = attack_health_statistic(rollout, n_enemies)
    finished = rollout.get(("next", "done"))[..., 0].any(-1).nonzero().flatten()
    if episode is None:
        if not finished.numel():
            raise RuntimeError(f"no test episode ended within {max_steps} steps")
        generator = torch.Generator().manual_seed(seed)
        episode = int(finished[torch.randint(finished.numel(), (1,), generator=generator)])
    elif not 0 <= episode < rollout.shape[0]:
        raise ValueError(f"episode={episode} is not in [0, {rollout.shape[0]})")
    stats["plotted_episode"] = episode
    stats["test_win_rate"] = first_episodes(rollout)["won"].float().mean().item()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "intrinsic_reward_statistic.json").write_text(json.dumps(stats, indent=2))
    plot_episode(rollout, episode, out_dir / "intrinsic_reward_episode.png", title)
    return stats
