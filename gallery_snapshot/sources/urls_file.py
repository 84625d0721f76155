"""A plain list of image URLs, one a line (blank lines and ``#`` comments ignored), from a
file or, for ``-``, standard input (the command line's).

Only a regular file is read as a file (a FIFO or a device is refused at once, never waited
on; standard input is whatever the command was given), a line at a time within caps (lines,
bytes, bytes per line), so that a huge file ends with one clear error instead of eating
memory. A line that is not a link is never echoed whole: the file
may not be a list of URLs at all (``/proc/self/environ``), and skipped lines end up in the
manifest, the page and the run's report.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import PurePath, PurePosixPath
from typing import TYPE_CHECKING, Annotated, BinaryIO

from pydantic import BaseModel, Field, field_validator

from gallery_snapshot.errors import ConfigError
from gallery_snapshot.escaping import one_line_text
from gallery_snapshot.models import Link, Listing, SkippedLink
from gallery_snapshot.option_hints import Cli
from gallery_snapshot.selection import UrlProblem, parse_image_url
from gallery_snapshot.sources.base import Access, Source

if TYPE_CHECKING:
    from gallery_snapshot.sources.spec import SourceSpec

# ``--urls-file -``: the command line's standard input.
STDIN = "-"

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


class UrlsFileOptions(BaseModel):
    """The option of a URLs file (a field of ``SourceSpec``)."""

    urls_file: Annotated[str | None, Cli(metavar="PATH")] = Field(
        None, description="Path of a file with one image URL a line (-: standard input)."
    )

    _one_line = field_validator("urls_file")(one_line_text)


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


@contextlib.contextmanager
def _opened(path: str) -> Iterator[BinaryIO]:
    """The regular file ``path``, or standard input for ``-`` (a pipe, a terminal, whatever
    the command was given: read within the same caps; left open, it is not ours)."""
    if path != STDIN:
        with open_urls_file(path) as handle:
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


def _describe(spec: SourceSpec) -> str:
    """The file's name (two files are two sources), or standard input."""
    stem = "stdin" if spec.urls_file == STDIN else PurePath(spec.urls_file or "").stem
    return f"urls-{stem}"


def _listed(spec: SourceSpec, access: Access) -> Listing:
    assert spec.urls_file is not None  # guaranteed by SourceSpec's validation
    return list_urls_file(spec.urls_file)


SOURCES = {"urls": Source(_describe, _listed, needs="urls_file")}
