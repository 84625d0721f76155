"""Imgur listings: the main gallery, subreddit and tag galleries, and single albums.

A source only lists: it turns API pages into ``Link``s in listing order, expanding albums
into their images. Items it cannot use are kept as ``SkippedLink``s with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from gallery_snapshot.config import SourceSpec
from gallery_snapshot.errors import ApiError, RateLimitExhausted
from gallery_snapshot.imgur_api import ImgurClient
from gallery_snapshot.models import Link, Listing, SkippedLink

_ALBUM_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


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
