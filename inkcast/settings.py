"""One source of configuration: a dataclass filled from flags, then ``INKCAST_*``, then defaults.

Each configuration class is a plain dataclass whose fields carry their help text in
``metadata``; this module turns such a class into argparse options and back, and prints
a filled instance without its secrets.

    @dataclass
    class Config:
        port: int = setting(8080, "TCP port to listen on")
        token: str = setting("", "device token", secret=True)

Field ``port`` is set by ``--port`` or ``INKCAST_PORT``; a flag wins over the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, TypeVar, get_type_hints

T = TypeVar("T")

ENV_PREFIX = "INKCAST_"


def setting(default: Any, help: str, *, secret: bool = False, flag: str | None = None,
            choices: list[str] | None = None, env: str | None = None) -> Any:
    """A dataclass field described for the command line and the environment."""
    meta = {"help": help, "secret": secret, "flag": flag, "choices": choices, "env": env}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def env_name(field: dataclasses.Field) -> str:
    return field.metadata.get("env") or ENV_PREFIX + field.name.upper()


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _parse(kind: Any, text: str) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"not a boolean: {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"not a whole number: {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
    if kind is Path or kind == (Path | None):
        return Path(text) if text else None
    if kind == list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _shown(value: Any) -> str:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return ",".join(value) or "none"
    return repr(value)


def _argparse_type(kind: Any):
    def parse(text: str) -> Any:
        try:
            return _parse(kind, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per field of ``cls``; unset options stay ``None`` so defaults can apply."""
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.metadata.get("help") is None:
            continue
        kind = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        shown = "(secret)" if field.metadata.get("secret") else _shown(default)
        choices = field.metadata.get("choices")
        one_of = f"; one of {', '.join(c for c in choices if c)}" if choices else ""
        help_text = f"{field.metadata['help']} [env {env_name(field)}{one_of}; default {shown}]"
        dest = field.name
        if kind is bool:
            parser.add_argument(flag_name(field), dest=dest, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag_name(field), dest=dest, default=None, metavar=field.name.upper(),
                                type=_argparse_type(kind), choices=choices, help=help_text)


def from_sources(cls: type[T], args: argparse.Namespace | None = None,
                 environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """Fill ``cls``: explicit overrides, then flags, then environment, then defaults."""
    environ = os.environ if environ is None else environ
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in overrides:
            values[field.name] = overrides[field.name]
            continue
        from_flag = getattr(args, field.name, None) if args is not None else None
        if from_flag is not None:
            values[field.name] = from_flag
            continue
        text = environ.get(env_name(field))
        if text is not None:
            try:
                values[field.name] = _parse(hints[field.name], text)
            except ValueError as exc:
                raise SystemExit(f"inkcast: {env_name(field)}={text!r}: {exc}") from None
            choices = field.metadata.get("choices")
            if choices and values[field.name] not in choices:
                raise SystemExit(f"inkcast: {env_name(field)} must be one of {', '.join(choices)}")
    try:
        return cls(**values)
    except ValueError as exc:  # a config's own check (__post_init__) of values that parse but make no sense
        raise SystemExit(f"inkcast: {exc}") from None


def flag_of(cls: type, name: str) -> str:
    """How a user sets field ``name`` of ``cls``: for messages that name the flag, not the field."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f"{flag_name(field)} (or {env_name(field)})"


def check(condition: bool, cls: type, name: str, must: str) -> None:
    if not condition:
        raise ValueError(f"{flag_of(cls, name)} {must}")


def describe(config: Any) -> str:
    """One line per setting, secrets shown only as set or unset."""
    lines = [f"{type(config).__name__}:"]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.metadata.get("secret"):
            value = "(set)" if value else "(unset)"
        lines.append(f"  {field.name} = {value}")
    return "\n".join(lines)
