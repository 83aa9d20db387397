"""LIIRLoss's r_in diagnostics against hand-computed values, their independence from every loss value and gradient,
the optimiser groups' update norms against a real step, the metrics.csv columns of a run, and
scripts/plot_diagnostics.py."""
from __future__ import annotations

import csv
import gzip
import math
import shutil
import statistics
import sys
from pathlib import Path

import pytest
import torch
from conftest import (
    N_ACTIONS,
    N_AGENTS,
    OBS_DIM,
    SCRIPTS,
    agent_end_flags,
    hand_td_lambda,
    random_batch,
    run_in_process,
)
from test_env_agnostic_losses import continuous_batch, continuous_nets, make_liir
from test_meta_gradient import GAMMA, LMBDA, make_loss, make_nets

from torchrl_liir.objectives import LIIRLoss
from torchrl_liir.optimizer_steps import OptimizerGroup, guarded_step

DIAGNOSTICS = ("r_in_spread_agents", "r_in_spread_actions", "r_in_saturated", "proxy_advantage_share_r_in")
BOUND = 0.8
PLOT = str(SCRIPTS / "plot_diagnostics.py")


def known_intrinsic_reward(nets, seed=3):
    """Swaps the intrinsic reward's MLP for one linear layer of large weights (|r_in| spread up to the bound);
    returns that layer, from which the test computes r_in by hand."""
    module = nets[1].module
    torch.manual_seed(seed)
    linear = torch.nn.Linear(OBS_DIM + N_AGENTS, N_ACTIONS)  # make_nets' intrinsic reward reads the agent's id
    with torch.no_grad():
        linear.weight.mul_(3.0)
    module.mlp, module.bound = linear, BOUND
    return linear


def hand_rewards(linear, observation):
    """r_in of every action ``[B, T, n, A]``: ``bound·tanh((W·[o_i, onehot(i)] + b) / bound)``, agent by agent."""
    out = torch.empty(*observation.shape[:-1], N_ACTIONS)
    for i in range(N_AGENTS):
        inputs = torch.cat([observation[..., i, :], torch.nn.functional.one_hot(
            torch.full(observation.shape[:-2], i), N_AGENTS).to(observation.dtype)], dim=-1)
        out[..., i, :] = BOUND * torch.tanh((inputs @ linear.weight.T + linear.bias) / BOUND)
    return out


def entries(batch):
    """The valid (b, t, i) entries: unpadded steps, living agents."""
    b_, t_, n_ = batch["agents", "alive"].shape
    return [(b, t, i) for b in range(b_) for t in range(t_) for i in range(n_)
            if batch["collector", "mask"][b, t] and batch["agents", "alive"][b, t, i]]


@pytest.fixture
def known(float64):
    nets = make_nets("mlp")
    linear = known_intrinsic_reward(nets)
    batch = random_batch(nets[0], seed=5)
    # One valid entry with a single available action (the taken one), which the spread across actions skips.
    b, t, i = entries(batch)[0]
    only = torch.zeros(N_ACTIONS, dtype=torch.bool)
    only[batch["agents", "action"][b, t, i]] = True
    batch["agents", "action_mask"][b, t, i] = only
    return nets, linear, batch


def hand_share(nets, batch, every, lambda_in, normalize):
    """mean|Â_p(η) − Â_p(λ=0)| / mean|Â_p(η)| over the valid entries, by the textbook TD(λ) recursion."""
    _, _, proxy, _ = nets
    nxt = batch["next"]
    with torch.no_grad():
        v_p, nv_p = proxy(batch.copy())["agents", "proxy_value"], proxy(nxt.copy())["agents", "proxy_value"]
    done, term = agent_end_flags(batch)
    taken = every.gather(-1, batch["agents", "action"].unsqueeze(-1))
    alive_taken = taken * batch["agents", "alive"].unsqueeze(-1)
    valid = entries(batch)
    advantages = []
    for lam in (lambda_in, 0.0):
        _, adv = hand_td_lambda(nxt["reward"].unsqueeze(-2) + lam * alive_taken, v_p, nv_p, done, term, GAMMA, LMBDA)
        values = [adv[b, t, i, 0].item() for b, t, i in valid]
        if normalize:
            mean, std = statistics.fmean(values), statistics.pstdev(values)
            values = [(v - mean) / (std + 1e-8) for v in values]
        advantages.append(values)
    with_r_in, without = advantages
    return sum(abs(a - z) for a, z in zip(with_r_in, without)) / sum(abs(a) for a in with_r_in)


