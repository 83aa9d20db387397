"""The training loop: Collector → loss → one optimiser per parameter set, with logging and checkpoints."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDictBase
from torchrl.collectors import Collector
from torchrl.record.loggers import get_logger
from tqdm import tqdm

from torchrl_liir.trainers.builders import Components, make_components, make_env
from torchrl_liir.trainers.config import validate_config
from torchrl_liir.trainers.pursuit_study import intrinsic_reward_study


class NonFiniteLossError(RuntimeError):
    """A loss term or gradient became NaN/inf; the last good checkpoint is kept."""


def save_checkpoint(components: Components, path: Path, update: int, frames: int) -> None:
    """Writes every network and optimiser state atomically (no half-written file on a crash)."""
    state = {
        "update": update,
        "frames": frames,
        "loss": components.loss.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in components.optimizers.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def episode_metrics(batch: TensorDictBase) -> dict[str, float]:
    """Mean return and length of the complete episodes in a padded ``[episodes, T]`` batch."""
    mask = batch.get(("collector", "mask")).to(torch.float32)
    reward = batch.get(("next", "reward"))[..., 0].to(torch.float32)
    return {
        "episode_return": (reward * mask).sum(-1).mean().item(),
        "episode_length": mask.sum(-1).mean().item(),
    }


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
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)

    components = make_components(cfg, make_env(cfg, device, 1, cfg.seed), device)
    env = make_env(cfg, device, cfg.env.num_envs, cfg.seed, components.actor)
    collector = Collector(
        env, components.actor, frames_per_batch=cfg.env.num_envs * cfg.collector.steps_per_poll,
        total_frames=cfg.collector.total_frames, trajs_per_batch=cfg.collector.episodes_per_batch,
        traj_format="padded", device=device,
    )
    logger = get_logger(cfg.logger.backend, logger_name=str(run_dir), experiment_name="metrics")
    checkpoint = run_dir / "checkpoints" / "last.pt"
    frames = 0
    progress = tqdm(total=cfg.collector.total_frames, desc=f"{cfg.algo.name} on {cfg.env.name}", unit="frames",
                    disable=not cfg.progress_bar)
    metrics: dict[str, float] = {}
    update = 0
    try:
        for update, batch in enumerate(collector):
            batch = batch.to(device)
            new_frames = int(batch.get(("collector", "mask")).sum())
            frames += new_frames
            for loss_input in components.loss_inputs(batch):
                losses = components.loss(loss_input)
                norms = _step(components, losses, update, checkpoint, frames)
            components.after_update(frames)
            collector.update_policy_weights_()
            # One device-to-host copy for all loss terms and diagnostics.
            values = torch.stack([v.detach().float() for v in losses.values()]).tolist()
            metrics = {**episode_metrics(batch), **dict(zip(losses.keys(), values)), **norms}
            for name, value in metrics.items():
                logger.log_scalar(name, value, step=frames)
            progress.update(new_frames)
            progress.set_postfix(ret=f"{metrics['episode_return']:+.3f}")
            if cfg.checkpoint_every and (update + 1) % cfg.checkpoint_every == 0:
                save_checkpoint(components, checkpoint, update + 1, frames)
            if frames >= cfg.collector.total_frames:
                break
        save_checkpoint(components, checkpoint, update + 1, frames)
    except (KeyboardInterrupt, Exception) as err:
        if not isinstance(err, NonFiniteLossError):
            save_checkpoint(components, checkpoint, update, frames)
        raise
    finally:
        progress.close()
        collector.shutdown()

    summary = {"frames": frames, "updates": update + 1, "final": metrics}
    if components.intrinsic_reward is not None and cfg.env.name == "pursuit":
        study_env = make_env(cfg, device, cfg.study.episodes, cfg.seed + 1, components.actor)
        summary["fig2"] = intrinsic_reward_study(
            study_env, components.actor, components.intrinsic_reward, run_dir, max_steps=cfg.env.max_steps
        )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
