"""The training loop: Collector → loss → one optimiser per parameter set, with logging and checkpoints."""
from __future__ import annotations

import json
import math
import platform
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDictBase
from torchrl.record.loggers import get_logger
from tqdm import tqdm

from torchrl_liir.collectors import PADDING_MASK, EpisodeCollector
from torchrl_liir.runtime import configure_runtime
from torchrl_liir.trainers.builders import Components, episode_limit, make_components, make_env
from torchrl_liir.trainers.checkpoints import save_checkpoint
from torchrl_liir.trainers.config import validate_config
from torchrl_liir.trainers.evaluation import evaluate
from torchrl_liir.trainers.pursuit_study import intrinsic_reward_study


class NonFiniteLossError(RuntimeError):
    """A loss term or gradient became NaN/inf; the last good checkpoint is kept."""


def episode_metrics(batch: TensorDictBase) -> dict[str, float]:
    """Mean return, length (and win rate) of the complete episodes in a padded ``[episodes, T]`` batch."""
    mask = batch.get(PADDING_MASK).to(torch.float32)
    reward = batch.get(("next", "reward"))[..., 0].to(torch.float32)
    metrics = {
        "episode_return": (reward * mask).sum(-1).mean().item(),
        "episode_length": mask.sum(-1).mean().item(),
    }
    if ("next", "info", "battle_won") in batch.keys(True):
        won = batch.get(("next", "info", "battle_won")).reshape(mask.shape) & mask.bool()
        metrics["win_rate"] = won.any(-1).float().mean().item()
    return metrics


