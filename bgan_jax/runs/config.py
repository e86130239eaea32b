"""Typed run configs: one recursive ``from_dict``, ``--set`` overrides, shared loop fields.

Every model's run config is a frozen dataclass that extends ``LoopConfig`` (the
budget and the log / eval / checkpoint cadence, one vocabulary for every model)
and may nest further dataclasses (``model``, ``windows``). ``from_dict`` is the
inverse of ``dataclasses.asdict`` through JSON: lists become tuples, nested
dicts become their dataclass, and an unknown or wrongly typed field is a
``ConfigError`` naming it.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Dict, List, Sequence, Type, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config field that does not exist, or a value of the wrong type or range."""


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """The fields every training run shares (``runs.loop.train_loop`` reads them)."""

    num_steps: int = 600
    """Optimiser steps: the training budget of every model."""
    seed: int = 0
    log_every: int = 10
    """Steps between metrics.jsonl lines (and between reads of the finite flag)."""
    eval_every: int = 100
    """Steps between validation passes (runs with a validation split)."""
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    """Latest checkpoints kept in ``checkpoints/``; ``--resume`` falls back to an older
    one when the newest cannot be restored."""

    def __post_init__(self):
        for name in ("num_steps", "log_every", "eval_every", "checkpoint_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)


def _check(value, hint, key: str):
    """``value`` converted to ``hint`` (int -> float, list -> tuple, dict -> dataclass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _check(value, options[0], key) if len(options) == 1 else value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected an object of {hint.__name__} fields, got "
                              f"{type(value).__name__}")
        return from_dict(hint, value, key)
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args and args[-1] is Ellipsis or len(args) == 1 else None
        return tuple(_check(v, inner, f"{key}[{i}]") if inner else v for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def from_dict(cls: Type[T], d: Dict[str, Any], where: str = "config") -> T:
    """``cls`` from a JSON dict; nested dataclasses recurse, unknown keys are an error."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; fields here: {sorted(names)}")
    values = {k: _check(v, hints[k], f"{where}.{k}" if where != "config" else k)
              for k, v in d.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def parse_value(text: str):
    """'true' / 'none' / JSON numbers and lists, else the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(value) if isinstance(value, list) else value


def apply_overrides(config: T, overrides: Sequence[str]) -> T:
    """``key=value`` overrides of any (nested, dot-separated) field, type-checked as
    ``from_dict`` checks a saved config."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        config = _set(config, key.strip().split("."), parse_value(text), key.strip())
    return config


def _set(obj, path: List[str], value, full_key: str):
    names = {f.name for f in dataclasses.fields(obj)}
    if path[0] not in names:
        raise ConfigError(f"unknown config field {full_key!r}; fields here: {sorted(names)}")
    current = getattr(obj, path[0])
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"{full_key!r}: {path[0]} has no sub-fields")
        value = _set(current, path[1:], value, full_key)
    else:
        value = _check(value, typing.get_type_hints(type(obj))[path[0]], full_key)
    try:
        return dataclasses.replace(obj, **{path[0]: value})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{full_key}: {err}") from None
