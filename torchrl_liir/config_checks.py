"""Checks of configuration values: each bad value fails at once, in one line naming the key, the value and what
is allowed. Algorithms, tasks and the experiment each declare the checks of the keys they read (their
``config_checks()``: a dict of key to :class:`Check`)."""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from omegaconf import DictConfig, ListConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key, the value and what is allowed."""


def fail(key: str, value: Any, reason: str) -> NoReturn:
    """Raises the :class:`ConfigError` ``key=value: reason`` (for a :class:`Check` of your own)."""
    raise ConfigError(f"{key}={value!r}: {reason}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Check:
    """One key's rule; ``__call__`` raises :class:`ConfigError` when the value breaks it. ``allowed`` says what the
    rule accepts, in the words of its error message (the configuration reference of the docs prints it)."""

    @property
    def allowed(self) -> str:
        raise NotImplementedError

    def __call__(self, key: str, value: Any) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Integer(Check):
    """An integer in ``[low, high]`` (either bound optional; ``null`` allowed when ``nullable``)."""

    low: int | None = None
    high: int | None = None
    nullable: bool = False

    @property
    def allowed(self) -> str:
        return f"an integer{self._range()}" + (", or null" if self.nullable else "")

    def __call__(self, key: str, value: Any) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            fail(key, value, f"must be an integer{self._range()}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            fail(key, value, f"must be an integer{self._range()}")

    def _range(self) -> str:
        if self.low is not None and self.high is not None:
            return f" in [{self.low}, {self.high}]"
        if self.low is not None:
            return f" >= {self.low}"
        return f" <= {self.high}" if self.high is not None else ""


@dataclass(frozen=True)
class Real(Check):
    """A finite number ``> low`` (``strict``) or ``>= low``, and ``<= high``."""

    low: float | None = None
    high: float | None = None
    strict: bool = False

    @property
    def allowed(self) -> str:
        return f"a number{self._range()}"

    def __call__(self, key: str, value: Any) -> None:
        if not _is_number(value) or not math.isfinite(value):
            fail(key, value, f"must be a finite number{self._range()}")
        too_low = self.low is not None and (value <= self.low if self.strict else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            fail(key, value, f"must be a number{self._range()}")

    def _range(self) -> str:
        low = "" if self.low is None else f"{'>' if self.strict else '>='} {self.low:g}"
        high = "" if self.high is None else f"<= {self.high:g}"
        return f" {' and '.join(part for part in (low, high) if part)}" if low or high else ""


#: A number > 0.
POSITIVE = Real(0.0, strict=True)
#: A number >= 0.
NON_NEGATIVE = Real(0.0)
#: A number in [0, 1].
UNIT = Real(0.0, 1.0)
#: An integer >= 1.
COUNT = Integer(1)


@dataclass(frozen=True)
class Choice(Check):
    """One of ``options``."""

    options: tuple[Any, ...]

    @property
    def allowed(self) -> str:
        return f"one of {', '.join('null' if o is None else str(o) for o in self.options)}"

    def __call__(self, key: str, value: Any) -> None:
        if isinstance(value, bool) or value not in self.options:
            fail(key, value, f"must be {self.allowed}")


@dataclass(frozen=True)
class Boolean(Check):
    """``true`` or ``false`` (not 0 or 1, nor a string)."""

    allowed = "true or false"

    def __call__(self, key: str, value: Any) -> None:
        if not isinstance(value, bool):
            fail(key, value, f"must be {self.allowed}")


@dataclass(frozen=True)
class Text(Check):
    """A non-empty string (or ``null`` when ``nullable``)."""

    what: str = "a string"
    nullable: bool = False

    @property
    def allowed(self) -> str:
        return self.what + (", or null" if self.nullable else "")

    def __call__(self, key: str, value: Any) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, str) or not value:
            fail(key, value, f"must be {self.allowed}")


@dataclass(frozen=True)
class Sizes(Check):
    """A non-empty list of layer sizes, each an integer >= 1."""

    allowed = "a list of layer sizes, e.g. [64, 64]"

    def __call__(self, key: str, value: Any) -> None:
        items = list(value) if isinstance(value, (list, tuple, ListConfig)) else None
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items):
            fail(key, value if items is None else items, f"must be {self.allowed}")


@dataclass(frozen=True)
class Added(Check):
    """A key added after some runs were saved: checked by ``check`` when present; a saved section without it
    reads ``default`` (:func:`with_added_defaults`), the behaviour those runs had."""

    check: Check
    default: Any

    @property
    def allowed(self) -> str:
        return self.check.allowed

    def __call__(self, key: str, value: Any) -> None:
        self.check(key, value)


def with_added_defaults(section: DictConfig, checks: Mapping[str, Check]) -> DictConfig:
    """``section`` with the default of every :class:`Added` key it lacks (a run saved before the key existed)."""
    missing = {key: check.default for key, check in checks.items() if isinstance(check, Added) and key not in section}
    # merged onto the defaults, not into ``section``: a struct section (hydra's composed config) refuses new keys
    return OmegaConf.merge(OmegaConf.create(missing), section) if missing else section


def check_section(section: Mapping | DictConfig | None, prefix: str, checks: Mapping[str, Check]) -> None:
    """Checks that every key of ``section`` is known, present and valid by its check in ``checks`` (key to
    :class:`Check`); raises :class:`ConfigError` at the first that is not. ``prefix`` (e.g. ``"task."``) names the
    section in the messages.

    Examples:
        >>> from torchrl_liir.config_checks import COUNT, Boolean, ConfigError, Real, check_section
        >>> checks = {"episodes": COUNT, "shuffle": Boolean(), "rate": Real(0.0, 1.0)}
        >>> check_section({"episodes": 10, "shuffle": False, "rate": 0.5}, "algo.", checks)
        >>> for section in ({"episodes": 0, "shuffle": False, "rate": 0.5}, {"episodes": 10, "shufle": False}):
        ...     try:
        ...         check_section(section, "algo.", checks)
        ...     except ConfigError as err:
        ...         print(err)
        algo.episodes=0: must be an integer >= 1
        algo.shufle=False: unknown key (did you mean algo.shuffle?); known: episodes, rate, shuffle
    """
    name = prefix.rstrip(".")
    if not isinstance(section, (Mapping, DictConfig)):
        fail(name, section, "must be a mapping of keys to values")
    for key in section:
        if key not in checks:
            close = difflib.get_close_matches(str(key), list(checks), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            fail(f"{prefix}{key}", section[key], f"unknown key{hint}; known: {', '.join(sorted(checks))}")
    for key, check in checks.items():
        if key not in section:
            if isinstance(check, Added):
                continue
            fail(f"{prefix}{key}", None, "missing from the configuration")
        check(f"{prefix}{key}", section[key])


__all__ = ["COUNT", "NON_NEGATIVE", "POSITIVE", "UNIT", "Boolean", "Check", "Choice", "ConfigError", "Integer", "Real",
           "Sizes", "Text", "check_section", "fail"]
