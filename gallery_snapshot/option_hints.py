"""How a config field shows on the command line where the generic rule does not fit.

The CLI makes one option per field of the config model: ``--field-name``, the field's type,
choices (a ``Literal``), default and description (its help). A field that needs more carries
a ``Cli`` note in its annotation (``Annotated[str | None, Cli(metavar="NAME")]``); pydantic,
and the form the Prefect UI renders from the model's schema, ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cli:
    flag: str | None = None  # the option's name (default: --field-name)
    metavar: str | None = None
    help: str | None = None  # the option's help (default: the field's description)
    env: str | None = None  # an environment variable whose value is the option's default
    hidden: bool = False  # no option: the command sets the field itself
