"""The command line: `key=value` overrides of a config dataclass, with `--help` from its fields.

Tasks, the viewer and the benchmarks all parse their arguments here. `--key value` and
`--key=value` are accepted as spellings of `key=value`.
"""

import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from ksim.config import field_meta

C = TypeVar("C")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class CLIError(ValueError):
    """A bad command line; its message is one line naming the key."""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "|".join(str(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        return f"{_type_name(args[0])},..." if args[-1] is Ellipsis else ",".join(_type_name(a) for a in args)
    return "none" if tp is type(None) else getattr(tp, "__name__", str(tp))


def parse_value(key: str, text: str, tp: Any) -> Any:
    """Convert `text` to the field type `tp`, or raise a CLIError naming `key` and the allowed values."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if type(None) in options and text.lower() in ("none", "null", ""):
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return parse_value(key, text, option)
            except CLIError:
                continue
        raise CLIError(f"{key}={text!r}: expected {_type_name(tp)}")
    if origin is Literal:
        allowed = get_args(tp)
        if text not in allowed:
            raise CLIError(f"{key}={text!r}: must be one of {', '.join(map(str, allowed))}")
        return text
    if origin is tuple:
        args, parts = get_args(tp), [part.strip() for part in text.split(",") if part.strip()]
        if args[-1] is Ellipsis:
            return tuple(parse_value(key, part, args[0]) for part in parts)
        if len(parts) != len(args):
            raise CLIError(f"{key}={text!r}: expected {len(args)} comma-separated values ({_type_name(tp)})")
        return tuple(parse_value(key, part, item) for part, item in zip(parts, args, strict=True))
    if tp is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise CLIError(f"{key}={text!r}: expected true or false")
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            raise CLIError(f"{key}={text!r}: expected {tp.__name__}") from None
    if tp is str:
        return text
    raise CLIError(f"{key}: fields of type {tp} cannot be set from the command line")


def field_types(cls: type) -> dict[str, Any]:
    """Each init field of a config dataclass and its resolved type."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def help_text(cls: type, prog: str) -> str:
    """Every field with its type, default and meaning."""
    lines = [f"usage: {prog} [key=value ...]", "", (cls.__doc__ or "").strip(), "", "fields:"]
    types_ = field_types(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else "(required)"
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        lines.append(f"  {f.name}={default}  [{_type_name(types_[f.name])}]")
        lines.append(f"      {field_meta(cls, f.name).get('help', '')}")
    return "\n".join(lines)


def parse_overrides(cls: type, argv: list[str]) -> dict[str, Any]:
    """`key=value` arguments as typed field values; unknown keys and bad values raise CLIError."""
    types_ = field_types(cls)
    values: dict[str, Any] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg.startswith("--") and "=" not in arg and args:
            arg = f"{arg}={args.pop(0)}"
        key, sep, text = arg.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep:
            raise CLIError(f"{arg!r}: arguments are key=value (see --help)")
        if key not in types_:
            close = [k for k in types_ if key in k or k in key]
            hint = f"; did you mean {', '.join(close[:3])}?" if close else "; see --help for the fields"
            raise CLIError(f"unknown key {key!r}{hint}")
        values[key] = parse_value(key, text, types_[key])
    return values


def build(cls: type[C], values: dict[str, Any]) -> C:
    """The config from field values, validated (a ValueError from validation becomes a CLIError)."""
    try:
        config = cls(**values)
        validate = getattr(config, "validate", None)
        if validate is not None:
            validate()
    except (TypeError, ValueError) as err:
        raise CLIError(str(err)) from None
    return config


def command_line(
    cls: type[C], argv: list[str], prog: str, resolve: Callable[[type[C], dict[str, Any]], C] = build
) -> C:
    """The config from `argv`; `--help` prints the fields and exits 0, a mistake exits 2 with one line."""
    if any(a in ("-h", "--help", "help") for a in argv):
        print(help_text(cls, prog))
        raise SystemExit(0)
    try:
        return resolve(cls, parse_overrides(cls, argv))
    except (CLIError, ValueError, FileNotFoundError) as err:
        exit_on_error(str(err))


def exit_on_error(message: str, code: int = 2) -> typing.NoReturn:
    """Print a one-line error and exit with `code` (2, as argument parsers do, for a bad command line)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)
