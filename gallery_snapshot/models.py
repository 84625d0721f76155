"""Plain data passed between the stages. All of it pickles and hashes stably, so it can
cross process boundaries and serve as Prefect task inputs and cache keys."""

from __future__ import annotations

import builtins
from typing import Literal

from pydantic import BaseModel, ConfigDict

# "skipped" only travels from validation to the manifest, which lists such images as skipped:
# a stored image of a format this run does not want.
ImageStatus = Literal["downloaded", "reused", "invalid", "gone", "failed", "skipped"]
FetchStatus = Literal["fetched", "reused", "gone", "failed"]


class Link(BaseModel):
    """One image a source listed, in listing order (``rank`` starts at 1)."""

    model_config = ConfigDict(frozen=True)

    url: str
    id: str
    rank: int
    type: str | None = None  # MIME type as the source reports it, e.g. "image/jpeg"
    animated: bool = False
    album: str | None = None  # id of the album the image was expanded from


class SkippedLink(BaseModel):
    """A link (or a listing item) left out of the snapshot, and why."""

    model_config = ConfigDict(frozen=True)

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


class StoredImage(BaseModel):
    """A validated image in the store, named by its content."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    format: str  # Pillow's name, e.g. "JPEG"
    bytes: int
    width: int
    height: int


class FetchResult(BaseModel):
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


class ImageRecord(BaseModel):
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
