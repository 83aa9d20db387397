"""A normal run prints its own lines only: no warnings, no libraries' log lines (JAX's backend discovery,
TorchRL's INFO records), a progress bar that keeps its percentage when the last batch of whole episodes
passes the frame budget, and the lines after the bar on their own."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from torchrl_liir.trainers.trainer import EpisodeTrainer, FrameBar

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "scripts" / "train.py")
RUN_LINES = re.compile(r"^(run directory: |collector: |test: |Fig\. 2: )")  # what the trainer itself prints on stdout
BAR = re.compile(r"\d+/\d+ \[|\d+it \[")  # a render of the progress bar ("609/2000 [" or, without a total, "2501it [")
# Settings that would hide what a normal run prints, or print more than it does.
UNSET = ("JAX_PLATFORMS", "JAX_LOGGING_LEVEL", "RL_LOGGING_LEVEL", "PYTHONWARNINGS", "AUTO_UNWRAP_TRANSFORMED_ENV")


def train(*overrides: str, cwd: Path) -> tuple[str, str]:
    """``scripts/train.py`` with these overrides in a fresh process: its (stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, TRAIN, *overrides], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, proc.stderr


def segments(text: str) -> list[str]:
    """The output as a terminal shows it over time: lines, and each redraw of the bar (after a ``\\r``)."""
    return [s for s in re.split(r"[\r\n]", text) if s.strip()]


def assert_quiet(stdout: str, stderr: str) -> None:
    everything = segments(stdout) + segments(stderr)
    assert not [s for s in everything if "warning" in s.lower()], stdout + stderr
    assert not [s for s in everything if "initialize backend" in s or "libtpu" in s], stdout + stderr
    assert [s for s in segments(stdout) if not RUN_LINES.match(s)] == [], stdout
    assert [s for s in segments(stderr) if not BAR.search(s)] == [], stderr
    last = segments(stderr)[-1]
    count = re.search(r"(\d+)/(\d+) \[", last)
    assert "100%|" in last and count and count[1] == count[2], last


@pytest.mark.slow
def test_pursuit_run_and_its_resume_print_only_their_lines(tmp_path):
    run = tmp_path / "run"
    tiny = ["task.num_envs=8", "experiment.study_episodes=50", "experiment.evaluation_episodes=4",
            "experiment.evaluation_interval_episodes=16"]
    stdout, stderr = train("experiment.total_frames=600", *tiny, f"hydra.run.dir={run}", cwd=tmp_path)
    assert_quiet(stdout, stderr)
    assert "Fig. 2: " in stdout  # the study (which wraps the trainer's env again) ran
    stdout, stderr = train(f"resume={run}", "experiment.total_frames=1200", cwd=tmp_path)
    assert_quiet(stdout, stderr)
    assert re.search(r"\b[1-9]\d*/1200 \[00:00<\?", stderr), stderr  # the bar starts from the frames played


@pytest.mark.slow
def test_smax_run_prints_only_its_lines(tmp_path):
    pytest.importorskip("jaxmarl")
    stdout, stderr = train("task=smax", "task.map=3m", "experiment.total_frames=300", "task.num_envs=4",
                           "experiment.evaluation_episodes=2",
                           "experiment.evaluation_interval_episodes=1000", "model.rnn_hidden=8", "model.num_cells=[16]",
                           f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_quiet(stdout, stderr)


def test_bar_past_the_budget_ends_at_100_percent_with_the_frames_played():
    out = io.StringIO()
    bar = FrameBar(2000, file=out, mininterval=0)
    bar.update(1871)
    assert (bar.n, bar.total) == (1871, 2000)
    bar.update(630)  # the last batch of whole episodes ends 501 frames past the budget
    assert (bar.n, bar.total) == (2501, 2501)
    assert "100%|" in str(bar) and "2501/2501" in str(bar)
    bar.close()
    assert "2501it" not in out.getvalue()


def test_bar_of_a_resumed_run_starts_from_its_frames():
    bar = FrameBar(3000, initial=1249, file=io.StringIO())
    assert (bar.n, bar.total) == (1249, 3000)
    assert "1249/3000" in str(bar)
    bar.close()
    past = FrameBar(1000, initial=1249, file=io.StringIO())  # resumed with a budget already played
    assert (past.n, past.total) == (1249, 1249)
    past.close()


def test_closing_the_trainer_counts_the_last_batch_and_ends_the_bar_line():
    out = io.StringIO()
    bar = FrameBar(200_000, file=out, mininterval=0)
    bar.update(91_552)
    # A stop request leaves TorchRL's loop after the batch is counted, before the bar is updated.
    trainer = SimpleNamespace(progress_bar=True, _pbar=bar, collected_frames=92_174)
    EpisodeTrainer._close_progress_bar(trainer)
    assert bar.n == 92_174 and "92174/200000" in out.getvalue().split("\r")[-1]
    assert out.getvalue().endswith("\n")  # a line printed next (how to resume) starts on its own
