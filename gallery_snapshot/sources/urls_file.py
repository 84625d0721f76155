"""A plain list of image URLs, one a line (blank lines and ``#`` comments ignored).

Only a regular file is read (a FIFO or a device is refused at once, never waited on), a line
at a time within caps (lines, bytes, bytes per line), so that a huge file ends with one clear
error instead of eating memory. A line that is not a link is never echoed whole: the file
may not be a list of URLs at all (``/proc/self/environ``), and skipped lines end up in the
manifest, the page and the run's report.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import BinaryIO

from gallery_snapshot.errors import ConfigError
from gallery_snapshot.models import Link, Listing, SkippedLink
from gallery_snapshot.selection import UrlProblem, parse_image_url

MAX_LINES = 100_000
MAX_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024
# What a skipped line shows of itself, at most: its URL-like beginning.
SHOWN_CHARS = 200

_NOT_REGULAR = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# http(s)://, an authority, then a path, query, fragment: URL characters only (no space, no
# control character, nothing outside ASCII).
_URL_CHARS = r"A-Za-z0-9._~:\[\]@!$&'()*+,;=%\-"
_URL_LIKE = re.compile(rf"(https?://)([{_URL_CHARS}]*)((?:[/?#][{_URL_CHARS}/?#]*)?)", re.I)


def open_urls_file(path: str) -> BinaryIO:
    """``path`` open for reading when it is a regular file; ConfigError otherwise. Opened
    without blocking: a FIFO nobody writes to would block the open forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot read the URLs file {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _NOT_REGULAR if test(mode)), "a special file")
        raise ConfigError(f"cannot read the URLs file {path}: not a regular file ({kind})")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def shown_line(line: str) -> str:
    """What a skipped line shows: its URL-like beginning with any userinfo hidden, at most
    ``SHOWN_CHARS`` characters; nothing when it does not begin like a URL."""
    match = _URL_LIKE.match(line)
    if match is None:
        return ""
    scheme, authority, rest = match.groups()
    if "@" in authority:
        authority = "…@" + authority.rsplit("@", 1)[1]
    shown = scheme + authority + rest
    return shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 1] + "…"


def skipped_line(number: int, line: str, reason: str) -> SkippedLink:
    """A skipped line by its number and reason. Only its URL-like beginning is shown, and the
    parser's reason, which may quote the line, only when the line is shown whole; else its
    kind alone ("malformed URL")."""
    shown = shown_line(line)
    if not shown:
        reason = "not an http(s) URL"
    elif shown != line:
        reason = reason.split(":", 1)[0]
    elif len(reason) > SHOWN_CHARS:
        reason = reason[: SHOWN_CHARS - 1] + "…"
    return SkippedLink(url=shown, reason=f"line {number}: {reason}")


def _lines(path: str, *, max_lines: int, max_bytes: int) -> Iterator[str]:
    """The lines of ``path``, decoded, read incrementally; ``ConfigError`` past a cap."""
    read = 0
    try:
        with open_urls_file(path) as handle:
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
    for number, line in enumerate(_lines(path, max_lines=max_lines, max_bytes=max_bytes), 1):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        try:
            parsed = parse_image_url(url)
        except UrlProblem as exc:
            skipped.append(skipped_line(number, url, str(exc)))
            continue
        guessed, _ = mimetypes.guess_type(PurePosixPath(parsed.path).name)
        # The whole URL is the image's identity: /red/x.jpg, /blue/x.jpg and x.png differ.
        links.append(Link(url=url, id=parsed.key, rank=len(links) + 1, type=guessed))
    return Listing(links=links, skipped=skipped)
