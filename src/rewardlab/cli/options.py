"""Generate typer commands from config dataclasses (TRL-style): every field becomes a flag,
``--config file.yaml`` supplies any of them, and explicit flags override the file.

Fields document themselves with ``field(metadata={"help": ...})``. Precedence:
dataclass default < YAML file < command-line flag.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
import yaml


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    """Strip ``X | None`` to ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


def _cli_type(tp: Any) -> Any:
    tp = _base_type(tp)
    if typing.get_origin(tp) in (list, tuple):
        return str  # comma-separated
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return str
    return tp if tp in (int, float, str, bool, Path) else str


def _parse(value: Any, tp: Any) -> Any:
    tp = _base_type(tp)
    origin = typing.get_origin(tp)
    if origin in (list, tuple) and isinstance(value, str):
        inner = (typing.get_args(tp) or (str,))[0]
        items = [inner(v.strip()) for v in value.split(",") if v.strip()]
        return items if origin is list else tuple(items)
    if isinstance(tp, type) and issubclass(tp, enum.Enum) and isinstance(value, str):
        return tp(value)
    if (tp is dict or origin is dict) and isinstance(value, str):
        try:
            return json.loads(value)  # a mapping flag takes JSON
        except json.JSONDecodeError as e:
            raise ValueError(f"expected a JSON object, got {value!r} ({e})") from None
    if tp is Path and isinstance(value, str):
        return Path(value)
    return value


def _is_option(f: dataclasses.Field) -> bool:
    """Fields become options unless ``init=False`` or ``metadata={"cli": False}`` (set by the library)."""
    return f.init and f.metadata.get("cli", True)


def build_config(cls: type, file_values: dict[str, Any], flags: dict[str, Any]) -> Any:
    """Instantiate ``cls`` from YAML values and explicit (non-None) flag values."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not _is_option(f):
            continue
        if flags.get(f.name) is not None:
            kwargs[f.name] = _parse(flags[f.name], hints[f.name])
        elif f.name in file_values:
            kwargs[f.name] = _parse(file_values[f.name], hints[f.name])
    return cls(**kwargs)


def _read_yaml(path: Path | None, known: set[str]) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise typer.BadParameter(f"{path}: {e}", param_hint="--config") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a mapping of option: value", param_hint="--config")
    flat: dict[str, Any] = {}
    for k, v in data.items():  # allow one level of sections: {model: {...}, train: {...}}
        if isinstance(v, dict) and k not in known:
            flat.update(v)
        else:
            flat[k] = v
    unknown = sorted(set(flat) - known)
    if unknown:
        raise typer.BadParameter(f"{path}: unknown option(s) {unknown}", param_hint="--config")
    return flat


def _field_parameter(f: dataclasses.Field, hint: Any, panel: str) -> inspect.Parameter:
    """The keyword-only typer option of one config field: ``--field-name`` (``--x/--no-x`` for a
    bool), its help with the default shown, grouped under the config class's panel."""
    default = f.default if f.default is not dataclasses.MISSING else None
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = f.default_factory()  # type: ignore[misc]
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, list | tuple):
        default = ",".join(map(str, default))
    show = f" (default: {default})" if default not in (None, "") else ""
    tp = _cli_type(hint)
    decls = [f"{_flag(f.name)}/--no-{f.name.replace('_', '-')}"] if tp is bool else [_flag(f.name)]
    opt = typer.Option(
        None, *decls, help=f.metadata.get("help", "") + show, show_default=False, rich_help_panel=panel
    )
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=tp | None)


def config_command(app: typer.Typer, name: str, *configs: type, **typer_kwargs: Any) -> Callable:
    """Register ``fn(*config_instances, **extra)`` as command ``name``.

    Each dataclass field becomes ``--field-name``; ``fn``'s own keyword parameters (typer
    ``Option``/``Argument`` defaults) are kept as extra flags.
    """

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        extra = list(sig.parameters.values())[len(configs) :]
        params: list[inspect.Parameter] = []
        owners: dict[str, type] = {}
        for cls in configs:
            hints = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                if not _is_option(f):
                    continue
                if f.name in owners or f.name in sig.parameters:
                    raise ValueError(f"option {f.name!r} is defined twice for command {name!r}")
                owners[f.name] = cls
                params.append(_field_parameter(f, hints[f.name], cls.__name__))
        cfg_opt = typer.Option(None, "--config", help="YAML file with any of these options; flags win.")
        params.append(
            inspect.Parameter(
                "config", inspect.Parameter.KEYWORD_ONLY, default=cfg_opt, annotation=Path | None
            )
        )
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in extra]

        def wrapper(**kwargs: Any) -> Any:
            file_values = _read_yaml(kwargs.pop("config"), set(owners))
            extras = {p.name: kwargs.pop(p.name) for p in extra}
            try:
                instances = [build_config(cls, file_values, kwargs) for cls in configs]
            except (ValueError, TypeError) as e:
                raise typer.BadParameter(str(e)) from None
            return fn(*instances, **extras)

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__doc__ = fn.__doc__
        wrapper.__name__ = fn.__name__
        app.command(name, **typer_kwargs)(wrapper)
        return fn

    return deco
