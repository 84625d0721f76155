"""Imgur listings: the main gallery, subreddit and tag galleries, and single albums.

A source only lists: it turns API pages into ``Link``s in listing order, expanding albums
into their images. Items it cannot use are kept as ``SkippedLink``s with the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from gallery_snapshot.errors import ApiError, ConfigError, RateLimitExhausted
from gallery_snapshot.escaping import one_line_text
from gallery_snapshot.imgur_api import ImgurClient
from gallery_snapshot.models import Link, Listing, SkippedLink
from gallery_snapshot.option_hints import Cli
from gallery_snapshot.selection import UrlProblem, parse_image_url
from gallery_snapshot.sources.base import Access, Source

if TYPE_CHECKING:
    from gallery_snapshot.sources.spec import SourceSpec

IMGUR_API_URL = "https://api.imgur.com/3"
IMGUR_IMAGE_HOST = "i.imgur.com"
_ALBUM_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_NAME = _ALBUM_ID

logger = logging.getLogger(__name__)


class ImgurOptions(BaseModel):
    """The options of Imgur listings (fields of ``SourceSpec``)."""

    api_url: Annotated[str, Cli(env="IMGUR_API_URL")] = Field(
        IMGUR_API_URL, description="Base URL of the Imgur-compatible API."
    )
    section: Literal["hot", "top", "user"] = Field("hot", description="Main gallery section.")
    sort: Literal["viral", "top", "time", "rising"] | None = Field(
        None, description="Sort order; default viral (gallery) or time (subreddit, tag)."
    )
    window: Literal["day", "week", "month", "year", "all"] | None = Field(
        None, description="Time window; default day (gallery) or week (subreddit, tag)."
    )
    pages: Annotated[int, Cli(metavar="N")] = Field(
        1, ge=1, le=1000, description="Pages to read; stops early at an empty page."
    )
    show_viral: bool = Field(True, description="Gallery: include viral images in the user section.")
    mature: bool = Field(False, description="Include items flagged mature.")
    subreddit: Annotated[str | None, Cli(metavar="NAME")] = Field(
        None, description="Subreddit name (kind=subreddit)."
    )
    tag: Annotated[str | None, Cli(metavar="NAME")] = Field(
        None, description="Tag name (kind=tag)."
    )
    album: Annotated[str | None, Cli(metavar="ID")] = Field(
        None, description="Album id (kind=album)."
    )

    @field_validator("subreddit", "tag", "album")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.fullmatch(value):  # match() takes "name\n"
            raise ValueError(f"{value!r} is not a plain name (letters, digits, _ and -)")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        one_line_text(value)
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        try:  # read as every request will read it: 'http://[::1' is one line here, not retries
            parse_image_url(value)
        except UrlProblem as exc:
            raise ValueError(f"{value!r}: {exc}") from None
        return value.rstrip("/")


def _encodable(value: str | None) -> str | None:
    """Refuse text that UTF-8 cannot encode (lone surrogates, which JSON can carry): it could
    not be written to the manifest."""
    if value is not None and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError("unicode", "not valid Unicode (a lone surrogate)") from None
    return value


def _printable(text: str) -> str:
    """``text`` with lone surrogates written as escapes, fit for the manifest."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ImgurImage(BaseModel):
    id: str
    link: str
    type: str | None = None
    animated: bool = False

    _unicode = field_validator("id", "link", "type")(_encodable)


