"""One dataclass field = one option: its default, its type, its help, its command-line flag and its key in
a configuration file (as Tevatron's `HfArgumentParser` does, on plain dataclasses).

A trainer's configuration class (`RerankerConfig`, `RetrieverConfig`, ...) is the single source of its
defaults. From it come the flags of its sub-command (`--learning-rate` for `learning_rate`; the field's
docstring is the help), the keys `--config FILE` and `--set key=value` accept, and the checks every value
passes before any work starts (type, `Literal` choices, the class's own range checks), each naming the
file or flag it came from.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import math
import re
import textwrap
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml

from core.errors import TandemError

Range = tuple[Callable[[float], bool], str]
"""(accepts the value, what it must be): a numeric option's range."""


def at_least(low: float) -> Range:
    return (lambda value: value >= low), f"at least {low:g}"


POSITIVE: Range = ((lambda value: value > 0), "positive")
UNIT: Range = ((lambda value: 0 <= value <= 1), "in [0, 1]")
BELOW_ONE: Range = ((lambda value: 0 <= value < 1), "in [0, 1)")


def out_of_range(cls: type, name: str, value: Any) -> str | None:
    """What is wrong with `value` for field `name` under the class's `RANGES` (None: nothing)."""
    ranges = getattr(cls, "RANGES", {})
    if name not in ranges or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    accepts, wanted = ranges[name]
    return None if accepts(value) else f"must be {wanted}, not {value!r}"


def check_ranges(config: Any) -> None:
    """Refuse a config whose numbers are outside their fields' `RANGES` (NaN fails every range)."""
    for name in getattr(type(config), "RANGES", {}):
        problem = out_of_range(type(config), name, getattr(config, name, None))
        if problem:
            raise TandemError(f"{name} {problem}")


def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body), through the class's bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _kind(annotation: Any) -> tuple[type | None, tuple | None, bool]:
    """(base type, Literal choices, whether None is allowed) of a field annotation."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(arguments) < len(typing.get_args(annotation))
        annotation = arguments[0] if len(arguments) == 1 else annotation
        origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]), choices, nullable
    if origin in (list, tuple):
        return list, None, nullable
    return (annotation if isinstance(annotation, type) else None), None, nullable


def fields_of(cls: type) -> dict[str, tuple[Any, Any]]:
    """name -> (resolved annotation, default) of every field of a dataclass that has a plain default."""
    hints = typing.get_type_hints(cls)
    found = {}
    for item in dataclasses.fields(cls):
        if item.default is not dataclasses.MISSING:
            found[item.name] = (hints[item.name], item.default)
        elif item.default_factory is not dataclasses.MISSING:
            found[item.name] = (hints[item.name], item.default_factory())
    return found


def check_value(cls: type, name: str, value: Any, where: str) -> Any:
    """`value` for field `name` of `cls`, checked against its type (an int is a fine float; a number is
    never a bool; NaN is no number); `where` names the file or flag in the message."""
    annotation, _ = fields_of(cls)[name]
    base, choices, nullable = _kind(annotation)
    if value is None:
        if nullable:
            return None
        raise TandemError(f"{where}: {name} cannot be null")
    if choices is not None:
        if value not in choices:
            raise TandemError(f"{where}: {name} must be one of {', '.join(map(str, choices))}, not {value!r}")
        return value
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if base is not None and base is not Any and not isinstance(value, base):
        raise TandemError(f"{where}: {name} must be {base.__name__}, not {value!r}")
    if base is not bool and isinstance(value, bool):
        raise TandemError(f"{where}: {name} must be {base.__name__ if base else 'a value'}, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise TandemError(f"{where}: {name} must be a finite number, not {value!r}")
    return value


def _parse_flag_value(cls: type, name: str) -> Any:
    annotation, _ = fields_of(cls)[name]
    base, choices, _ = _kind(annotation)

    def parse(text: str) -> Any:
        if choices is not None:
            return text if base is str else base(text)
        if base in (int, float):
            try:
                value = base(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected a {'whole ' if base is int else ''}number, not '{text}'"
                ) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise argparse.ArgumentTypeError(f"expected a finite number, not '{text}'")
            problem = out_of_range(cls, name, value)
            if problem:
                raise argparse.ArgumentTypeError(problem)
            return value
        return text

    return parse


def add_options(
    parser: argparse.ArgumentParser,
    cls: type,
    names: list[str],
    aliases: dict[str, list[str]] | None = None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """Add a flag per field in `names` (`--group-size` for `group_size`), plus `--config FILE` and
    `--set KEY=VALUE`. Flags record only what the user typed (argparse.SUPPRESS); `resolve_options` lays
    them over the class's defaults (or `defaults`) and the file."""
    docs, known, aliases = field_docs(cls), fields_of(cls), aliases or {}
    for name in names:
        annotation, default = known[name]
        default = (defaults or {}).get(name, default)
        base, choices, _ = _kind(annotation)
        flags = [f"--{name.replace('_', '-')}", *aliases.get(name, [])]
        shown = "none" if default is None else default
        help_text = f"{docs.get(name, name.replace('_', ' '))} (default: {shown})".replace("%", "%%")
        if base is bool:
            parser.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            parser.add_argument(
                *flags,
                dest=name,
                type=_parse_flag_value(cls, name),
                choices=choices,
                default=argparse.SUPPRESS,
                help=help_text,
                metavar=None if choices else name.upper(),
            )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML or TOML file of options by their keys (the flags' names with underscores), under the flags",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option by its key, e.g. --set epochs=2 (repeatable; over --config, under the flags)",
    )


