"""The docs' configuration reference (docs/guide/configuration.md), generated from the configs and their checks.

    python scripts/config_reference.py            # rewrites the block between the page's config-reference markers
    python scripts/config_reference.py --check    # exit 1 if the page's block differs from what the code says

Every key the trainer reads, with its default (composed from the package's configs), what its check accepts (the
words of its error message) and what it means (the comment beside it in its YAML file).
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from torchrl_liir.algorithms import ALGORITHMS
from torchrl_liir.cli import CONFIG_DIR
from torchrl_liir.config_checks import Check
from torchrl_liir.tasks import TASKS
from torchrl_liir.trainers.config import EXPERIMENT_CHECKS, MODEL_CHECKS, TOP_LEVEL_CHECKS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "configuration.md"
BLOCK = re.compile(r"<!-- config-reference -->\n.*?<!-- /config-reference -->", re.S)
SKIPPED = ("name", "run_name")  # set by choosing the config (task=..., algo=...), not by hand


def yaml_comments(path: Path, prefix: str = "") -> dict[str, str]:
    """``{dotted key: the comment on its line}`` of a YAML config; a group chosen in the defaults list
    (``- preset: none  # ...``) is a top-level key."""
    comments, stack = {}, []
    for line in path.read_text().splitlines():
        choice = re.match(r"^\s*- (\w+): [^#]*#(.*)$", line)
        if choice is not None:
            comments[prefix + choice.group(1)] = choice.group(2).strip()
            continue
        match = re.match(r"^(\s*)([A-Za-z_][\w]*):(.*)$", line)
        if match is None:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        stack = [(i, k) for i, k in stack if i < indent]
        dotted = prefix + ".".join([k for _, k in stack] + [key])
        value, _, comment = rest.partition("#")
        if not value.strip():
            stack.append((indent, key))
        if comment.strip():
            comments[dotted] = comment.strip()
    return comments


def composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=False)


def shown(value) -> str:
    return "`null`" if value is None else f"`{str(value).lower() if isinstance(value, bool) else value}`"


def flattened(checks: dict, prefix: str = "") -> dict[str, Check]:
    out = {}
    for key, check in checks.items():
        out.update(flattened(check, f"{prefix}{key}.") if isinstance(check, dict) else {f"{prefix}{key}": check})
    return out


def lookup(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


def grouped_defaults(defaults: dict[str, object], render: Callable[[object], str] = shown) -> str:
    """``a, b: 1; c: 2`` (one value: the value alone)."""
    by_value = defaultdict(list)
    for owner, value in defaults.items():
        by_value[render(value)].append(owner)
    if len(by_value) == 1:
        return next(iter(by_value))
    return "; ".join(f"{', '.join(owners)}: {value}" for value, owners in by_value.items())


def table(title: str, head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = [f"**{title}**", "", f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def reference() -> str:
    comments = yaml_comments(CONFIG_DIR / "config.yaml")
    default = composed()
    by_task = {name: composed(f"task={name}") for name in TASKS}
    experiment = []
    checks = {**TOP_LEVEL_CHECKS, "experiment": EXPERIMENT_CHECKS, "model": MODEL_CHECKS}
    for key, check in flattened(checks).items():
        values = {task: lookup(config, key) for task, config in by_task.items()} if key != "preset" else \
            {task: config["preset"] for task, config in by_task.items()}
        if len({shown(v) for v in values.values()}) == 1:
            values = {"": lookup(default, key)}
        cell = grouped_defaults(values) if "" not in values else shown(values[""])
        experiment.append((f"`{key}`", cell, check.allowed, comments.get(key, "")))

    task_rows = []
    for name, task in TASKS.items():
        task_comments = yaml_comments(CONFIG_DIR / "task" / f"{name}.yaml")
        for key, check in task().config_checks().items():
            if key not in SKIPPED:
                task_rows.append((f"`{name}`", f"`task.{key}`", shown(by_task[name]["task"][key]), check.allowed,
                             task_comments.get(f"task.{key}", "")))

    algos: dict[str, dict] = defaultdict(dict)
    algo_comments: dict[str, dict[str, str]] = defaultdict(dict)  # a key means what each algorithm's file says
    allowed: dict[str, str] = {}
    for name, algorithm in ALGORITHMS.items():
        config = composed(f"algo={name}")["algo"]
        for key, comment in yaml_comments(CONFIG_DIR / "algo" / f"{name}.yaml").items():
            algo_comments[key][name] = comment
        for key, check in algorithm().config_checks().items():
            if key not in SKIPPED:
                algos[key][name] = config.get(key, getattr(check, "default", None))
                allowed.setdefault(key, check.allowed)
    algo_rows = [(f"`algo.{key}`", ", ".join(defaults) if len(defaults) < len(ALGORITHMS) else "all",
                  grouped_defaults(defaults), allowed[key], grouped_defaults(algo_comments.get(key, {}), str))
                 for key, defaults in algos.items()]

    return "\n\n".join([
        table("The experiment and the model", ("key", "default", "allowed", "meaning"), experiment),
        table("The task (`task=`)", ("task", "key", "default", "allowed", "meaning"), task_rows),
        table("The algorithm (`algo=`; `preset=smac_paper` changes some defaults, above)",
              ("key", "algorithms", "default", "allowed", "meaning"), algo_rows),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the page's block is not what the code says")
    args = parser.parse_args()
    text = PAGE.read_text()
    if BLOCK.search(text) is None:
        sys.exit(f"error: {PAGE} has no <!-- config-reference --> block")
    block = f"<!-- config-reference -->\n{reference()}\n<!-- /config-reference -->"
    if args.check:
        if BLOCK.search(text).group(0) != block:
            sys.exit(f"error: {PAGE}'s configuration reference differs from the code: "
                     "python scripts/config_reference.py rewrites it")
        return
    PAGE.write_text(BLOCK.sub(lambda _: block, text))
    print(f"wrote the configuration reference into {PAGE}")


if __name__ == "__main__":
    main()
