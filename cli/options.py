"""The snapshot's options, generated from the config model: one per field of
``SnapshotConfig`` (and of its ``source``), named ``--field-name``, with the field's type,
choices, default and description; a field's ``Cli`` note (``gallery_snapshot.option_hints``)
says where it differs. A new config field is a new option, with no line here; only parsing
a field's text differently (a path made absolute, a host checked) is written here."""

from __future__ import annotations

import argparse
import os
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from gallery_snapshot.config import FORMATS, STDIN, SnapshotConfig
from gallery_snapshot.option_hints import Cli
from gallery_snapshot.selection import UrlProblem, allowed_host
from gallery_snapshot.sources import DEFAULT_KIND, SOURCES
from gallery_snapshot.store import absolute_name

Path = tuple[str, ...]  # a field's place in SnapshotConfig: ("source", "pages")
SOURCE_GROUP = "source (default: the main gallery)"


def _format(value: str) -> str:
    name = value.strip().lower()
    name = "jpeg" if name == "jpg" else name
    if name not in FORMATS:
        raise ValueError(f"unknown format {value}; choose from {', '.join(FORMATS)}")
    return name


def _host(value: str) -> str:
    try:
        return allowed_host(value)
    except UrlProblem as exc:
        raise ValueError(str(exc)) from None


def _output(value: str) -> str:
    """A folder made absolute (the flow may run elsewhere); a URL, or nothing (refused by
    the store, never the current folder), as typed."""
    return absolute_name(value)


def _local_path(value: str) -> str:
    return value if value == STDIN else os.path.abspath(value)


# Fields whose text the command line reads differently from the model: list items checked
# as they are parsed, paths resolved as the config is made (the flow may run elsewhere).
PARSERS: dict[str, Callable[[str], Any]] = {"formats": _format, "allowed_hosts": _host}
RESOLVERS: dict[str, Callable[[str], str]] = {"out_dir": _output, "urls_file": _local_path}


class _Items(argparse.Action):
    """A list option: repeatable, each value comma-separated (``--formats jpeg,png``)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, *_: Any
    ) -> None:
        parse: Callable[[str], Any] = self.const or str
        try:
            items = [parse(item) for item in str(values).split(",") if item.strip()]
        except ValueError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        if not items:
            raise argparse.ArgumentError(self, f"{values!r} names nothing")
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), *items])


@dataclass(frozen=True)
class Option:
    path: Path
    flag: str
    kwargs: dict[str, Any]

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


def _plain(annotation: Any) -> tuple[Any, tuple[Any, ...] | None]:
    """The type a field's text converts to, and its choices: ``Literal[...] | None`` is
    ``(str, choices)``, ``list[X]`` is ``(list, X's choices)``."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        [annotation] = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _plain(annotation)
    if origin is Literal:
        return type(get_args(annotation)[0]), get_args(annotation)
    if origin is list:
        return list, _plain(get_args(annotation)[0])[1]
    return annotation, None


def _shown(default: Any) -> str:
    if default is None:
        return ""
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, list):
        return ",".join(map(str, default))
    return str(default)


def _help(text: str, default: Any, hint: Cli) -> str:
    text = text.rstrip(".")
    text = text[:1].lower() + text[1:]
    shown = _shown(default)
    if hint.env:
        shown = f"${hint.env} or {shown}"
    return (f"{text} (default: {shown})" if shown else text).replace("%", "%%")


def _option(path: Path, field: FieldInfo, hint: Cli, default: Any) -> Option:
    kind, choices = _plain(field.annotation)
    if hint.env:
        default = os.environ.get(hint.env, default)
    flag = hint.flag or "--" + path[-1].replace("_", "-")
    text = hint.help or field.description or ""
    parse = PARSERS.get(path[-1])
    kwargs: dict[str, Any] = {"default": None if kind in (bool, list) else default}
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif kind is list:
        if choices and not hint.help:
            text = f"{text.rstrip('.')}: {', '.join(choices)}"
        text = f"{text.rstrip('.')}; repeatable, or comma-separated"
        kwargs.update(action=_Items, const=parse, metavar=hint.metavar or path[-1].upper())
    else:
        kwargs.update(type=parse or kind, choices=choices, metavar=hint.metavar)
        if choices is None and kwargs["metavar"] is None and kind in (int, float):
            kwargs["metavar"] = "N" if kind is int else "NUMBER"
    return Option(path, flag, {**kwargs, "help": _help(text, default, hint)})


def options(
    model: type[BaseModel] = SnapshotConfig,
    *,
    defaults: Mapping[Path, Any] = {},
    path: Path = (),
) -> Iterator[Option]:
    """One option per field of ``model`` (nested models' fields included), in field order,
    with ``defaults`` where the command's differ from the model's."""
    for name, field in model.model_fields.items():
        hint = next((note for note in field.metadata if isinstance(note, Cli)), Cli())
        here = (*path, name)
        if hint.hidden:
            continue
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from options(field.annotation, defaults=defaults, path=here)
        else:
            yield _option(here, field, hint, defaults.get(here, field.default))


def _selector_fields() -> dict[str, str]:
    """The kind a source option selects, by the option's field: ``--album`` reads an album."""
    return {source.needs: kind for kind, source in SOURCES.items() if source.needs}


def add_config_options(
    parser: argparse.ArgumentParser, *, defaults: Mapping[Path, Any], skip: Sequence[Path] = ()
) -> None:
    """The config's options on ``parser``: the source's in their group (those that select a
    kind of source, one at most), the others under "download"."""
    source = parser.add_argument_group(SOURCE_GROUP)
    download = parser.add_argument_group("download")
    chosen = [option for option in options(defaults=defaults) if option.path not in skip]
    selects = _selector_fields()
    selectors = [option for option in chosen if option.path[-1] in selects]
    one_of = source.add_mutually_exclusive_group() if selectors else source
    for option in chosen:
        group = download if option.path[0] != "source" else source
        group = one_of if option in selectors else group
        group.add_argument(option.flag, dest=option.dest, **option.kwargs)


def config_from(args: argparse.Namespace, *, demo: bool) -> SnapshotConfig:
    """The config the options typed say, the model's defaults for the others (ValidationError
    for bad values)."""
    values: dict[str, Any] = {"demo_gallery": demo, "source": {}}
    for option in options():
        if (value := getattr(args, option.dest, None)) is not None:
            *parents, name = option.path
            place = values
            for parent in parents:
                place = place.setdefault(parent, {})
            place[name] = RESOLVERS[name](value) if name in RESOLVERS else value
    selected = [kind for field, kind in _selector_fields().items() if field in values["source"]]
    values["source"]["kind"] = selected[0] if selected else DEFAULT_KIND
    return SnapshotConfig.model_validate(values)


def validation_message(error: ValidationError) -> str:
    """The first error, naming the option typed rather than the field it sets."""
    flags = {option.path: option.flag for option in options()}
    first = error.errors()[0]
    where = tuple(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    # The longest prefix: an error about one item of a list names the list's option.
    option = next((flags[where[:n]] for n in range(len(where), 0, -1) if where[:n] in flags), None)
    return f"{option}: {message}" if option else message
