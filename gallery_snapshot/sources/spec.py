"""``SourceSpec``, the config's ``source``: every registered source's options, and the kind
of listing to read, whose choices are the registry's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gallery_snapshot.option_hints import Cli
from gallery_snapshot.sources import DEFAULT_KIND, SOURCES, SourceOptions

if TYPE_CHECKING:
    SourceKind = str
else:  # a Literal of the registry's kinds: the UI's form offers them as choices
    SourceKind = Literal[tuple(SOURCES)]


class _Kind(BaseModel):
    # Set on the command line by the option that selects a kind (--album ID...).
    kind: Annotated[SourceKind, Cli(hidden=True)] = Field(
        DEFAULT_KIND, description="Which listing to read."
    )


class SourceSpec(SourceOptions, _Kind):  # _Kind last: its field first in the form
    """Where the links come from: an Imgur listing (gallery, subreddit, tag, album) or URLs."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _consistent(self) -> SourceSpec:
        source = SOURCES[self.kind]
        if source.needs and not getattr(self, source.needs):
            raise ValueError(f"source kind {self.kind!r} needs {source.needs}")
        if source.check:
            source.check(self)
        return self

    def describe(self) -> str:
        """A short human label, used in flow run names and reports."""
        return SOURCES[self.kind].describe(self)
