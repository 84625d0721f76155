"""A plain list of image URLs, one a line (blank lines and ``#`` comments ignored)."""

from __future__ import annotations

import mimetypes
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from gallery_snapshot.errors import ConfigError
from gallery_snapshot.models import Link, Listing, SkippedLink
from gallery_snapshot.selection import normalize_url


def list_urls_file(path: str) -> Listing:
    """Links in file order. The type is guessed from the extension, since a file of URLs
    carries no metadata; validation sniffs the real format later."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the URLs file {path}: {exc}") from None
    links: list[Link] = []
    skipped: list[SkippedLink] = []
    for line in text.splitlines():
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            skipped.append(SkippedLink(url=url, reason="not an http(s) URL"))
            continue
        guessed, _ = mimetypes.guess_type(PurePosixPath(unquote(parts.path)).name)
        # The whole URL is the image's identity: /red/x.jpg, /blue/x.jpg and x.png differ.
        links.append(Link(url=url, id=normalize_url(url), rank=len(links) + 1, type=guessed))
    return Listing(links=links, skipped=skipped)
