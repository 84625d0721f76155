"""Sources list the images of a gallery; they never download.

The registry: each source module declares its options (a pydantic model) and its kinds of
listing (``Source``s, see ``base``). A new gallery site is one more module here, and its line
in ``SourceOptions``'s bases and in ``SOURCES``; the config's ``source`` (``spec``) and the
command line's options are built from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gallery_snapshot.http import DEFAULT_DEADLINE
from gallery_snapshot.models import Listing
from gallery_snapshot.sources import imgur, urls_file
from gallery_snapshot.sources.base import Access, Source

if TYPE_CHECKING:
    from gallery_snapshot.sources.spec import SourceSpec

__all__ = ["DEFAULT_KIND", "SOURCES", "SourceOptions", "list_links", "needs_client_id"]

# Every kind of listing, by name; the first is the default.
SOURCES: dict[str, Source] = {**imgur.SOURCES, **urls_file.SOURCES}
DEFAULT_KIND = next(iter(SOURCES))


class SourceOptions(urls_file.UrlsFileOptions, imgur.ImgurOptions):
    """Every source's options, the fields of ``SourceSpec`` beside its ``kind``. (Bases in
    reverse order: pydantic orders the fields from the last base to the first, and so does the
    UI's form.)"""


def needs_client_id(spec: SourceSpec) -> bool:
    return SOURCES[spec.kind].needs_client_id


def list_links(
    spec: SourceSpec,
    *,
    client_id: str | None,
    timeout: float = 30.0,
    deadline: float = DEFAULT_DEADLINE,
    before_request: Callable[[], None] | None = None,
) -> Listing:
    """The listing ``spec`` names. ``client_id`` is required for sources that need one; each
    API request ends within ``deadline`` seconds; ``before_request`` runs before each API
    request (a shared rate limit)."""
    access = Access(client_id, timeout, deadline, before_request)
    return SOURCES[spec.kind].list(spec, access)
