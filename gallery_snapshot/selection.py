"""The filter step: keep the wanted formats from allowed hosts, once each.

Pure functions; every link dropped is returned with its reason. A URL is read with the parser
the HTTP client connects with (urllib3's), and refused when ``urllib.parse`` reads another
scheme, host or port into it: the host that is checked is the host that is connected to.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urljoin, urlsplit, urlunsplit

from urllib3.util import parse_url

from gallery_snapshot.models import Link, Selection, SkippedLink

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters that parsers strip, drop or stop at differently (C0 controls, space, DEL).
_AMBIGUOUS_CHARACTERS = frozenset(map(chr, [*range(0x21), 0x7F]))
# A normalized host the HTTP client sends as it is: DNS labels, or an IPv6 literal.
_HOST_NAME = re.compile(r"^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?$|^\[[0-9a-f:.]+\]$")
_HOST_AND_PORT = re.compile(r"^(\[[^\]]*\]|[^:\[\]]+):[0-9]*$")


class UrlProblem(ValueError):
    """A URL that must not be requested; ``str()`` is the reason, one line."""


@dataclass(frozen=True, kw_only=True)
class ImageUrl:
    """An http(s) URL as the HTTP client will connect to it; ``host`` is normalized
    (``normalize_host``), ``key`` is the URL's canonical form (``normalize_url``) and ``path``
    its path, %-decoded."""

    scheme: str
    host: str
    port: int | None
    key: str
    path: str


@contextlib.contextmanager
def _parsing(what: str) -> Iterator[None]:
    """Any exception of the URL parsers in the block as a ``UrlProblem`` (``what``: the
    reason's start). The one place they are caught: outside text breaks urllib.parse, urllib3,
    the IDNA codec and ipaddress in ways their documents do not list (ValueError, UnicodeError,
    LocationParseError, ...), and one bad URL must fail only its own item."""
    try:
        yield
    except Exception as exc:
        raise UrlProblem(f"{what}: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    """``exc`` as one line of printable, UTF-8-encodable text (a parser may quote the URL)."""
    text = " ".join(str(exc).split()).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 200 else text[:197] + "..."


def _ipv6_literal(host: str) -> str | None:
    """``host`` (bracketed or not) as a bracketed, compressed IPv6 literal; None when it is
    not an IPv6 address."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return f"[{ipaddress.IPv6Address(bare).compressed}]"
    except ValueError:
        return None


def normalize_host(host: str) -> str:
    """Lower case; an IPv6 literal bracketed and compressed (``[::1]``), with or without
    brackets on input. The one form allowed hosts and URL hosts are compared in."""
    host = host.lower()
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" not in bare:
        return host
    return _ipv6_literal(bare) or f"[{bare}]"


def _ascii_host(host: str) -> str:
    return host if host.isascii() else host.encode("idna").decode("ascii")


def allowed_host(text: str) -> str:
    """``text`` as an allowed host (``normalize_host``); ``UrlProblem`` unless it is a host
    name or an IPv6 address, as a URL's host is read: ``127.0.0.1:8901`` is a host and a
    port, not an IPv6 literal."""
    host = normalize_host(text)
    parsed = image_url(f"http://{host}/")
    if parsed is not None and parsed.host == host and parsed.port is None:
        return host
    if _HOST_AND_PORT.match(text):
        raise UrlProblem(f"{text!r} is a host and a port: give the host alone")
    raise UrlProblem(f"{text!r} is not a host name")


def parse_image_url(url: str) -> ImageUrl:
    """``url`` as urllib3 reads it; ``UrlProblem`` when it is not an http(s) URL with a host,
    does not parse, or when ``urllib.parse`` reads another scheme, host or port into it."""
    if not _AMBIGUOUS_CHARACTERS.isdisjoint(url):
        raise UrlProblem("ambiguous URL: holds a space or a control character")
    with _parsing("malformed URL"):
        url.encode("utf-8")  # lone surrogates (JSON's \ud800) fit no request, file nor index
        client = parse_url(url)
        split = urlsplit(url)
        split_port = split.port
        split_host = split.hostname or ""
        theirs_host = normalize_host(_ascii_host(split_host))
        path = unquote(split.path)
    if client.scheme not in ("http", "https") or not client.host:
        raise UrlProblem("not an http(s) URL")
    host = normalize_host(client.host)
    if not _HOST_NAME.match(host):
        raise UrlProblem(f"malformed URL: {host!r} is not a host name")
    theirs = (split.scheme.lower(), theirs_host, split_port)
    if theirs != (client.scheme, host, client.port):
        raise UrlProblem(f"ambiguous URL: read as host {host} and as {theirs[1] or 'no host'}")
    key = _canonical(split, split_host, split_port)
    return ImageUrl(scheme=client.scheme, host=host, port=client.port, key=key, path=path)


def _canonical(split: SplitResult, hostname: str, port: int | None) -> str:
    """Lower-case scheme and host, no default port, no fragment, ``/`` for an empty path."""
    scheme = split.scheme.lower()
    netloc = normalize_host(hostname)
    if port and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, split.path or "/", split.query, ""))


