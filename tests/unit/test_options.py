"""The command line's options come from the config model, and the config's source from the
source registry: one place for each default, choice and help text."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field

from cli.main import build_parser
from cli.options import config_from, options
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.option_hints import Cli
from gallery_snapshot.sources import SOURCES, needs_client_id


class NewFields(BaseModel):
    colour: Literal["red", "blue"] = Field("red", description="Colour of the thing.")
    retries: Annotated[int, Cli(metavar="TIMES")] = Field(2, ge=0, description="Retries.")
    loud: bool = Field(False, description="Shout.")
    label: str | None = Field(None, description="A 100% label.")


def test_a_new_config_field_is_a_new_option_with_its_type_choices_default_and_help() -> None:
    parser = argparse.ArgumentParser()
    found = {option.flag: option for option in options(NewFields)}
    assert list(found) == ["--colour", "--retries", "--loud", "--label"]
    for option in found.values():
        parser.add_argument(option.flag, dest=option.dest, **option.kwargs)
    assert found["--colour"].kwargs["choices"] == ("red", "blue")
    assert found["--colour"].kwargs["help"] == "colour of the thing (default: red)"
    assert found["--retries"].kwargs["metavar"] == "TIMES"
    assert found["--loud"].kwargs["help"] == "shout (default: off)"
    args = parser.parse_args(["--colour", "blue", "--retries", "5", "--loud", "--label", "x"])
    assert (args.colour, args.retries, args.loud, args.label) == ("blue", 5, True, "x")
    assert parser.format_help()  # a % in a description does not break argparse's formatting
    defaults = parser.parse_args([])
    assert (defaults.colour, defaults.retries, defaults.loud, defaults.label) == (
        "red",
        2,
        None,  # left to the model's default
        None,
    )


def test_every_field_of_the_config_has_an_option_unless_the_command_sets_it() -> None:
    flags = {option.path: option.flag for option in options()}
    fields = [("source", name) for name in SourceSpec.model_fields]
    fields += [(name,) for name in SnapshotConfig.model_fields if name != "source"]
    assert set(fields) - set(flags) == {("source", "kind"), ("demo_gallery",)}
    help_text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()  # type: ignore[union-attr]
    for flag in ("--attempts", "--max-pixels", "--mature", "--no-show-viral"):
        assert flag in help_text


def parsed(*argv: str) -> SnapshotConfig:
    args = build_parser().parse_args(["run", *argv])
    return config_from(args, demo=False)


def test_options_that_had_none_reach_the_config(tmp_path: Path) -> None:
    config = parsed("--attempts", "5", "--max-pixels", "1000", "--mature", "--no-show-viral")
    assert (config.attempts, config.max_pixels) == (5, 1000)
    assert (config.source.mature, config.source.show_viral) == (True, False)
    assert parsed().attempts == SnapshotConfig().attempts  # untyped: the model's default


def test_list_options_repeat_or_take_commas() -> None:
    config = parsed("--formats", "jpg,png", "--formats", "gif", "--allow-host", "a.example")
    assert config.formats == ["jpeg", "png", "gif"]
    assert parsed("--allow-host", "a.example,b.example").allowed_hosts == ["a.example", "b.example"]


def test_the_configs_kinds_are_the_registrys_and_each_selects_itself_on_the_command_line() -> None:
    assert get_args(SourceSpec.model_fields["kind"].annotation) == tuple(SOURCES)
    assert parsed().source.kind == next(iter(SOURCES))
    for kind, source in SOURCES.items():
        if source.needs is None:
            continue
        spec = parsed("--" + source.needs.replace("_", "-"), "name").source
        assert spec.kind == kind
        assert needs_client_id(spec) is source.needs_client_id
        assert spec.describe() == source.describe(spec)


def test_the_form_schema_holds_only_what_the_ui_renders() -> None:
    """The Prefect UI draws a form from the flow's parameter schema: objects, scalars,
    enums, lists and ``anyOf`` with null (an optional value). No ``oneOf``, ``allOf`` or
    discriminator (drawn as raw JSON, if at all)."""
    schema = SnapshotConfig.model_json_schema()
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            seen.update(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert not seen & {"oneOf", "allOf", "discriminator", "not", "if", "patternProperties"}
    kind = schema["$defs"]["SourceSpec"]["properties"]["kind"]
    assert kind["enum"] == list(SOURCES) and kind["default"] == "gallery"
    assert next(iter(schema["$defs"]["SourceSpec"]["properties"])) == "kind"  # first in the form
