"""The GPU paths, run where a GPU is (skipped elsewhere; ``scripts/gpu_check.sh`` runs them on a GPU machine):
SMAX and the fused rollout on the device, LIIR's update on the device against the CPU's, a training run."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensordict import TensorDict
from torchrl.envs import Compose, InitTracker, TransformedEnv
from torchrl.envs.utils import ExplorationType

from torchrl_liir import (
    InnerStep,
    LIIRLoss,
    make_extrinsic_critic,
    make_gru_policy,
    make_intrinsic_reward,
    make_proxy_critic,
    policy_primer,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
ROOT = Path(__file__).resolve().parents[1]
MASK = ("agents", "action_mask")


def smax_env_and_policy(device: str):
    """8 SMAX 3m battles as the trainer transforms them, and a GRU policy on ``device``."""
    from torchrl_liir.envs import SMAXEnv

    torch.manual_seed(0)
    base = SMAXEnv("3m", 8, seed=3, reward_scale=10.0, device=device)
    actor = make_gru_policy(base.n_agents, base.obs_dim, base.n_actions, hidden_size=16, action_mask_key=MASK,
                            device=device)
    return (lambda: TransformedEnv(SMAXEnv("3m", 8, seed=3, reward_scale=10.0, device=device),
                                   Compose(InitTracker(), policy_primer(actor)))), actor


def test_fused_greedy_batches_on_the_gpu_are_episode_collectors():
    """On the device, greedy, the fused rollout plays the stepwise collector's episodes (as on the CPU)."""
    pytest.importorskip("jaxmarl")
    from torchrl_liir.collectors import EpisodeCollector, FusedSMAXCollector

    make_env, actor = smax_env_and_policy("cuda")
    collectors = [cls(make_env(), actor, exploration_type=ExplorationType.DETERMINISTIC)
                  for cls in (EpisodeCollector, FusedSMAXCollector)]
    for _ in range(2):
        want, got = (c.rollout() for c in collectors)
        assert got.shape == want.shape and got.device == want.device and got.device.type == "cuda"
        for key in want.keys(True, True):
            if want.get(key).dtype.is_floating_point:
                torch.testing.assert_close(got.get(key), want.get(key), atol=1e-4, rtol=0, msg=str(key))
            else:
                assert torch.equal(got.get(key), want.get(key)), key


def test_liir_update_on_the_gpu_is_the_cpus():
    """The same networks and batch give LIIR's losses and every gradient on the GPU as on the CPU (float32)."""
    torch.manual_seed(0)
    e, t, n, obs, actions, state = 4, 7, 3, 10, 5, 12
    actor = make_gru_policy(n, obs, actions, hidden_size=16, action_mask_key=MASK)
    nets = [actor, make_intrinsic_reward(obs, actions, n), make_proxy_critic(obs, n, state_dim=state),
            make_extrinsic_critic(state)]
    mask = torch.rand(e, t, n, actions) > 0.3
    mask[..., 0] = True
    done = torch.zeros(e, t, 1, dtype=torch.bool)
    done[:, -1] = True
    batch = TensorDict({
        "agents": {"observation": torch.randn(e, t, n, obs), "action_mask": mask,
                   "action": torch.distributions.Categorical(mask.float()).sample()},
        "state": torch.randn(e, t, state), "is_init": torch.arange(t).eq(0).expand(e, t).unsqueeze(-1),
        "next": {"agents": {"observation": torch.randn(e, t, n, obs)}, "state": torch.randn(e, t, state),
                 "reward": torch.randn(e, t, 1), "done": done, "terminated": done.clone()},
    }, [e, t])
    grads = {}
    for device in ("cpu", "cuda"):
        networks = [copy.deepcopy(net).to(device) for net in nets]
        policy_optimizer = torch.optim.RMSprop(networks[0].parameters(), lr=5e-4, alpha=0.99, eps=1e-5)
        loss = LIIRLoss(*networks, inner_step=InnerStep(policy_optimizer, 10.0), gamma=0.99, lmbda=0.8)
        out = loss(batch.to(device))
        sum(v for k, v in out.items() if k.startswith("loss_")).backward()
        grads[device] = {name: p.grad.cpu() for net in networks for name, p in net.named_parameters()
                         if p.grad is not None} | {k: v.detach().cpu() for k, v in out.items()}
    assert grads["cpu"].keys() == grads["cuda"].keys()
    for name, value in grads["cpu"].items():
        torch.testing.assert_close(grads["cuda"][name], value, atol=1e-5, rtol=1e-4, msg=name)


def test_a_smax_run_trains_on_the_gpu_with_the_fused_rollout(tmp_path):
    pytest.importorskip("jaxmarl")
    from torchrl_liir.collectors import FusedSMAXCollector
    from torchrl_liir.trainers import make_trainer

    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "task=smax", "experiment.device=cuda", "experiment.total_frames=3000", "task.num_envs=8",
            "experiment.evaluation_episodes=8", "experiment.progress_bar=false"])
    trainer = make_trainer(cfg, tmp_path)
    assert isinstance(trainer.collector, FusedSMAXCollector)
    trainer.train()
    assert trainer.collected_frames >= 3000 and (tmp_path / "test.csv").exists()
