"""Runs in one process: a solo run, or a population of seeds × variants (:mod:`torchrl_liir.trainers.members`).

A solo run is a population of one; both take the same path. Each member is a whole run: its own config, networks,
optimisers, replay buffer, envs, random streams and run directory, holding exactly what a solo run writes. The
population steps its members in turn, one collected batch and one update each per round. For its turn a member's
process-wide random streams (torch, NumPy, Python, and any its task's envs share) are swapped in, so it draws
exactly what it would alone: member ``k`` equals the solo run with seed ``k`` row for row (tested). A member that
diverges stops alone, its last good checkpoint kept; the others go on.
"""
from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDictBase
from torchrl.checkpoint import GlobalRNGState

from torchrl_liir.collectors import FusedSMAXCollector, FusedSMAXPopulation
from torchrl_liir.optimizer_steps import NonFiniteError
from torchrl_liir.tasks import Task
from torchrl_liir.trainers.checkpoints import (
    CHECKPOINTS,
    CheckpointFileError,
    checkpoint_candidates,
    clean_interrupted_writes,
    restore_intact,
)
from torchrl_liir.trainers.config import Experiment, check_config
from torchrl_liir.trainers.members import MemberConfig, is_population, member_configs
from torchrl_liir.trainers.run_directory import claim_run_dir, frames_played, locked_run_dir, write_atomically
from torchrl_liir.trainers.signals import GracefulStop, RunInterrupted
from torchrl_liir.trainers.trainer import EpisodeTrainer, FrameBar, build_trainer

POPULATION_FILE = "population.json"  # a population's run directory: its members and how each ended


class Member:
    """One run of a population: its config, run directory, trainer and process-global random streams."""

    def __init__(self, config: MemberConfig, run_dir: Path, task: Task) -> None:
        self.name, self.cfg, self.run_dir, self.task = config.name, config.cfg, run_dir, task
        self.trainer: EpisodeTrainer | None = None
        self.summary: dict | None = None
        self._batches: Iterator[TensorDictBase] | None = None
        self._random: tuple[dict, dict | None] | None = None

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """The member's process-wide random streams while it builds, collects and updates: torch's, NumPy's and
        Python's, and those the task's envs share (VMAS's); its trainer seeds them when it is built."""
        if self._random is not None:
            GlobalRNGState().load_state_dict(self._random[0])
            if self._random[1] is not None:
                self.task.set_shared_random_state(self._random[1])
        try:
            yield
        finally:
            self._random = GlobalRNGState().state_dict(), self.task.shared_random_state()

    def build(self, experiment: Experiment, resume: bool) -> None:
        """Builds the member's trainer; with ``resume``, restores its newest intact checkpoint."""
        with self.turn():
            self.trainer = build_trainer(self.cfg, self.run_dir, experiment)
            if resume:
                restore_intact(self.trainer.restore, self.run_dir)
            self._batches = iter(self.trainer.collector)

    def step(self) -> bool:
        """Collects and trains on one batch; returns whether the member's run is over."""
        with self.turn():
            batch = next(self._batches, None)
            return batch is None or self.trainer.train_on(batch)

    def finish(self, status: str, error: BaseException | None = None, *, loop_ended: bool = False) -> None:
        """Ends the member's run (``loop_ended``: its loop's end, as TorchRL's, first), closes its envs and writes
        its ``summary.json``."""
        if loop_ended:
            with self.turn():
                self.trainer.end()
        self.summary = self.trainer.summary(status)
        if error is not None:
            self.summary["error"] = str(error) if isinstance(error, NonFiniteError) else repr(error)
        self.trainer.close()
        write_summary(self.run_dir, self.summary)


def collects_together(members: list[Member], member_rollout: str) -> str | None:
    """Why the members cannot collect their SMAX batches in one compiled program, ``None`` when they will
    (``experiment.member_rollout``: ``together``, ``one_by_one``, or ``auto``: together on a GPU only, as on a
    CPU the members one by one are faster, BENCHMARKS.md)."""
    collectors = [m.trainer.collector for m in members]
    if member_rollout == "one_by_one" or len(members) == 1:
        return "one by one"
    if not all(isinstance(c, FusedSMAXCollector) for c in collectors):
        return "one by one"
    if member_rollout == "auto" and collectors[0].env.device.type == "cpu":
        return "one by one: on a CPU, faster than together"
    try:
        FusedSMAXPopulation(collectors)
    except ValueError as err:
        return f"one by one: {err}"
    return None


