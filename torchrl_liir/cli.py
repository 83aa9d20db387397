"""The trainer's command line: ``torchrl-liir-train key=value ...`` (``python -m torchrl_liir.cli``,
``python scripts/train.py``), hydra over the configs in ``torchrl_liir/conf/``.

    torchrl-liir-train                          # LIIR on 1D Pursuit
    torchrl-liir-train algo=central_v seed=3    # a baseline
    torchrl-liir-train task=smax task.map=3m    # LIIR on SMAX battles
    torchrl-liir-train resume=runs/<run>        # continue a run from its latest checkpoint
    torchrl-liir-train -m seed=0,1,2 algo=liir,central_v hydra/launcher=joblib   # a sweep

The command line is checked before hydra starts (so before any run directory exists and before JAX is
imported): a bad override, an unknown config group option or key, a value the checks refuse or a run that
cannot be resumed ends the command with one line, ``error: ...``, and exit code 2. Every run of a sweep is
checked the same way before the first one starts.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parent / "conf"
CONFIG_NAME = "config"
MULTIRUN_FLAGS = ("-m", "--multirun")
# How the command was called, for the resume hint of an interrupted run.
PROG = {"name": "torchrl-liir-train"}


class UsageError(ValueError):
    """The command line cannot start a run; the message (one line) says why."""


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def compose_config(overrides: list[str]) -> DictConfig:
    """The config hydra composes from ``overrides``; hydra's errors become a one-line :class:`UsageError`, and an
    override of a key the config lacks is checked as an added one (``+key=value``), so that the project's checks
    name it (with the closest known key)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException

    from torchrl_liir.trainers.config import moved_key
    from torchrl_liir.trainers.run_directory import register_resolvers

    register_resolvers()
    for override in overrides:
        key, _, value = override.partition("=")
        moved = moved_key(key.lstrip("+~"))
        if moved is not None:
            raise UsageError(f"{key.lstrip('+~')}: moved to {moved} ({moved}={value})")
    overrides = list(overrides)
    for _ in range(len(overrides) + 1):
        try:
            with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="torchrl_liir"):
                return compose(config_name=CONFIG_NAME, overrides=overrides)
        except MissingConfigException as err:
            group, _, option = (err.missing_cfg_file or "").rpartition("/")
            if group and err.options:
                raise UsageError(f"{group}={option!r}: must be one of {', '.join(err.options)}") from None
            raise UsageError(_first_line(err)) from None
        except ConfigCompositionException as err:
            missing = re.match(r"Could not override '([^']+)'", str(err))
            if missing is None or "is not in struct" not in f"{err} {err.__cause__}":
                raise UsageError(_first_line(err)) from None
            key = missing.group(1)
            index = next((i for i, o in enumerate(overrides) if o.split("=", 1)[0] == key), None)
            if index is None or key.startswith("hydra."):
                raise UsageError(f"{key}: unknown key") from None
            overrides[index] = "+" + overrides[index]
        except (HydraException, ValueError) as err:
            raise UsageError(_first_line(err)) from None
    raise UsageError(f"cannot compose the configuration from {' '.join(overrides)}")