@pytest.mark.parametrize("normalize", [False, True])
def test_each_diagnostic_equals_its_hand_computed_value(known, normalize):
    nets, linear, batch = known
    lambda_in = 0.5
    loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1), lambda_in=lambda_in,
                     normalize_advantage=normalize)
    out = loss(batch)
    assert list(out.keys()) == loss.out_keys and set(DIAGNOSTICS) <= set(out.keys())
    every = hand_rewards(linear, batch["agents", "observation"])
    taken = every.gather(-1, batch["agents", "action"].unsqueeze(-1))[..., 0]
    valid = entries(batch)

    steps = {}
    for b, t, i in valid:
        steps.setdefault((b, t), []).append(taken[b, t, i].item())
    assert any(len(v) == 1 for v in steps.values()) and any(len(v) >= 2 for v in steps.values())
    spread_agents = statistics.fmean(statistics.pstdev(v) for v in steps.values() if len(v) >= 2)

    per_entry = []
    for b, t, i in valid:
        allowed = [every[b, t, i, u].item() for u in range(N_ACTIONS) if batch["agents", "action_mask"][b, t, i, u]]
        if len(allowed) >= 2:
            per_entry.append(statistics.pstdev(allowed))
    assert len(per_entry) < len(valid)  # the fixture's single-action entry is skipped
    spread_actions = statistics.fmean(per_entry)

    saturated = sum(abs(taken[b, t, i].item()) > 0.95 * BOUND for b, t, i in valid) / len(valid)
    near = sum(0.9 * BOUND < abs(taken[b, t, i].item()) <= 0.95 * BOUND for b, t, i in valid)
    assert 0 < saturated < 1 and near > 0  # entries on both sides of the threshold

    expected = {"r_in_spread_agents": spread_agents, "r_in_spread_actions": spread_actions,
                "r_in_saturated": saturated,
                "proxy_advantage_share_r_in": hand_share(nets, batch, every, lambda_in, normalize),
                "intrinsic_reward": statistics.fmean(taken[b, t, i].item() for b, t, i in valid)}
    for name, value in expected.items():
        assert out[name].item() == pytest.approx(value, rel=1e-9, abs=1e-12), name
        assert not out[name].requires_grad and out[name].dtype == torch.float64


def test_without_r_in_the_share_is_zero_and_it_grows_with_lambda(known):
    nets, _, batch = known
    shares = []
    for lambda_in in (0.0, 0.05, 0.5):
        loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1), lambda_in=lambda_in,
                         normalize_advantage=True)
        shares.append(loss(batch)["proxy_advantage_share_r_in"].item())
    assert shares[0] == 0.0 and 0 < shares[1] < shares[2]


@pytest.mark.parametrize("policy", ["mlp", "gru"])
@pytest.mark.parametrize("normalize", [False, True])
def test_the_diagnostics_change_no_loss_value_or_gradient(float64, monkeypatch, policy, normalize):
    nets = make_nets(policy)
    loss = make_loss(nets, torch.optim.RMSprop(nets[0].parameters(), lr=0.01), max_grad_norm=0.05, lambda_in=0.5,
                     normalize_advantage=normalize)
    batch = random_batch(nets[0], seed=7)
    params = [p for net in nets for p in net.parameters()]

    def run():
        out = loss(batch.clone())
        grads = torch.autograd.grad(sum(v for k, v in out.items() if k.startswith("loss_")), params,
                                    allow_unused=True)
        return out, grads

    with_diagnostics, grads = run()
    monkeypatch.setattr(LIIRLoss, "_diagnostics", lambda self, *args: {})
    without, plain_grads = run()
    assert set(with_diagnostics.keys()) - set(without.keys()) == set(DIAGNOSTICS)
    for key in without.keys():
        assert torch.equal(with_diagnostics[key], without[key]), key
    for g, plain in zip(grads, plain_grads):
        assert (g is None and plain is None) or torch.equal(g, plain)