class Population:
    """The members of one configuration, trained in turn (:meth:`run`); ``request_stop`` (a signal) asks each to
    stop after its current update, with a checkpoint. With ``together``, each round's SMAX batches come from one
    call of one compiled program (:class:`~torchrl_liir.collectors.FusedSMAXPopulation`), each member's batch the
    one its own collector would collect."""

    def __init__(self, members: list[Member], progress_bar: bool, together: bool = False) -> None:
        self.members, self.together = members, together
        self._together: FusedSMAXPopulation | None = None
        self.bar = None
        if progress_bar and len(members) > 1:
            total = sum(int(m.trainer.total_frames) for m in members)
            self.bar = FrameBar(total, initial=sum(int(m.trainer.collected_frames) for m in members))

    def _collected_together(self, running: list[Member]) -> FusedSMAXPopulation:
        """One :class:`FusedSMAXPopulation` over the running members, built again only when one has stopped."""
        if self._together is None or len(self._together.members) != len(running):
            self._together = FusedSMAXPopulation([m.trainer.collector for m in running])
        return self._together

    def request_stop(self, reason: str) -> None:
        for member in self.members:
            if member.summary is None:
                member.trainer.request_stop(reason)

    def run(self) -> None:
        """Trains every member to its budget, one batch each per round; a diverged member stops alone."""
        for member in self.members:
            with member.turn():
                member.trainer.begin()
        running = list(self.members)
        try:
            while running:
                if self.together:
                    self._collected_together(running).hand_over()
                for member in list(running):
                    frames = member.trainer.collected_frames
                    try:
                        over = member.step()
                    except NonFiniteError as err:
                        saved = member.trainer.save_bad_state(err)
                        kept = ("the last good checkpoint is kept" if checkpoint_candidates(member.run_dir)
                                else "no checkpoint was written before it")
                        member.finish("non_finite", NonFiniteError(f"{err}; {kept}, {saved}"))
                        running.remove(member)
                        continue
                    if self.bar is not None:
                        self.bar.update(int(member.trainer.collected_frames - frames))
                    if over:
                        stopped = member.trainer.collected_frames < member.trainer.total_frames
                        member.finish("interrupted" if stopped else "finished", loop_ended=True)
                        running.remove(member)
        except RunInterrupted:
            for member in running:
                member.finish("interrupted")
            raise
        except BaseException as err:
            for member in running:
                member.finish("crashed", err)
            raise
        finally:
            if self.bar is not None:
                self.bar.close()


def write_summary(run_dir: Path, summary: dict) -> None:
    write_atomically(Path(run_dir) / "summary.json", json.dumps(summary, indent=2))


def _resume_point(member: Member, resume: bool, solo: bool) -> tuple[bool, dict | None]:
    """Whether a member continues from a checkpoint (else it starts afresh), and its summary if it has finished
    already. A solo run must have a checkpoint to resume; a population's member without one starts afresh."""
    if not resume:
        return False, None
    if not checkpoint_candidates(member.run_dir):
        if solo:
            raise CheckpointFileError(f"{member.run_dir / CHECKPOINTS}: no checkpoint to resume from")
        return False, None
    summary_file = member.run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    played = frames_played(member.run_dir) or 0
    finished = (not solo and summary.get("status") == "finished" and summary.get("frames") == played
                and played >= member.cfg.experiment.total_frames)
    return True, summary if finished else None


