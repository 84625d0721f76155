"""The filter step: keep the wanted formats from allowed hosts, once each.

Pure functions; every link dropped is returned with its reason. A URL is read with the parser
the HTTP client connects with (urllib3's), and refused when ``urllib.parse`` reads another
scheme, host or port into it: the host that is checked is the host that is connected to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from gallery_snapshot.models import Link, Selection, SkippedLink

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters that parsers strip, drop or stop at differently (C0 controls, space, DEL).
_AMBIGUOUS_CHARACTERS = frozenset(map(chr, [*range(0x21), 0x7F]))
# A normalized host the HTTP client sends as it is: DNS labels, or an IPv6 literal.
_HOST_NAME = re.compile(r"^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?$|^\[[0-9a-f:.]+\]$")


class UrlProblem(ValueError):
    """A URL that must not be requested; ``str()`` is the reason, one line."""


@dataclass(frozen=True, kw_only=True)
class ImageUrl:
    """An http(s) URL as the HTTP client will connect to it; ``host`` is normalized
    (``normalize_host``)."""

    scheme: str
    host: str
    port: int | None


def normalize_host(host: str) -> str:
    """Lower case; an IPv6 literal bracketed and compressed (``[::1]``), with or without
    brackets on input. The one form allowed hosts and URL hosts are compared in."""
    host = host.lower()
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" not in bare:
        return host
    try:
        return f"[{ipaddress.IPv6Address(bare).compressed}]"
    except ValueError:
        return f"[{bare}]"


def _ascii_host(host: str) -> str:
    try:
        return host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UrlProblem(f"malformed URL: host {host!r} ({exc})") from None


def parse_image_url(url: str) -> ImageUrl:
    """``url`` as urllib3 reads it; ``UrlProblem`` when it is not an http(s) URL with a host,
    does not parse, or when ``urllib.parse`` reads another scheme, host or port into it."""
    if any(char in _AMBIGUOUS_CHARACTERS for char in url):
        raise UrlProblem("ambiguous URL: holds a space or a control character")
    try:
        client = parse_url(url)
        split = urlsplit(url)
        split_port = split.port
        split_host = split.hostname
    except (LocationParseError, ValueError) as exc:
        raise UrlProblem(f"malformed URL: {_one_line(exc)}") from None
    if client.scheme not in ("http", "https") or not client.host:
        raise UrlProblem("not an http(s) URL")
    host = normalize_host(client.host)
    if not _HOST_NAME.match(host):
        raise UrlProblem(f"malformed URL: {host!r} is not a host name")
    theirs = (split.scheme.lower(), normalize_host(_ascii_host(split_host or "")), split_port)
    if theirs != (client.scheme, host, client.port):
        raise UrlProblem(f"ambiguous URL: read as host {host} and as {theirs[1] or 'no host'}")
    return ImageUrl(scheme=client.scheme, host=host, port=client.port)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


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
    """A canonical form for deduplication: lower-case scheme and host, no default port,
    no fragment, ``/`` for an empty path. Only for URLs ``parse_image_url`` accepts."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = normalize_host(parts.hostname or "")
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


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
            host = parse_image_url(link.url).host
            keys = [("id", f"{host}/{link.id}"), ("url", normalize_url(link.url))]
            first = next((first_by_key[key] for key in keys if key in first_by_key), None)
            if first is not None:
                reason = f"duplicate of {first}"
            else:
                first_by_key.update(dict.fromkeys(keys, link.url))
                selected.append(link)
                continue
        skipped.append(SkippedLink(url=link.url, id=link.id, reason=reason))
    return Selection(selected=selected, skipped=skipped)