def image_url(url: str) -> ImageUrl | None:
    """``parse_image_url(url)``, or None for a URL it refuses."""
    try:
        return parse_image_url(url)
    except UrlProblem:
        return None


def url_rejection(url: str, *, allowed_hosts: frozenset[str]) -> str | None:
    """Why ``url`` must not be requested, or None; ``allowed_hosts`` normalized."""
    try:
        host = parse_image_url(url).host
    except UrlProblem as exc:
        return str(exc)
    return None if host in allowed_hosts else f"host {host} is not allowed"


def allowed_host_set(hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize_host(host) for host in hosts)


def normalize_url(url: str) -> str:
    """A URL's canonical form, for deduplication and the URL index (``ImageUrl.key`` of the
    URLs ``parse_image_url`` accepts, without its cost); ``UrlProblem`` when it does not
    parse."""
    with _parsing("malformed URL"):
        url.encode("utf-8")
        split = urlsplit(url)
        return _canonical(split, split.hostname or "", split.port)


def join_url(base: str, reference: str) -> str:
    """``reference`` (a redirect's ``Location``) resolved against ``base``; ``UrlProblem``
    when it does not parse."""
    with _parsing("malformed redirect Location"):
        return urljoin(base, reference)


def rejection(
    link: Link, *, mime_types: frozenset[str], allowed_hosts: frozenset[str]
) -> str | None:
    """Why ``link`` is not wanted, or None when it is. Goes by the reported type, not the
    file extension; animated images are wanted only when GIF is. ``allowed_hosts``
    normalized (``allowed_host_set``)."""
    reason = url_rejection(link.url, allowed_hosts=allowed_hosts)
    if reason is not None:
        return reason
    if link.type is None:
        return "unknown type"
    if link.type.startswith("video/"):
        return f"video ({link.type})"
    if link.animated and "image/gif" not in mime_types:
        return f"animated ({link.type})"
    if link.type not in mime_types:
        return f"type {link.type} not wanted"
    return None


def select_links(
    links: Iterable[Link], *, mime_types: frozenset[str], allowed_hosts: Iterable[str]
) -> Selection:
    """Keep wanted links in order, dropping repeats by image id (per host) and by normalized URL."""
    hosts = allowed_host_set(allowed_hosts)
    selected: list[Link] = []
    skipped: list[SkippedLink] = []
    first_by_key: dict[tuple[str, str], str] = {}
    for link in links:
        reason = rejection(link, mime_types=mime_types, allowed_hosts=hosts)
        if reason is None:
            parsed = parse_image_url(link.url)  # accepted by ``rejection``: parses again
            keys = [("id", f"{parsed.host}/{link.id}"), ("url", parsed.key)]
            first = next((first_by_key[key] for key in keys if key in first_by_key), None)
            if first is not None:
                reason = f"duplicate of {first}"
            else:
                first_by_key.update(dict.fromkeys(keys, link.url))
                selected.append(link)
                continue
        skipped.append(SkippedLink(url=link.url, id=link.id, reason=reason))
    return Selection(selected=selected, skipped=skipped)