class _NumberAwareLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats: PyYAML follows YAML 1.1, where `1e-4` (an exponent with
    no dot) is the string '1e-4', while YAML 1.2, TOML, JSON and Python read it as a number, and so does
    anyone typing a learning rate."""


_NumberAwareLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """`text` read as YAML, `1e-4` included as a number (`_NumberAwareLoader`)."""
    return yaml.load(text, Loader=_NumberAwareLoader)  # safe: the loader is a SafeLoader subclass


def read_options_file(path: Path, entries: str = "options") -> dict[str, Any]:
    """The top-level table of a YAML or TOML options file; `entries` names what the table holds in the
    error a file of another shape gets (options, sections)."""
    if not path.is_file():
        raise TandemError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8-sig")
    try:
        loaded = tomllib.loads(text) if path.suffix == ".toml" else load_yaml(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise TandemError(f"{path}: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise TandemError(f"{path}: the top level must be a table of {entries}, not a {type(loaded).__name__}")
    return loaded


def parse_set(item: str) -> tuple[str, Any]:
    """`key=value` -> (key, value), the value read as YAML (`2`, `1e-5`, `null`, `[nll, bce]`, `text`)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise TandemError(f"--set {item}: expected KEY=VALUE, e.g. epochs=2")
    try:
        value = load_yaml(text)
    except yaml.YAMLError:
        value = text
    if isinstance(value, str) and value.lower() in ("nan", ".nan"):
        value = float("nan")
    return key.strip(), value


def resolve_options(cls: type, args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The options of `cls` a command runs with: its defaults (or `base`), then what the user gave
    (`given_options`)."""
    options = {name: default for name, (_, default) in fields_of(cls).items()}
    return {**options, **(base or {}), **given_options(cls, args)}


def given_options(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The options of `cls` the user gave: `--config FILE`, then each `--set`, then the flags typed; unknown
    keys, wrong types, invalid choices and values out of range are errors naming their file or flag."""
    known = fields_of(cls)
    options: dict[str, Any] = {}
    layers: list[tuple[str, dict[str, Any]]] = []
    if getattr(args, "config", None):
        layers.append((str(args.config), read_options_file(args.config)))
    layers += [(f"--set {item}", dict([parse_set(item)])) for item in getattr(args, "set", [])]
    layers.append(("", {name: getattr(args, name) for name in known if hasattr(args, name)}))
    for where, values in layers:
        for key, value in values.items():
            if key not in known:
                raise TandemError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))})")
            options[key] = check_value(cls, key, value, where or f"--{key.replace('_', '-')}")
            problem = out_of_range(cls, key, options[key])
            if problem:
                raise TandemError(f"{where or '--' + key.replace('_', '-')}: {key} {problem}")
    return options


def build(cls: type, options: dict[str, Any], where: str = "options") -> Any:
    """`cls(**options)`, its own range checks turned into a one-line error."""
    try:
        return cls(**options)
    except (ValueError, TandemError) as err:
        raise TandemError(f"{where}: {err}") from None


def from_section(cls: type, section: dict[str, Any], **overrides: Any) -> Any:
    """`cls` built from the options of a configuration section that are its fields (others are the
    section's own, e.g. `reranker.losses`), with `overrides` on top."""
    known = fields_of(cls)
    return build(cls, {**{k: v for k, v in section.items() if k in known}, **overrides}, cls.__name__)
