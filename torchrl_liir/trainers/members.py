"""The runs one configuration names: a solo run, or a population of seeds × variants trained in one process.

``seeds=10`` trains seeds ``seed .. seed+9``, ``seeds=[0,3,7]`` those three;
``variants={liir:{},lambda0:{algo.lambda_in:0}}`` trains every seed once per variant, each variant's keys
(``algo.*`` and ``model.*`` only) over the shared config. A member's config is exactly a solo run's (``seeds`` and
``variants`` null), and so is its run directory. No torch is imported here: the command line checks populations
before anything is built.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from torchrl_liir.config_checks import Check, ConfigError, fail

SEED_RANGE = (0, 2**32 - 1)
VARIANT_SECTIONS = ("algo.", "model.")
MEMBER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class MemberConfig:
    """One run of a configuration: ``name`` (``None`` for a solo run, whose run directory is the run's own; else
    its subdirectory, e.g. ``lambda0_seed3``) and its solo config."""

    name: str | None
    cfg: DictConfig


class Seeds(Check):
    """``null`` (the one ``seed``), a count ``N`` (seeds ``seed .. seed+N-1``) or a list of distinct seeds."""

    allowed = "null, a count N (seeds seed..seed+N-1) or a list of distinct seeds, e.g. [0,3,7]"

    def __call__(self, key: str, value) -> None:
        if value is None:
            return
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                fail(key, value, f"must be {self.allowed}")
            return
        items = list(value) if isinstance(value, (list, tuple, ListConfig)) else None
        valid = items and all(isinstance(s, int) and not isinstance(s, bool) and SEED_RANGE[0] <= s <= SEED_RANGE[1]
                              for s in items)
        if not valid or len(set(items)) != len(items):
            fail(key, value if items is None else items, f"must be {self.allowed}")


class Variants(Check):
    """``null``, or a mapping of variant names to the ``algo.*`` / ``model.*`` keys they change."""

    allowed = "null or a mapping of names to algo.* / model.* keys, e.g. {liir:{},lambda0:{algo.lambda_in:0}}"

    def __call__(self, key: str, value) -> None:
        if value is None:
            return
        if not isinstance(value, (dict, DictConfig)) or not value:
            fail(key, value, f"must be {self.allowed}")
        for name, overrides in value.items():
            if not isinstance(name, str) or not MEMBER_NAME.fullmatch(name):
                fail(key, name, "variant names are letters, digits and _ . + - (a run directory's name)")
            if overrides is None:
                continue
            if not isinstance(overrides, (dict, DictConfig)):
                fail(f"{key}.{name}", overrides, "must be a mapping of algo.* / model.* keys to values")
            for path in overrides:
                if not str(path).startswith(VARIANT_SECTIONS) or path == "algo.name":
                    fail(f"{key}.{name}.{path}", overrides[path],
                         "a variant changes algo.* and model.* keys only (not algo.name: one algorithm per population)")


def is_population(cfg: DictConfig) -> bool:
    """Whether ``cfg`` names several runs (``seeds`` or ``variants`` set), each in a subdirectory."""
    return cfg.get("seeds") is not None or cfg.get("variants") is not None


def population_seeds(cfg: DictConfig) -> list[int]:
    """The seeds of every variant: ``seeds`` (a count from ``seed``, or a list), else ``[seed]``."""
    seeds = cfg.get("seeds")
    if seeds is None:
        return [int(cfg.seed)]
    if isinstance(seeds, int):
        return list(range(int(cfg.seed), int(cfg.seed) + seeds))
    return [int(seed) for seed in seeds]


def member_configs(cfg: DictConfig) -> list[MemberConfig]:
    """The runs ``cfg`` names, variant by variant, seed by seed; raises :class:`ConfigError` for a variant key the
    config lacks."""
    if not is_population(cfg):
        return [MemberConfig(None, cfg)]
    variants = cfg.get("variants") or {"": {}}
    members = []
    for variant, overrides in variants.items():
        for seed in population_seeds(cfg):
            member = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
            member.seeds, member.variants, member.seed = None, None, seed
            for path, value in (overrides or {}).items():
                absent = object()
                if OmegaConf.select(member, path, default=absent) is absent:
                    raise ConfigError(f"variants.{variant}.{path}: unknown key")
                OmegaConf.update(member, path, value, merge=False)
            members.append(MemberConfig(f"{variant}_seed{seed}" if variant else f"seed{seed}", member))
    return members


def population_label(seed: int, seeds: int | list[int] | None) -> str:
    """How a run directory names the seeds it holds: ``seed3``, ``seeds0-9`` or ``seeds0_3_7``."""
    if seeds is None:
        return f"seed{seed}"
    if isinstance(seeds, int):
        return f"seeds{seed}-{seed + seeds - 1}" if seeds > 1 else f"seeds{seed}"
    return "seeds" + "_".join(map(str, seeds))
