"""URL text that parsers read differently, for property-based tests of every place a URL is
parsed, normalized, joined or encoded: brackets and IPv6 zone ids, compatibility characters
that NFKC changes (full-width and ideographic dots and colons among them), ``%`` escapes,
doubled ports, backslashes, userinfo, control characters and, where JSON can carry them, lone
surrogates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from hypothesis import strategies as st

# Single characters parsers strip, map, split at or refuse differently.
AWKWARD_CHARACTERS = [
    *"[]@:/\\?#%;.~ \t\x00\x01\x0b\x1f\x7f\x85\xa0\xad",
    "\uff0e",  # full-width full stop: "." under NFKC
    "\u3002",  # ideographic full stop: a label separator to IDNA
    "\uff1a",  # full-width colon: ":" under NFKC
    "\uff20",  # full-width commercial at
    "\uff0f",  # full-width solidus
    "\uff03",  # full-width number sign
    "\ufe56",  # small question mark: "?" under NFKC
    "\u2100",  # account of: "a/c" under NFKC
    "\u2474",  # parenthesized digit one: "(1)" under NFKC
    "\ufb01",  # fi ligature
    "\u0130",  # capital I with dot: longer when lower-cased
    "\u00df",  # sharp s: IDNA 2003 and 2008 disagree
    "\u200b",  # zero-width space
    "\u2028",  # line separator
    "\u3000",  # ideographic space
    "\uff18",  # full-width digit eight
]
LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
ESCAPES = ["%2f", "%40", "%5c", "%25", "%2e", "%3a", "%5b", "%00", "%zz", "%25eth0", "%"]

SCHEMES = ["http://", "https://", "HTTP://", "http:", "http:/", "http:\\\\", "//", "ftp://", ""]
USERINFO = ["", "user@", "user:pass@", "a%40b@", ":@", "\\@", "@@", "u\uff20"]
HOSTS = [
    "[::1]",
    "[::1",
    "::1]",
    "[fe80::1%25eth0]",
    "[fe80::1%eth0]",
    "[::ffff:127.0.0.2]",
    "[127.0.0.1]",
    "127.0.0.1\uff1a8080",
    "127\u30020\u30020\u30021",
    "127\uff0e0\uff0e0\uff0e1",
    "i.imgur.com\uff0e",
    "xn--zz",
    "xn--",
    "a..b",
    "\u00df.example",
    "\ufb01le.example",
    "\uff49.imgur.com",
    "",
]
PORTS = ["", ":80", ":8080:80", ":0", ":99999", ":+80", ":", ":\uff18\uff10", ":-1", "::80"]
PATHS = [
    "/a.jpg",
    "/",
    "",
    "/%2e%2e/a.jpg",
    "/\\a.jpg",
    "/a%zz.jpg",
    "/a%00.jpg",
    "/a b.jpg",
    "/\u2100.jpg",
    "/a.jpg?q=%25",
    "?x=1",
    "#frag",
    "/a.jpg#@127.0.0.2",
]


def awkward_urls(hosts: Sequence[str] = (), *, surrogates: bool = False) -> st.SearchStrategy[str]:
    """Strings a URL field or line may hold: URLs assembled part by part from the pieces
    above and ``hosts`` (the ``host:port``s a test serves or traps; as pieces, any text of
    the test's own), free runs of those pieces and characters, and any text.
    ``surrogates``: lone surrogates too (JSON's ``\\ud800``)."""
    characters = AWKWARD_CHARACTERS + (LONE_SURROGATES if surrogates else [])
    host_names = st.sampled_from([*hosts, *HOSTS])
    piece = st.sampled_from(characters) | st.sampled_from(
        [*SCHEMES, *USERINFO, *HOSTS, *PORTS, *PATHS, *ESCAPES, *hosts]
    )
    any_text = st.text(st.characters(codec=None if surrogates else "utf-8"), max_size=30)
    assembled = st.tuples(
        st.sampled_from(SCHEMES),
        st.sampled_from(USERINFO),
        host_names,
        st.sampled_from(PORTS),
        st.lists(piece, max_size=2).map("".join),
        st.sampled_from(PATHS),
    ).map("".join)
    return st.one_of(assembled, st.lists(piece, max_size=12).map("".join), any_text)


def unaccounted_lines(text: str, urls: list[str], reasons: list[str]) -> list[str]:
    """The lines of the URLs file ``text`` (not blank, not ``#`` comments) that are neither
    one of ``urls`` (links, by their whole URL) nor named by one of ``reasons`` (skipped
    lines, "line N: ..."); none when every line is accounted for, and nothing else is."""
    numbered = Counter(reason.split(":")[0] for reason in reasons if reason.startswith("line "))
    by_url = Counter(urls)
    lost = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if numbered[f"line {number}"]:
            numbered[f"line {number}"] -= 1
        elif by_url[line]:
            by_url[line] -= 1
        else:
            lost.append(line)
    return lost + list((+numbered).elements()) + list((+by_url).elements())