class ImgurAlbum(BaseModel):
    id: str
    link: str = ""
    images: list[Any] | None = None

    _unicode = field_validator("id", "link")(_encodable)

    @field_validator("id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        if not _ALBUM_ID.fullmatch(value):  # it goes into API paths: match() takes "id\n"
            raise PydanticCustomError("album_id", "not a plain album id")
        return value


def page_paths(spec: SourceSpec) -> Iterator[tuple[str, dict[str, str]]]:
    """The API path and query of each listing page, in order."""
    flags = {"mature": str(spec.mature).lower(), "album_previews": "true"}
    for page in range(spec.pages):
        match spec.kind:
            case "gallery":
                path = (
                    f"gallery/{spec.section}/{spec.sort or 'viral'}/{spec.window or 'day'}/{page}"
                )
                yield path, {**flags, "showViral": str(spec.show_viral).lower()}
            case "subreddit":
                path = f"gallery/r/{spec.subreddit}/{spec.sort or 'time'}/{spec.window or 'week'}"
                yield f"{path}/{page}", flags
            case "tag":
                path = f"gallery/t/{spec.tag}/{spec.sort or 'viral'}/{spec.window or 'week'}"
                yield f"{path}/{page}", flags
            case _:
                raise ValueError(f"{spec.kind!r} is not a paged Imgur listing")


def page_items(data: Any) -> list[Any]:
    """The items of a listing page: ``data`` itself, or ``data.items`` for tag galleries."""
    if isinstance(data, dict):
        data = data.get("items")
    if not isinstance(data, list):
        raise ValueError("the listing page holds no list of items")
    return data


class _ListingBuilder:
    """Collects links in rank order and skipped items with reasons."""

    def __init__(self) -> None:
        self.links: list[Link] = []
        self.skipped: list[SkippedLink] = []

    def add_image(self, raw: Any, *, album: str | None = None) -> None:
        try:
            image = ImgurImage.model_validate(raw)
        except ValidationError as exc:
            self.skip(raw, f"malformed image item: {_first_error(exc)}")
            return
        self.links.append(
            Link(
                url=image.link,
                id=image.id,
                rank=len(self.links) + 1,
                type=image.type,
                animated=image.animated,
                album=album,
            )
        )

    def skip(self, raw: Any, reason: str) -> None:
        item = raw if isinstance(raw, dict) else {}
        url, item_id = item.get("link"), item.get("id")
        self.skipped.append(
            SkippedLink(
                url=_printable(url) if isinstance(url, str) else "",
                id=_printable(item_id) if isinstance(item_id, str) else None,
                reason=_printable(reason),
            )
        )

    def listing(self) -> Listing:
        return Listing(links=self.links, skipped=self.skipped)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "item"
    return f"{where}: {error['msg']}"


def _album_images(client: ImgurClient, album: ImgurAlbum) -> list[Any]:
    if album.images is not None:
        return album.images
    data = client.get(f"album/{album.id}/images")
    if not isinstance(data, list):
        raise ValueError("album images are not a list")
    return data


def _add_item(builder: _ListingBuilder, client: ImgurClient, raw: Any) -> None:
    if not isinstance(raw, dict):
        builder.skip(raw, f"listing item is a {type(raw).__name__}, not an object")
    elif raw.get("is_album") is True:
        try:
            album = ImgurAlbum.model_validate(raw)
            images = _album_images(client, album)
        except ValidationError as exc:
            builder.skip(raw, f"malformed album: {_first_error(exc)}")
            return
        except ValueError as exc:
            builder.skip(raw, f"malformed album: {exc}")
            return
        except RateLimitExhausted:
            raise
        except ApiError as exc:  # this album only: the rest of the listing goes on
            builder.skip(raw, f"album images not listed: {exc}")
            return
        for image in images:
            builder.add_image(image, album=album.id)
    else:
        builder.add_image(raw)


def list_imgur(spec: SourceSpec, client: ImgurClient) -> Listing:
    """All links of the listing ``spec`` names, albums expanded, in listing order."""
    builder = _ListingBuilder()
    if spec.kind == "album":
        album = client.get(f"album/{spec.album}")
        if not isinstance(album, dict):
            raise ApiError(f"/album/{spec.album} did not describe an album")
        _add_item(builder, client, {**album, "is_album": True})
        return builder.listing()
    for path, params in page_paths(spec):
        try:
            items = page_items(client.get(path, params))
        except ValueError as exc:
            builder.skip({}, f"unreadable page /{path}: {exc}")
            break
        if not items:
            break
        for raw in items:
            _add_item(builder, client, raw)
    return builder.listing()


def _check_sort(spec: SourceSpec) -> None:
    if spec.sort == "rising" and not (spec.kind == "gallery" and spec.section == "user"):
        raise ValueError("sort 'rising' exists only for the gallery's user section")
    if spec.kind in ("subreddit", "tag") and spec.sort not in (None, "time", "top", "viral"):
        raise ValueError(f"sort {spec.sort!r} is not offered for a {spec.kind} gallery")


def _listed(spec: SourceSpec, access: Access) -> Listing:
    if not access.client_id:
        raise ConfigError(
            "no Imgur client id: set IMGUR_CLIENT_ID (or create the Prefect Secret block "
            "'imgur-client-id')"
        )
    client = ImgurClient(
        spec.api_url,
        access.client_id,
        timeout=access.timeout,
        deadline=access.deadline,
        before_request=access.before_request,
    )
    listing = list_imgur(spec, client)
    logger.info("API credits after listing: %s", client.credits_summary())
    return listing


def _imgur(describe: Any, *, needs: str | None = None) -> Source:
    return Source(describe, _listed, needs_client_id=True, needs=needs, check=_check_sort)


SOURCES = {
    "gallery": _imgur(
        lambda spec: f"gallery-{spec.section}-{spec.sort or 'viral'}-{spec.window or 'day'}"
    ),
    "subreddit": _imgur(lambda spec: f"r-{spec.subreddit}", needs="subreddit"),
    "tag": _imgur(lambda spec: f"tag-{spec.tag}", needs="tag"),
    "album": _imgur(lambda spec: f"album-{spec.album}", needs="album"),
}
