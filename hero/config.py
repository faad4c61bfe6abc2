"""Typed, self-validating configuration.

Every config is a frozen dataclass. ``from_dict`` recurses into nested dataclasses and rejects an unknown
key or a value of the wrong type with an error that names its dotted path (``model.hidden_size: ...``).
``override`` applies dotted ``key=value`` strings, the only ad-hoc override path.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is invalid; the message starts with its dotted path."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where it is lossless (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{path}: {value!r} matches none of {[_type_name(a) for a in args]}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, _path=path)
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        k_tp, v_tp = args if args else (Any, Any)
        return {_coerce(k, k_tp, f"{path}"): _coerce(v, v_tp, f"{path}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {type(value).__name__}")
    return value


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the choice closest to ``word`` (difflib), or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def from_dict(cls: type[T], data: Mapping[str, Any], *, _path: str = "") -> T:
    """Build the dataclass ``cls`` from a plain mapping, recursively and strictly.

    Raises:
        ConfigError: on an unknown key, a wrong type, or a value that ``__post_init__`` rejects; the message
            starts with the dotted path of the offending key.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{_path}.{key}" if _path else str(key)
        if key not in fields:
            raise ConfigError(f"{path}: unknown key ({did_you_mean(str(key), fields)}known: {', '.join(sorted(fields))})")
        kwargs[key] = _coerce(value, hints[key], path)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        if _path and not str(err).startswith(_path):
            raise ConfigError(f"{_path}.{err}") from None
        raise
    except (ValueError, TypeError) as err:
        prefix = f"{_path}: " if _path else ""
        raise ConfigError(f"{prefix}{err}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The plain-data form of a config (tuples become lists), suitable for YAML and MLflow params."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["model.hidden_size=64", "train.lr=1e-4"]`` -> nested dict; values are parsed by `load_yaml`."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{item}: an override must look like dotted.key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: conflicts with another override")
        node[parts[-1]] = load_yaml(raw)
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` (no dot) as a float, as YAML 1.2 does (PyYAML follows 1.1)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Safe YAML in which ``1e-4`` is a float (config files and overrides alike)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of plain mappings: ``extra`` wins; nested mappings merge key by key."""
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def override(cfg: T, *items: str) -> T:
    """A copy of ``cfg`` with dotted ``key=value`` overrides applied, re-validated."""
    return from_dict(type(cfg), merge(to_dict(cfg), parse_overrides(items)))
