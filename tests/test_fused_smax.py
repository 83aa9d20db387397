"""FusedSMAXCollector: the JAX policy against the torch actor, batches against EpisodeCollector's and the env's."""
from __future__ import annotations

import copy

import pytest
import torch
from conftest import smax_west_edge_steps
from tensordict import TensorDict
from torchrl.envs import Compose, InitTracker, StepCounter, TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import MaskedCategorical, set_recurrent_mode

pytest.importorskip("jaxmarl", reason="SMAX needs the [smax] extra (jaxmarl)")

import jax  # noqa: E402

from torchrl_liir import PursuitEnv, make_gaussian_policy, make_gru_policy, make_mlp_policy, policy_primer  # noqa: E402
from torchrl_liir.collectors import PADDING_MASK, EpisodeCollector  # noqa: E402
from torchrl_liir.collectors.fused_smax import (  # noqa: E402
    FusedSMAXCollector,
    JaxPolicy,
    fused_rollout_applies,
)
from torchrl_liir.envs import SMAXEnv  # noqa: E402
from torchrl_liir.modules import ExplorationFloor  # noqa: E402

N = 4  # battles: one batch shape for the whole file, so each fused program compiles once
N_AGENTS, OBS_DIM, N_ACTIONS = 3, 30, 8  # SMAX 3m: 3 agents, 8 actions; the unit tests' own observation size
MASK, ACTION, LOG_PROB, LOGITS = ("agents", "action_mask"), ("agents", "action"), ("agents", "action_log_prob"), \
    ("agents", "logits")
POLICY_KEYS = {ACTION, LOG_PROB, LOGITS, ("agents", "embedding"), ("agents", "features"), ("agents", "rnn_hidden"),
               ("next", "agents", "rnn_hidden")}


def make_policy(kind: str, epsilon: float | None, obs_dim: int, seed: int = 0, hidden: int = 16):
    """The library's masked categorical policy, with the exploration floor at ``epsilon`` (``None``: none)."""
    torch.manual_seed(seed)
    floor = None if epsilon is None else ExplorationFloor(epsilon)
    if kind == "gru":
        return make_gru_policy(N_AGENTS, obs_dim, N_ACTIONS, hidden_size=hidden, action_mask_key=MASK,
                               exploration_floor=floor)
    return make_mlp_policy(N_AGENTS, obs_dim, N_ACTIONS, num_cells=(hidden, hidden), action_mask_key=MASK,
                           exploration_floor=floor)


def trainer_env(actor, seed: int = 0) -> TransformedEnv:
    """The env as ``torchrl_liir.trainers.trainer.make_env`` builds it for SMAX: an ``InitTracker`` and the
    policy's hidden-state primer on the task's SMAXEnv."""
    primer = policy_primer(actor)
    base = SMAXEnv("3m", N, seed=seed, reward_scale=10.0)
    return TransformedEnv(base, Compose(InitTracker(), *([primer] if primer is not None else [])), auto_unwrap=True)


def smax_policy(kind: str, epsilon: float | None = 0.3, seed: int = 0):
    return make_policy(kind, epsilon, SMAXEnv("3m", 1).obs_dim, seed)