def train(cfg: DictConfig, run_dir: str | Path, *, resume: bool = False) -> dict:
    """Trains the configured run into ``run_dir``, or (``seeds`` / ``variants`` set) each member of the population
    into its subdirectory of ``run_dir``; with ``resume``, continues from the latest checkpoints. Returns the run's
    ``summary.json`` (a population: ``{"status", "members": {name: summary}}``, also in ``population.json``).

    Raises :class:`NonFiniteError` when a solo run diverges (the bad state saved aside, the last good checkpoint
    kept; a population's member stops alone and the others go on), and :class:`RunInterrupted` on SIGTERM /
    SIGINT (after a checkpoint of every running member).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_liir.cli import compose_config
        >>> cfg = compose_config(["task=pursuit", "algo=liir", "task.num_envs=4", "experiment.total_frames=100",
        ...                       "experiment.evaluation_episodes=4", "experiment.study=null",
        ...                       "experiment.progress_bar=false", "experiment.jax_cache_dir=null"])
        >>> from torchrl_liir.trainers import train
        >>> run_dir = Path(tempfile.mkdtemp()) / "run"
        >>> summary = train(cfg, run_dir)
        collector: step by step (the env is a PursuitEnv, not a SMAXEnv)
        >>> summary["status"], summary["frames"] >= 100, summary["updates"] >= 1
        ('finished', True, True)
        >>> sorted(path.name for path in run_dir.iterdir() if not path.name.startswith("."))
        ['checkpoints', 'config.yaml', 'metrics.csv', 'summary.json', 'test.csv']
    """
    experiment = check_config(cfg)
    run_dir = claim_run_dir(Path(run_dir), resume)
    solo = not is_population(cfg)
    members = [Member(config, run_dir if solo else run_dir / config.name, experiment.task)
               for config in member_configs(cfg)]
    with contextlib.ExitStack() as writing, GracefulStop() as stop:
        for directory in dict.fromkeys([run_dir, *(m.run_dir for m in members)]):
            writing.enter_context(locked_run_dir(directory))
            clean_interrupted_writes(directory)
        if not solo:
            write_atomically(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        running = []
        for member in members:
            restore, member.summary = _resume_point(member, resume, solo)
            if member.summary is not None:
                continue
            if not solo:
                member.cfg.experiment.progress_bar = member.cfg.experiment.progress_bar and len(members) == 1
            member.build(experiment, restore)
            running.append(member)
            stop.stop_if_requested(resumable=resume)
        if running:
            apart = collects_together(running, cfg.experiment.get("member_rollout", "auto"))
            described = running[0].trainer.collector_description
            if not solo:
                described += f" ({len(running)} members, " + (apart or "collected together in one program") + ")"
            print(f"collector: {described}", flush=True)
            population = Population(running, bool(cfg.experiment.progress_bar), together=apart is None)
            stop.trainer = population
            population.run()
    interrupted = [m for m in members if m.summary["status"] == "interrupted"]
    if stop.signum is not None and not interrupted:  # it came after training: during a study, or at the end
        name = signal.Signals(stop.signum).name
        raise RunInterrupted(stop.signum, f"stopped by {name} after training (the run is finished"
                             + ("; its study was not written)" if any("study" in m.summary for m in members) else ")"),
                             resumable=False)
    if stop.signum is not None and interrupted:
        trainer = interrupted[0].trainer
        where = (f"at update {trainer.progress.updates} ({int(trainer.collected_frames)} frames)" if solo
                 else f"with {len(interrupted)} of {len(members)} members unfinished")
        raise RunInterrupted(stop.signum, f"stopped by {signal.Signals(stop.signum).name} {where}; checkpoint saved")
    if solo:
        summary = members[0].summary
        if summary["status"] == "non_finite":
            raise NonFiniteError(summary["error"])
        return summary
    return _population_summary(run_dir, members)


def _population_summary(run_dir: Path, members: list[Member]) -> dict:
    statuses = {m.summary["status"] for m in members}
    summary = {"status": statuses.pop() if len(statuses) == 1 else "mixed",
               "members": {m.name: m.summary for m in members}}
    write_atomically(run_dir / POPULATION_FILE, json.dumps(
        {"status": summary["status"], "members": {m.name: {"status": m.summary["status"], "test": m.summary["test"],
                                                           "frames": m.summary["frames"]} for m in members}},
        indent=2))
    return summary


def print_summary(summary: dict, out=sys.stdout) -> None:
    """The command line's last lines: the final test of the run, or of each member with how it ended."""
    def scores(test: dict) -> str:
        return ", ".join(f"{k}={v:.3f}" for k, v in test.items())

    if "members" not in summary:
        print("test: " + scores(summary["test"]), file=out)
        return
    for name, member in summary["members"].items():
        ended = "" if member["status"] == "finished" else f" ({member['status']})"
        print(f"{name}: test: {scores(member['test'])}{ended}", file=out)