def describe_machine(device: torch.device) -> dict:
    """Device and library versions, for the record a results table cites."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")]
            name = f"{models[0]} ({len(models)} threads)" if models else name
    versions = {}
    for package in ("torch", "torchrl", "tensordict", "jax", "jaxmarl"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return {"device": f"{device.type}: {name}", "versions": versions}


def drop_crashed_episodes(batch: TensorDictBase) -> tuple[TensorDictBase, int]:
    """Removes the episodes a simulator crash cut short (``("next", "info", "crashed")``)."""
    key = ("next", "info", "crashed")
    if key not in batch.keys(True):
        return batch, 0
    crashed = (batch.get(key).reshape(batch.shape) & batch.get(PADDING_MASK)).any(-1)
    return batch[~crashed], int(crashed.sum())


def _postfix(metrics: dict[str, float], test: dict[str, float]) -> dict[str, str]:
    postfix = {"ret": f"{metrics['episode_return']:+.3f}"}
    if "test_win_rate" in test:
        postfix["test_win"] = f"{test['test_win_rate']:.2f}"
    else:
        postfix["test_ret"] = f"{test['test_return']:+.3f}"
    return postfix


def _step(components: Components, losses: TensorDictBase, update: int, checkpoint: Path, frames: int) -> dict:
    terms = {k: v for k, v in losses.items() if k.startswith("loss_")}
    for name, value in terms.items():
        if not torch.isfinite(value):
            save_checkpoint(components, checkpoint, update, frames)
            raise NonFiniteLossError(f"{name}={value.item()} at update {update}; last good checkpoint: {checkpoint}")
    for opt in components.optimizers.values():
        opt.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    norms = {}
    for name, opt in components.optimizers.items():
        params = [p for g in opt.param_groups for p in g["params"]]
        # The policy clip must equal the one InnerStep models; η is not clipped (as in the released code).
        clip = components.max_grad_norm if name != "intrinsic" and components.max_grad_norm else float("inf")
        norms[f"grad_norm_{name}"] = norm = torch.nn.utils.clip_grad_norm_(params, clip).item()
        if not math.isfinite(norm):
            save_checkpoint(components, checkpoint, update, frames)
            raise NonFiniteLossError(f"grad_norm_{name}={norm} at update {update}; last good checkpoint: {checkpoint}")
    for opt in components.optimizers.values():
        opt.step()
    return norms


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Trains the configured algorithm; writes config, CSV metrics, checkpoints and plots to ``run_dir``."""
    validate_config(cfg)
    configure_runtime(cfg.threads, cfg.jax_cache_dir)
    started = time.monotonic()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)

    components = make_components(cfg, make_env(cfg, device, 1, cfg.seed), device)
    env = make_env(cfg, device, cfg.env.num_envs, cfg.seed, components.actor)
    # As many test battles as training ones, so SMAX's kernels compiled for training serve the tests too
    # (StarCraft II: no more game processes than test episodes).
    test_envs = min(cfg.eval.episodes, cfg.env.num_envs) if cfg.env.name == "smac" else cfg.env.num_envs
    test_env = make_env(cfg, device, test_envs, cfg.seed + 10_000, components.actor)
    collector = EpisodeCollector(env, components.actor, episode_limit(cfg))
    logger = get_logger(cfg.logger.backend, logger_name=str(run_dir), experiment_name="metrics")
    checkpoint = run_dir / "checkpoints" / "last.pt"

    def run_test(episodes_so_far: int) -> dict[str, float]:
        test = evaluate(test_env, components.actor, cfg.eval.episodes, episode_limit(cfg))
        for name, value in test.items():
            logger.log_scalar(name, value, step=frames)
        logger.log_scalar("test_at_episode", episodes_so_far, step=frames)
        return test

    frames = episodes = crashed = 0
    progress = tqdm(total=cfg.collector.total_frames, desc=f"{cfg.algo.name} on {cfg.env.name}", unit="frames",
                    disable=not cfg.progress_bar)
    metrics: dict[str, float] = {}
    update, test_due = 0, False
    test = run_test(0)
    try:
        for update, batch in enumerate(collector):
            new_frames = int(batch.get(PADDING_MASK).sum())
            frames += new_frames
            batch, dropped = drop_crashed_episodes(batch)
            crashed += dropped
            if batch.shape[0] == 0:
                continue
            test_due = cfg.eval.interval_episodes and (
                (episodes + batch.shape[0]) // cfg.eval.interval_episodes > episodes // cfg.eval.interval_episodes)
            episodes += batch.shape[0]
            for loss_input in components.loss_inputs(batch):
                losses = components.loss(loss_input)
                norms = _step(components, losses, update, checkpoint, frames)
            components.after_update(frames)
            collector.update_policy_weights_()
            # One device-to-host copy for all loss terms and diagnostics.
            values = torch.stack([v.detach().float() for v in losses.values()]).tolist()
            metrics = {**episode_metrics(batch), **dict(zip(losses.keys(), values)), **norms,
                       "episodes": episodes, "crashed_episodes": crashed}
            for name, value in metrics.items():
                logger.log_scalar(name, value, step=frames)
            if test_due:
                test = run_test(episodes)
            progress.update(new_frames)
            progress.set_postfix(_postfix(metrics, test))
            if cfg.checkpoint_every and (update + 1) % cfg.checkpoint_every == 0:
                save_checkpoint(components, checkpoint, update + 1, frames)
            if frames >= cfg.collector.total_frames:
                break
        save_checkpoint(components, checkpoint, update + 1, frames)
        if not test_due:
            test = run_test(episodes)
    except (KeyboardInterrupt, Exception) as err:
        if not isinstance(err, NonFiniteLossError):
            save_checkpoint(components, checkpoint, update, frames)
        raise
    finally:
        progress.close()
        collector.shutdown()
        test_env.close()

    summary = {"frames": frames, "episodes": episodes, "updates": update + 1, "final": metrics, "test": test,
               "crashed_episodes": crashed, "wall_seconds": round(time.monotonic() - started, 1),
               "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), **describe_machine(device)}
    if components.intrinsic_reward is not None and cfg.env.name == "pursuit":
        study_env = make_env(cfg, device, cfg.study.episodes, cfg.seed + 1, components.actor)
        summary["fig2"] = intrinsic_reward_study(
            study_env, components.actor, components.intrinsic_reward, run_dir, max_steps=cfg.env.max_steps
        )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