def random_inputs(steps: int, batch: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(steps, batch, N_AGENTS, N_ACTIONS, generator=g) > 0.5
    mask[..., 4] |= ~mask.any(-1)  # at least one available action (SMAX: stop)
    is_init = torch.zeros(steps, batch, 1, dtype=torch.bool)
    is_init[0] = True
    is_init[3:4, ::2] = True  # a new episode in some rows mid-sequence (when there are 4 steps)
    return {"obs": torch.randn(steps, batch, N_AGENTS, OBS_DIM, generator=g), "mask": mask, "is_init": is_init}


def torch_steps(actor, inputs: dict[str, torch.Tensor], hidden_size: int) -> list[TensorDict]:
    """The torch actor stepped greedily along the sequence (as a collector steps it), hidden state carried."""
    steps, batch = inputs["obs"].shape[:2]
    hidden = torch.zeros(batch, N_AGENTS, hidden_size)
    out = []
    for t in range(steps):
        td = TensorDict({"agents": {"observation": inputs["obs"][t], "action_mask": inputs["mask"][t],
                                    "rnn_hidden": hidden}, "is_init": inputs["is_init"][t]}, [batch])
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            actor(td)
        if ("next", "agents", "rnn_hidden") in td.keys(True):
            hidden = td.get(("next", "agents", "rnn_hidden"))
        out.append(td)
    return out


@pytest.mark.parametrize("epsilon", [None, 0.3], ids=["no-floor", "floor"])
@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_jax_policy_matches_the_torch_actor(kind, epsilon):
    hidden_size = 16
    actor = make_policy(kind, epsilon, OBS_DIM, hidden=hidden_size)
    policy = JaxPolicy(actor)
    structure, params = policy.structure, policy.params()
    assert structure.recurrent == (kind == "gru") and structure.exploration_floor == (epsilon is not None)
    step = jax.jit(structure.step, static_argnames="deterministic")
    inputs = random_inputs(steps=6)
    expected = torch_steps(actor, inputs, hidden_size)
    hidden = jax.numpy.zeros((5, N_AGENTS, hidden_size if kind == "gru" else 0))
    for t, want in enumerate(expected):
        obs, mask, is_init = (inputs[k][t].numpy() for k in ("obs", "mask", "is_init"))
        key = jax.random.PRNGKey(t)
        greedy = step(params, obs, mask, hidden, is_init, key, deterministic=True)
        torch.testing.assert_close(torch.from_dlpack(greedy.logits), want.get(LOGITS), atol=1e-5, rtol=0)
        assert torch.equal(torch.from_dlpack(greedy.action).long(), want.get(ACTION))
        torch.testing.assert_close(torch.from_dlpack(greedy.log_prob), want.get(LOG_PROB), atol=1e-5, rtol=0)
        if kind == "gru":
            torch.testing.assert_close(torch.from_dlpack(greedy.hidden), want.get(("next", "agents", "rnn_hidden")),
                                       atol=1e-5, rtol=0)
            torch.testing.assert_close(torch.from_dlpack(greedy.embedding), want.get(("agents", "embedding")),
                                       atol=1e-5, rtol=0)
        # Sampled actions: inside the mask, with the torch distribution's log-probability.
        sampled = step(params, obs, mask, hidden, is_init, key, deterministic=False)
        action = torch.from_dlpack(sampled.action).long()
        assert inputs["mask"][t].gather(-1, action.unsqueeze(-1)).all()
        reference = MaskedCategorical(logits=want.get(LOGITS), mask=inputs["mask"][t]).log_prob(action)
        torch.testing.assert_close(torch.from_dlpack(sampled.log_prob), reference, atol=1e-5, rtol=0)
        hidden = greedy.hidden


@pytest.mark.parametrize("epsilon", [None, 0.5], ids=["no-floor", "floor"])
def test_jax_samples_follow_the_policys_probabilities(epsilon):
    actor = make_policy("mlp", epsilon, OBS_DIM)
    policy = JaxPolicy(actor)
    inputs = random_inputs(steps=1, batch=2)
    draws = 20_000
    obs, mask = (inputs[k][0].repeat(draws // 2, 1, 1).numpy() for k in ("obs", "mask"))  # rows 0, 1, 0, 1, ...
    out = jax.jit(policy.structure.step, static_argnames="deterministic")(
        policy.params(), obs, mask, jax.numpy.zeros((draws, N_AGENTS, 0)), inputs["is_init"][0].numpy(),
        jax.random.PRNGKey(1), False)
    actions = torch.from_dlpack(out.action).long().reshape(draws // 2, 2, N_AGENTS)
    frequency = torch.nn.functional.one_hot(actions, N_ACTIONS).float().mean(0)
    want = torch_steps(actor, inputs, 0)[0]
    probs = MaskedCategorical(logits=want.get(LOGITS), mask=inputs["mask"][0]).probs
    assert frequency[~inputs["mask"][0]].eq(0).all()
    torch.testing.assert_close(frequency, probs, atol=0.02, rtol=0)  # ~4 standard errors at 10k draws


def test_unsupported_envs_and_policies_are_refused_with_a_reason():
    gru, mlp = smax_policy("gru"), smax_policy("mlp", None)
    assert fused_rollout_applies(trainer_env(gru), gru) is None
    assert fused_rollout_applies(trainer_env(mlp), mlp) is None
    assert fused_rollout_applies(SMAXEnv("3m", N), mlp) is None  # a bare SMAXEnv: no is_init entries
    obs_dim = SMAXEnv("3m", 1).obs_dim
    cases = {
        "not a SMAXEnv": (PursuitEnv(num_envs=2, max_steps=5), mlp),
        "not a MaskedCategorical": (SMAXEnv("3m", N), make_mlp_policy(N_AGENTS, obs_dim, N_ACTIONS)),
        "not a ProbabilisticActor": (SMAXEnv("3m", N), mlp.module[0]),
        "TanhNormal": (SMAXEnv("3m", N), make_gaussian_policy(N_AGENTS, obs_dim, 2)),
        "needs the env's InitTracker": (SMAXEnv("3m", N), gru),
        "maps 30 observation features": (SMAXEnv("3m", N), make_policy("mlp", None, OBS_DIM)),
        "transform StepCounter": (TransformedEnv(trainer_env(gru), StepCounter(), auto_unwrap=True), gru),
    }
    for reason, (env, policy) in cases.items():
        assert reason in fused_rollout_applies(env, policy)
    with pytest.raises(ValueError, match="not a SMAXEnv"):
        FusedSMAXCollector(PursuitEnv(num_envs=2, max_steps=5), mlp)


def assert_episode_batch(batch: TensorDict, limit: int) -> None:
    """EpisodeCollector's batch semantics: each row's mask a prefix ending on a done step, trimmed to the longest."""
    mask = batch.get(PADDING_MASK)
    done = batch.get(("next", "done"))[..., 0]
    lengths = mask.sum(-1)
    assert torch.equal(mask, torch.arange(batch.shape[1]) < lengths.unsqueeze(-1))
    assert (lengths >= 1).all() and int(lengths.max()) == batch.shape[1] <= limit
    assert done.gather(-1, (lengths - 1).unsqueeze(-1)).all()  # the last kept step ends the episode
    assert not (done & mask).cumsum(-1).sub(done.long()).bool().logical_and(mask).any()  # no earlier end
    assert batch.get("is_init")[:, 0].all() and not batch.get("is_init")[:, 1:].any()


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_batch_has_episode_collectors_layout(kind):
    actor = smax_policy(kind)
    reference = EpisodeCollector(trainer_env(actor), actor).rollout()
    batch = FusedSMAXCollector(trainer_env(actor), actor, seed=0).rollout()
    assert set(batch.keys(True, True)) == set(reference.keys(True, True))
    assert batch.device == reference.device and batch.batch_dims == 2 and batch.shape[0] == N
    for key in reference.keys(True):
        want, got = reference.get(key), batch.get(key)
        if isinstance(want, torch.Tensor):
            assert (got.shape[2:], got.dtype, got.device) == (want.shape[2:], want.dtype, want.device), key
            assert got.is_contiguous(), key
        else:
            assert got.batch_size[2:] == want.batch_size[2:], key
    assert_episode_batch(batch, limit=60)
    assert_episode_batch(reference, limit=60)


def replay(batch: TensorDict, actor, seed: int, random_state: dict | None = None) -> tuple[TensorDict, dict]:
    """The batch's actions stepped through a fresh trainer env (from ``random_state``): ``[N, T]`` steps."""
    env = trainer_env(actor, seed)
    if random_state is not None:
        env.base_env.set_random_state(random_state)
    td, steps = env.reset(), []
    for t in range(batch.shape[1]):
        td.set(ACTION, batch.get(ACTION)[:, t])
        td = env.step(td)
        steps.append(td.exclude(*POLICY_KEYS))
        td = env.step_mdp(td)
    return torch.stack(steps, dim=1), env.base_env.random_state()


def assert_same_batch(want: TensorDict, got: TensorDict) -> None:
    """The same batch: the same shape, every entry equal (floating ones to float32 rounding)."""
    assert got.shape == want.shape
    for key in want.keys(True, True):
        if want.get(key).dtype.is_floating_point:
            torch.testing.assert_close(got.get(key), want.get(key), atol=1e-5, rtol=0, msg=str(key))
        else:
            assert torch.equal(got.get(key), want.get(key)), key


def assert_same(replayed: TensorDict, batch: TensorDict) -> None:
    for key in replayed.keys(True, True):
        want, got = replayed.get(key), batch.get(key)
        if want.dtype.is_floating_point:
            torch.testing.assert_close(got, want, atol=1e-6, rtol=0, msg=str(key))
        else:
            assert torch.equal(got, want), key


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_replaying_the_actions_through_the_env_gives_the_batch_and_the_actor_its_log_probs(kind):
    actor = smax_policy(kind)
    env = trainer_env(actor, seed=3)
    collector = FusedSMAXCollector(env, actor, seed=1)
    for _ in range(2):  # the second batch: the env's keys were advanced as its own steps advance them
        start = env.base_env.random_state()
        batch = collector.rollout()
        assert batch.shape[0] == N  # every battle ends within the env's limit (truncation)
        replayed, end = replay(batch, actor, seed=3, random_state=start)
        assert set(replayed.keys(True, True)) == set(batch.keys(True, True)) - POLICY_KEYS - {PADDING_MASK}
        assert_same(replayed, batch)  # every step, the padding's too: the same vectorised stepping
        for name, key in env.base_env.random_state().items():
            assert torch.equal(key, end[name])
    # The torch actor over the stored observations (a GRU unrolled as the losses unroll it).
    mask = batch.get(PADDING_MASK)
    evaluated = batch.exclude(*POLICY_KEYS - {("agents", "rnn_hidden")})
    with torch.no_grad(), set_recurrent_mode(True):
        actor.module[0](evaluated)
    torch.testing.assert_close(evaluated.get(LOGITS)[mask], batch.get(LOGITS)[mask], atol=1e-5, rtol=0)
    log_prob = MaskedCategorical(logits=evaluated.get(LOGITS), mask=batch.get(MASK)).log_prob(batch.get(ACTION))
    torch.testing.assert_close(log_prob[mask], batch.get(LOG_PROB)[mask], atol=1e-5, rtol=0)
    if kind == "gru":
        for key in (("next", "agents", "rnn_hidden"), ("agents", "embedding")):
            torch.testing.assert_close(evaluated.get(key)[mask], batch.get(key)[mask], atol=1e-5, rtol=0)
        assert torch.equal(batch.get(("agents", "rnn_hidden"))[:, 1:], batch.get(("next", "agents", "rnn_hidden"))[:,
                                                                                                                   :-1])
        assert batch.get(("agents", "rnn_hidden"))[:, 0].eq(0).all()


@pytest.mark.parametrize("limit", [None, 11], ids=["env-limit", "shorter-limit"])
def test_greedy_batches_are_episode_collectors(limit):
    """Greedy, the two collectors play the same episodes: the same batches, unfinished rows dropped alike (this
    greedy policy ends its battles in 10 to 13 steps)."""
    actor = smax_policy("gru")
    collectors = []
    for cls in (EpisodeCollector, FusedSMAXCollector):
        with pytest.warns(UserWarning, match="shorter") if limit else _no_warning():
            collectors.append(cls(trainer_env(actor, seed=5), actor, limit,
                                  exploration_type=ExplorationType.DETERMINISTIC))
    dropped = False
    for _ in range(3):
        want, got = (c.rollout() for c in collectors)
        assert_same_batch(want, got)
        dropped |= want.shape[0] < N
    assert dropped == (limit is not None)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_fused_batches_play_by_the_envs_walls_rule():
    """A greedy policy walking every ally west: under SMAX's rule its allies die on the map's edge as the env's do
    (test_smax.py), under SMAC's rule they are held there and the episodes last longer. Two rules, two programs."""
    from torchrl_liir.collectors.fused_population import FusedSMAXPopulation

    collectors = []
    for walls_cause_death in (True, False):
        env = SMAXEnv("3m", N, seed=0, walls_cause_death=walls_cause_death)
        actor = make_policy("mlp", None, env.obs_dim)
        logits = [m for m in actor.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():  # logits from the bias alone: west (3) when available, else stop (4)
            logits.weight.zero_()
            logits.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0]))
        collectors.append(FusedSMAXCollector(env, actor, exploration_type=ExplorationType.DETERMINISTIC))
    steps = smax_west_edge_steps(collectors[0].env)
    deadly, held = (c.rollout() for c in collectors)
    assert deadly.shape[0] == N and deadly.shape[1] <= steps
    assert deadly.get(("agents", "action"))[:, 0].eq(3).all()
    last = deadly.get(PADDING_MASK).sum(-1, keepdim=True) - 1
    assert deadly.get(("next", "info", "dead_allies")).gather(-1, last).eq(3).all()
    assert not deadly.get(("next", "info", "battle_won")).any()
    assert held.shape[0] == N and held.get(PADDING_MASK).sum(-1).gt(steps).all()
    with pytest.raises(ValueError, match="member 1 differs"):
        FusedSMAXPopulation(collectors)


def test_state_dict_resumes_with_the_same_next_batch():
    actor = smax_policy("gru")
    first = FusedSMAXCollector(trainer_env(actor, seed=0), actor, seed=0)
    first.rollout()
    state = copy.deepcopy(first.state_dict())
    expected = first.rollout()
    resumed = FusedSMAXCollector(trainer_env(actor, seed=9), actor, seed=9)
    resumed.load_state_dict(state)
    got = resumed.rollout()
    assert got.shape == expected.shape
    assert (got == expected).all()
    assert resumed.state_dict()["policy_key"].dtype == torch.int64
    # An EpisodeCollector's state (frames only) is taken too: the keys stay as they are.
    key = resumed.state_dict()["policy_key"]
    resumed.load_state_dict({"frames": 7})
    assert resumed.frames == 7 and torch.equal(resumed.state_dict()["policy_key"], key)


def test_seeded_collectors_repeat_and_parameters_are_read_at_every_batch():
    actor = smax_policy("mlp")
    a = FusedSMAXCollector(trainer_env(actor, seed=1), actor)
    b = FusedSMAXCollector(trainer_env(actor, seed=1), actor)
    c = FusedSMAXCollector(trainer_env(actor, seed=2), actor)
    first = a.rollout()
    assert (first == b.rollout()).all()  # the sampling keys come from the env's seed
    assert not torch.equal(first.get(ACTION)[:, :1], c.rollout().get(ACTION)[:, :1])
    a.set_seed(4)
    b.set_seed(4)
    assert (a.rollout() == b.rollout()).all()
    # ε = 1: the policy is uniform over the available actions, seen without rebuilding the collector.
    actor.module[0].module[1].module.epsilon.fill_(1.0)
    batch = a.rollout()
    available = batch.get(MASK).sum(-1).float()
    torch.testing.assert_close(batch.get(LOG_PROB), -available.log(), atol=1e-5, rtol=0)


def test_iterator_counts_frames_and_applies_postproc():
    actor = smax_policy("mlp")

    def postproc(batch):
        batch.set("seen", torch.ones(batch.shape, dtype=torch.bool))
        return batch

    collector = FusedSMAXCollector(trainer_env(actor), actor, total_frames=50, postproc=postproc, seed=0)
    batches = list(collector)
    assert all(b.get("seen").all() for b in batches)
    assert collector.frames == sum(int(b.get(PADDING_MASK).sum()) for b in batches) >= 50
    assert collector.state_dict()["frames"] == collector.frames
    assert "FusedSMAXCollector(envs=4, episode_limit=60, policy=mlp" in repr(collector)
    collector.shutdown()
    assert collector.env.is_closed


def test_a_population_collects_each_members_batches_in_one_call():
    """Two members (their own seeds, policies and sampling keys): the shared program's batches are each member's
    own collector's, batch after batch."""
    from torchrl_liir.collectors.fused_population import FusedSMAXPopulation

    def member(seed: int) -> FusedSMAXCollector:
        actor = smax_policy("gru", seed=seed)
        return FusedSMAXCollector(trainer_env(actor, seed=seed), actor)

    alone = [member(0), member(1)]
    population = FusedSMAXPopulation([member(0), member(1)])
    for _ in range(3):
        together = population.rollout()
        for want, got in zip((c.rollout() for c in alone), together):
            assert_same_batch(want, got)
    assert [c.state_dict()["policy_key"].tolist() for c in alone] == \
        [c.state_dict()["policy_key"].tolist() for c in population.members]


def test_population_members_must_share_one_program():
    from torchrl_liir.collectors.fused_population import FusedSMAXPopulation

    gru, mlp = smax_policy("gru"), smax_policy("mlp")
    with pytest.raises(ValueError, match="member 1 differs"):
        FusedSMAXPopulation([FusedSMAXCollector(trainer_env(gru), gru), FusedSMAXCollector(trainer_env(mlp), mlp)])


def q_actor(kind: str, eps: float, obs_dim: int = OBS_DIM, seed: int = 0, hidden: int = 16):
    """IQL's and QMIX's actor: the library's masked Q-network, ε-greedy."""
    from torchrl_liir.modules import make_egreedy_actor, make_gru_q_network, make_mlp_q_network

    torch.manual_seed(seed)
    if kind == "gru":
        network = make_gru_q_network(N_AGENTS, obs_dim, N_ACTIONS, hidden_size=hidden, action_mask_key=MASK)
    else:
        network = make_mlp_q_network(N_AGENTS, obs_dim, N_ACTIONS, num_cells=(hidden, hidden), action_mask_key=MASK)
    return make_egreedy_actor(network, N_AGENTS, N_ACTIONS, eps_init=eps, eps_end=eps, action_mask_key=MASK)


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_jax_q_actor_matches_the_torch_actor(kind):
    """Greedy: the masked action values, the argmax, its value and the GRU's state are the torch actor's."""
    actor = q_actor(kind, eps=0.5)
    policy = JaxPolicy(actor)
    assert policy.structure.q_values and policy.structure.recurrent == (kind == "gru")
    step = jax.jit(policy.structure.step, static_argnames="deterministic")
    inputs = random_inputs(steps=6)
    hidden = torch.zeros(5, N_AGENTS, 16)
    for t in range(6):
        td = TensorDict({"agents": {"observation": inputs["obs"][t], "action_mask": inputs["mask"][t],
                                    "rnn_hidden": hidden}, "is_init": inputs["is_init"][t]}, [5])
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            actor(td)
        out = step(policy.params(), inputs["obs"][t].numpy(), inputs["mask"][t].numpy(), hidden.numpy(),
                   inputs["is_init"][t].numpy(), jax.random.PRNGKey(t), deterministic=True)
        assert torch.equal(torch.from_dlpack(out.action).long(), td.get(ACTION))
        torch.testing.assert_close(torch.from_dlpack(out.logits), td.get(("agents", "action_value")), atol=1e-5,
                                   rtol=0)
        torch.testing.assert_close(torch.from_dlpack(out.log_prob).unsqueeze(-1),
                                   td.get(("agents", "chosen_action_value")), atol=1e-5, rtol=0)
        if kind == "gru":
            hidden = td.get(("next", "agents", "rnn_hidden"))
            torch.testing.assert_close(torch.from_dlpack(out.hidden), hidden, atol=1e-5, rtol=0)


def test_jax_q_actor_explores_with_probability_epsilon_among_the_available_actions():
    inputs = random_inputs(steps=1, batch=2)
    draws = 20_000
    obs, mask = (inputs[k][0].repeat(draws // 2, 1, 1).numpy() for k in ("obs", "mask"))
    greedy = None
    for eps in (0.0, 0.4, 1.0):
        policy = JaxPolicy(q_actor("mlp", eps))
        out = jax.jit(policy.structure.step, static_argnames="deterministic")(
            policy.params(), obs, mask, jax.numpy.zeros((draws, N_AGENTS, 0)), inputs["is_init"][0].numpy(),
            jax.random.PRNGKey(2), False)
        actions = torch.from_dlpack(out.action).long().reshape(draws // 2, 2, N_AGENTS)
        if greedy is None:
            greedy = actions[0]
            assert (actions == greedy).all()  # ε = 0: always the greedy action
            continue
        available = inputs["mask"][0]
        uniform = available.float() / available.sum(-1, keepdim=True)
        want = eps * uniform + (1 - eps) * torch.nn.functional.one_hot(greedy, N_ACTIONS).float()
        frequency = torch.nn.functional.one_hot(actions, N_ACTIONS).float().mean(0)
        torch.testing.assert_close(frequency, want, atol=0.02, rtol=0)


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_q_actor_batches_are_episode_collectors(kind):
    """The ε-greedy actor's batches have EpisodeCollector's layout, and its greedy ones are EpisodeCollector's."""
    actor = q_actor(kind, eps=0.3, obs_dim=SMAXEnv("3m", 1).obs_dim)
    reference = EpisodeCollector(trainer_env(actor), actor).rollout()
    batch = FusedSMAXCollector(trainer_env(actor), actor, seed=0).rollout()
    assert set(batch.keys(True, True)) == set(reference.keys(True, True))
    for key in reference.keys(True, True):
        want, got = reference.get(key), batch.get(key)
        assert (got.shape[2:], got.dtype) == (want.shape[2:], want.dtype), key
    assert_episode_batch(batch, limit=60)
    collectors = [cls(trainer_env(actor, seed=5), actor, exploration_type=ExplorationType.DETERMINISTIC)
                  for cls in (EpisodeCollector, FusedSMAXCollector)]
    for _ in range(2):
        want, got = (c.rollout() for c in collectors)
        assert_same_batch(want, got)
