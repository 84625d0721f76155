"""A plain list of image URLs, one a line (blank lines and ``#`` comments ignored), from a
file or, for ``-``, standard input (the command line's).

The file is read a line at a time within caps (lines, bytes, bytes per line), so that a
wrong path such as ``/dev/zero`` ends with one clear error instead of eating memory.
"""

from __future__ import annotations

import contextlib
import mimetypes
import sys
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from gallery_snapshot.config import STDIN
from gallery_snapshot.errors import ConfigError
from gallery_snapshot.models import Link, Listing, SkippedLink
from gallery_snapshot.selection import UrlProblem, normalize_url, parse_image_url

MAX_LINES = 100_000
MAX_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024


@contextlib.contextmanager
def _opened(path: str) -> Iterator[BinaryIO]:
    """The file ``path``, or standard input for ``-`` (left open: it is not ours)."""
    if path != STDIN:
        with open(path, "rb") as handle:
            yield handle
    elif sys.stdin is None:  # a process started without one
        raise OSError("no standard input")
    else:
        yield sys.stdin.buffer


def _lines(path: str, *, max_lines: int, max_bytes: int) -> Iterator[str]:
    """The lines of ``path`` (``-``: standard input), decoded, read incrementally;
    ``ConfigError`` past a cap."""
    what = "standard input" if path == STDIN else f"the URLs file {path}"
    read = 0
    try:
        with _opened(path) as handle:
            for number in range(1, max_lines + 2):
                raw = handle.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                read += len(raw)
                if number > max_lines:
                    raise ConfigError(f"{what} has more than {max_lines} lines")
                if read > max_bytes:
                    raise ConfigError(f"{what} is more than {max_bytes} bytes")
                if len(raw) > MAX_LINE_BYTES:
                    raise ConfigError(
                        f"{what}: line {number} is longer than {MAX_LINE_BYTES} bytes"
                    )
                yield raw.decode("utf-8")
    except (OSError, ValueError) as exc:  # ValueError: a closed stdin; UnicodeDecodeError
        raise ConfigError(f"cannot read {what}: {exc}") from None


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
            parse_image_url(url)
        except UrlProblem as exc:
            skipped.append(SkippedLink(url=url, reason=str(exc)))
            continue
        guessed, _ = mimetypes.guess_type(PurePosixPath(unquote(urlsplit(url).path)).name)
        # The whole URL is the image's identity: /red/x.jpg, /blue/x.jpg and x.png differ.
        links.append(Link(url=url, id=normalize_url(url), rank=len(links) + 1, type=guessed))
    return Listing(links=links, skipped=skipped)
