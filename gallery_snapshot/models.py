"""Plain data passed between the stages. All of it pickles and hashes stably, so it can
cross process boundaries and serve as Prefect task inputs and cache keys."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

# "skipped" only travels from validation to the manifest, which lists such images as skipped:
# a stored image of a format this run does not want.
ImageStatus = Literal["downloaded", "reused", "invalid", "gone", "failed", "skipped"]
FetchStatus = Literal["fetched", "reused", "gone", "failed"]

# One set of field names per distinct combination, shared by the models that were given it.
_FIELD_SETS: dict[frozenset[str], set[str]] = {}


def _share_fields_set(model: BaseModel) -> None:
    names = model.__pydantic_fields_set__
    shared = _FIELD_SETS.setdefault(frozenset(names), names)
    object.__setattr__(model, "__pydantic_fields_set__", shared)


class Frozen(BaseModel):
    """A frozen model whose instances share the set of names of their explicitly set fields.

    Pydantic keeps that set per instance, and it is most of a per-image model: 728 B of a
    Link's 1.3 KB, 1.2 KB of an ImageRecord's 2.2 KB after ``model_copy(update=...)`` (at
    100,000 images, ~200 MB of a snapshot's memory). Sharing is safe because the model is
    frozen: pydantic adds to the set only on assignment, which a frozen model refuses, and
    ``model_copy`` copies it before adding to it."""

    model_config = ConfigDict(frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        _share_fields_set(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        _share_fields_set(copied)
        return copied

    def __setstate__(self, state: dict[Any, Any]) -> None:
        # Unpickled: results from process and Dask workers.
        super().__setstate__(state)
        _share_fields_set(self)


class Link(Frozen):
    """One image a source listed, in listing order (``rank`` starts at 1)."""

    url: str
    id: str
    rank: int
    type: str | None = None  # MIME type as the source reports it, e.g. "image/jpeg"
    animated: bool = False
    album: str | None = None  # id of the album the image was expanded from


class SkippedLink(Frozen):
    """A link (or a listing item) left out of the snapshot, and why."""

    url: str
    id: str | None = None
    reason: str


class Listing(BaseModel):
    """What a source found: the links in order, plus the items it could not use."""

    links: list[Link]
    skipped: list[SkippedLink] = []


class Selection(BaseModel):
    """The links to download, and every link the filter dropped with its reason."""

    selected: list[Link]
    skipped: list[SkippedLink]


class StoredImage(Frozen):
    """A validated image in the store, named by its content."""

    sha256: str
    format: str  # Pillow's name, e.g. "JPEG"
    bytes: int
    width: int
    height: int


class FetchResult(Frozen):
    """What the downloader did for one link. A ``fetched`` file waits in staging for
    validation; a ``reused`` one is already stored, as ``stored`` says."""

    link: Link
    status: FetchStatus
    path: str | None = None  # absolute path of the staged file (fetched)
    # The fetched bytes themselves, when the store is an object store: the next step may run
    # on another machine, and no task can read another one's disk.
    content: builtins.bytes | None = None  # (the field "bytes" shadows the builtin here)
    sha256: str | None = None
    bytes: int | None = None
    stored: StoredImage | None = None  # reused; or fetched again, its stored copy damaged
    error: str | None = None


class ImageRecord(Frozen):
    """One image's line in the manifest."""

    url: str
    id: str
    rank: int
    status: ImageStatus
    path: str | None = None  # relative to the output folder; set for downloaded and reused
    sha256: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    error: str | None = None