def resumed_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The saved config of the run ``cfg.resume`` names, with the command line's resumable ``overrides``; refuses a
    path that holds no run and a budget the run has already played."""
    from torchrl_liir.trainers.config import check_resume_overrides, load_saved_config
    from torchrl_liir.trainers.run_directory import claim_run_dir, frames_played

    run_dir = Path(cfg.resume)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"resume={cfg.resume}: a file, not a run directory")
    if not run_dir.exists():
        raise UsageError(f"resume={cfg.resume}: no such run directory")
    saved = claim_run_dir(run_dir, resume=True) / "config.yaml"
    keys = [o.split("=", 1)[0] for o in overrides]
    check_resume_overrides(keys)
    resumed = load_saved_config(saved)
    for key in keys:
        OmegaConf.update(resumed, key.lstrip("+~"), OmegaConf.select(cfg, key.lstrip("+~")), force_add=True)
    played, total = frames_played(run_dir), resumed.experiment.total_frames
    if played is not None and isinstance(total, int) and total <= played:
        raise UsageError(f"experiment.total_frames={total}: the run in {run_dir} has already played {played} "
                         "frames; resume with a larger experiment.total_frames to train for longer")
    return resumed


def check_overrides(overrides: list[str]) -> None:
    """Everything the run of ``overrides`` would check before building anything (hydra's composition, the
    project's config checks, the run to resume), without creating a run directory."""
    from torchrl_liir.trainers.config import check_config

    cfg = compose_config(overrides)
    check_config(resumed_config(cfg, overrides) if cfg.get("resume") is not None else cfg)


def sweep_runs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The overrides of each run of a sweep (hydra's basic sweeper: every combination), or of the one run."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for override in overrides:
        try:
            parsed.extend(parser.parse_overrides([override]))
        except HydraException as err:
            lines = [line for line in str(err).splitlines()[1:2] if line.strip()]
            raise UsageError(f"{override!r}: not an override of the form key=value"
                             + (f" ({lines[0].strip()})" if lines else "")) from None
        if not parsed[-1].key_or_group:
            raise UsageError(f"{override!r}: not an override of the form key=value (no key)")
    if not multirun or not any(o.is_sweep_override() for o in parsed):
        return [overrides]
    try:
        return BasicSweeper.split_arguments(parsed, None)[0]
    except HydraException:  # a sweep the basic sweeper does not expand: each run checks itself
        return []


def check_command_line(args: list[str]) -> None:
    """Checks every run the command line ``args`` would start (see :func:`check_overrides`); raises
    :class:`UsageError` or the project's one-line errors."""
    overrides = [a for a in args if a not in MULTIRUN_FLAGS]
    runs = list({tuple(run): run for run in sweep_runs(overrides, multirun=len(overrides) != len(args))}.values())
    for run in runs:
        try:
            check_overrides(run)
        except _one_line_errors() as err:
            if len(runs) == 1:
                raise
            raise type(err)(f"{err} (in the sweep's run {' '.join(run)})") from None


def _one_line_errors() -> tuple[type[BaseException], ...]:
    from torchrl_liir.config_checks import ConfigError
    from torchrl_liir.trainers.run_directory import RunDirectoryError

    return UsageError, ConfigError, RunDirectoryError, ImportError


@hydra.main(config_path=str(CONFIG_DIR), config_name=CONFIG_NAME, version_base="1.3")
def run(cfg: DictConfig) -> None:
    """Hydra's task: trains one configured run or population (one job of a sweep) into its run directory; a
    population whose member diverged exits with 1 after the others have finished."""
    from hydra.core.hydra_config import HydraConfig

    from torchrl_liir.trainers import CheckpointFileError, NonFiniteError, RunInterrupted, train
    from torchrl_liir.trainers.population import print_summary

    run_dir = None
    try:
        if cfg.resume is not None:
            cfg, run_dir, resume = resumed_config(cfg, HydraConfig.get().overrides.task), Path(cfg.resume), True
        else:
            run_dir, resume = Path(HydraConfig.get().runtime.output_dir), False
        print(f"run directory: {run_dir}", flush=True)
        summary = train(cfg, run_dir, resume=resume)
    except (*_one_line_errors(), CheckpointFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # a read-only run directory, a full disk: the earlier checkpoints are intact
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}; the run's checkpoints before it are intact", file=sys.stderr)
        sys.exit(1)
    except NonFiniteError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except RunInterrupted as err:
        hint = f"; resume with: {PROG['name']} resume={run_dir}" if err.resumable else "; nothing to resume"
        print(f"{err}{hint}", file=sys.stderr)
        sys.exit(err.exit_code)
    print_summary(summary)
    if "fig2" in summary:
        print(f"Fig. 2: AUROC(Good vs Bad r_in) = {summary['fig2']['auroc']}")
    diverged = {name: member for name, member in summary.get("members", {}).items()
                if member["status"] == "non_finite"}
    for name, member in diverged.items():
        print(f"error: {name}: {member['error']}", file=sys.stderr)
    if diverged:
        sys.exit(1)


def main(prog: str = "torchrl-liir-train") -> None:
    """The command line (``prog``: how it was called): checks it (one line and exit code 2 on an error), then
    hands it to hydra. Hydra's own flags (``--help``, ``--cfg job``, ``--info``, ...) go to hydra unchecked."""
    PROG["name"] = prog
    args = sys.argv[1:]
    if all(a in MULTIRUN_FLAGS or not a.startswith("-") for a in args):
        try:
            check_command_line(args)
        except _one_line_errors() as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
    run()


if __name__ == "__main__":
    main("python -m torchrl_liir.cli")
