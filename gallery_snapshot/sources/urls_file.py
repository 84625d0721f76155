"""A plain list of image URLs, one a line (blank lines and ``#`` comments ignored).

The file is read a line at a time within caps (lines, bytes, bytes per line), so that a
wrong path such as ``/dev/zero`` ends with one clear error instead of eating memory.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from pathlib import PurePosixPath

from gallery_snapshot.errors import ConfigError
from gallery_snapshot.models import Link, Listing, SkippedLink
from gallery_snapshot.selection import UrlProblem, parse_image_url

MAX_LINES = 100_000
MAX_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024


def _lines(path: str, *, max_lines: int, max_bytes: int) -> Iterator[str]:
    """The lines of ``path``, decoded, read incrementally; ``ConfigError`` past a cap."""
    read = 0
    try:
        with open(path, "rb") as handle:
            for number in range(1, max_lines + 2):
                raw = handle.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                read += len(raw)
                if number > max_lines:
                    raise ConfigError(f"the URLs file {path} has more than {max_lines} lines")
                if read > max_bytes:
                    raise ConfigError(f"the URLs file {path} is more than {max_bytes} bytes")
                if len(raw) > MAX_LINE_BYTES:
                    raise ConfigError(
                        f"the URLs file {path}: line {number} is longer than {MAX_LINE_BYTES} bytes"
                    )
                yield raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the URLs file {path}: {exc}") from None


def list_urls_file(path: str, *, max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES) -> Listing:
    """Links in file order. The type is guessed from the extension, since a file of URLs
    carries no metadata; validation sniffs the real format later."""
    links: list[Link] = []
    skipped: list[SkippedLink] = []
    for line in _lines(path, max_lines=max_lines, max_bytes=max_bytes):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        try:
            parsed = parse_image_url(url)
        except UrlProblem as exc:
            skipped.append(SkippedLink(url=url, reason=str(exc)))
            continue
        guessed, _ = mimetypes.guess_type(PurePosixPath(parsed.path).name)
        # The whole URL is the image's identity: /red/x.jpg, /blue/x.jpg and x.png differ.
        links.append(Link(url=url, id=parsed.key, rank=len(links) + 1, type=guessed))
    return Listing(links=links, skipped=skipped)