def test_continuous_or_unbounded_intrinsic_rewards_leave_out_what_does_not_apply(float64):
    nets = continuous_nets("normal", seed=2)
    loss = make_liir(nets, 0.1, lambda_in=0.5)
    out = loss(continuous_batch(nets[0], seed=3))
    assert "r_in_spread_actions" not in out.keys() and "r_in_saturated" in out.keys()
    assert list(out.keys()) == loss.out_keys
    assert all(torch.isfinite(out[k]) for k in loss.out_keys)

    nets = make_nets("mlp")
    nets[1].module.bound = None
    loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1))
    out = loss(random_batch(nets[0], seed=1))
    assert "r_in_saturated" not in out.keys() and "r_in_spread_actions" in out.keys()
    assert list(out.keys()) == loss.out_keys


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_update_norms_are_the_size_of_the_real_step(optimizer):
    torch.manual_seed(0)
    nets = {"a": torch.nn.Linear(4, 3), "b": torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 1))}
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1), "adam": lambda p: torch.optim.Adam(p, lr=0.01)}[optimizer]
    groups = {"a": OptimizerGroup(make(nets["a"].parameters()), 0.5),
              "b": OptimizerGroup(make(nets["b"].parameters()), None)}
    x = torch.randn(8, 4)
    for update in (1, 2):  # the second step: Adam with moments
        before = {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}
        loss = nets["b"](torch.tanh(nets["a"](x))).pow(2).mean() + nets["a"](x).pow(2).mean()
        norms = guarded_step(groups, {"loss_x": loss}, update)
        assert list(norms) == ["grad_norm_a", "grad_norm_b", "update_norm_a", "update_norm_b"]
        for name, net in nets.items():
            change = math.sqrt(sum(((p.detach() - q) ** 2).sum().item() for p, q in zip(net.parameters(),
                                                                                       before[name])))
            assert change > 0
            assert norms[f"update_norm_{name}"].item() == pytest.approx(change, rel=1e-5)
        if optimizer == "sgd":  # the step is lr × the clipped gradient
            assert norms["update_norm_a"].item() == pytest.approx(0.1 * min(norms["grad_norm_a"].item(), 0.5),
                                                                  rel=1e-5)


# ---------------------------------------------------------------- a run's metrics.csv and the plot


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from hydra import compose, initialize_config_dir

    from torchrl_liir.trainers import train

    root = Path(__file__).resolve().parents[1]
    with initialize_config_dir(config_dir=str(root / "torchrl_liir" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "experiment.progress_bar=false", "experiment.total_frames=1200", "task.num_envs=8",
            "experiment.study=null", "experiment.evaluation_episodes=4"])
    run_dir = tmp_path_factory.mktemp("diagnostics") / "run"
    assert train(cfg, run_dir)["status"] == "finished"
    return run_dir


def test_a_liir_run_logs_the_diagnostics_each_update(tiny_run):
    with (tiny_run / "metrics.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) >= 2
    for row in table:
        for name in (*DIAGNOSTICS, "intrinsic_reward", "update_norm_intrinsic", "update_norm_policy",
                     "update_norm_critic", "grad_norm_intrinsic"):
            assert math.isfinite(float(row[name])), name
        assert float(row["update_norm_intrinsic"]) > 0 and 0 <= float(row["r_in_saturated"]) <= 1


def test_plot_script_draws_a_run_and_its_archived_copy_and_refuses_older_runs(tiny_run, tmp_path, capsys):
    done = run_in_process([sys.executable, PLOT, str(tiny_run)], capsys)
    assert done.returncode == 0, done.stderr
    png = tiny_run / "diagnostics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "6 panels" in done.stdout

    archived = tmp_path / "archived"
    archived.mkdir()
    with (tiny_run / "metrics.csv").open("rb") as src, gzip.open(archived / "metrics.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    out = tmp_path / "figures" / "archived.png"
    done = run_in_process([sys.executable, PLOT, str(archived), "--out", str(out)], capsys)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0 and not (archived / "diagnostics.png").exists()

    older = tmp_path / "older"
    older.mkdir()
    with gzip.open(older / "metrics.csv.gz", "wt") as f:
        f.write("update,frames,loss_intrinsic,intrinsic_reward,grad_norm_intrinsic\n1,600,0.1,0.01,0.2\n")
    for run_dir in (older, tmp_path / "missing"):
        refused = run_in_process([sys.executable, PLOT, str(run_dir)], capsys)
        assert refused.returncode == 1 and refused.stderr.startswith("error: ")
        assert len(refused.stderr.strip().splitlines()) == 1
    assert "r_in_spread_agents" in run_in_process([sys.executable, PLOT, str(older)], capsys).stderr
