"""The filter step: keep the wanted formats from allowed hosts, once each.

Pure functions; every link dropped is returned with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from gallery_snapshot.models import Link, Selection, SkippedLink

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str:
    """A canonical form for deduplication: lower-case scheme and host, no default port,
    no fragment, ``/`` for an empty path."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def rejection(
    link: Link, *, mime_types: frozenset[str], allowed_hosts: Iterable[str]
) -> str | None:
    """Why ``link`` is not wanted, or None when it is. Goes by the reported type, not the
    file extension; animated images are wanted only when GIF is."""
    host = host_of(link.url)
    if urlsplit(link.url).scheme not in ("http", "https") or not host:
        return "not an http(s) URL"
    if host not in allowed_hosts:
        return f"host {host} is not allowed"
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
    hosts = frozenset(host.lower() for host in allowed_hosts)
    selected: list[Link] = []
    skipped: list[SkippedLink] = []
    first_by_key: dict[tuple[str, str], str] = {}
    for link in links:
        reason = rejection(link, mime_types=mime_types, allowed_hosts=hosts)
        if reason is None:
            keys = [("id", f"{host_of(link.url)}/{link.id}"), ("url", normalize_url(link.url))]
            first = next((first_by_key[key] for key in keys if key in first_by_key), None)
            if first is not None:
                reason = f"duplicate of {first}"
            else:
                first_by_key.update(dict.fromkeys(keys, link.url))
                selected.append(link)
                continue
        skipped.append(SkippedLink(url=link.url, id=link.id, reason=reason))
    return Selection(selected=selected, skipped=skipped)
