"""What a person's viewer would make of the project's markdown and HTML: every link, image and
raw HTML tag in it, and every bare URL a GFM renderer would turn into a link, for tests to hold
against an allowlist of what the project itself emits.

Markdown is parsed by markdown-it-py (CommonMark, raw HTML on, GFM tables and strikethrough);
GFM's extended autolinks (``www.``, ``http(s)://``, ``ftp://``, ``mailto:``, e-mail addresses),
which both of Prefect's UIs render, are found in what the parser left as plain text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.token import Token

# Wider than GFM's rules on purpose: anything a renderer might autolink counts.
_AUTOLINKABLE = re.compile(
    r"(?i)(?:[a-z][a-z0-9+.-]*://|www\.|mailto:|xmpp:|[a-z0-9._+-]+@[a-z0-9_-]+\.[a-z0-9_-])"
)


@dataclass
class Rendered:
    links: list[str] = field(default_factory=list)  # hrefs, autolinks included
    images: list[str] = field(default_factory=list)  # srcs
    html: list[str] = field(default_factory=list)  # raw HTML the renderer would pass on
    bare_urls: list[str] = field(default_factory=list)  # plain text a GFM viewer would link
    code: list[str] = field(default_factory=list)  # code span contents
    text: list[str] = field(default_factory=list)  # plain text


_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def render_markdown(markdown: str) -> Rendered:
    found = Rendered()

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            if token.type == "link_open":
                found.links.append(str(token.attrGet("href")))
            elif token.type == "image":
                found.images.append(str(token.attrGet("src")))
            elif token.type in ("html_inline", "html_block"):
                found.html.append(token.content)
            elif token.type == "code_inline":
                found.code.append(token.content)
            elif token.type == "text":
                found.text.append(token.content)
                found.bare_urls += _AUTOLINKABLE.findall(token.content)
            if token.children:
                walk(token.children)

    walk(_MARKDOWN.parse(markdown))
    return found


def inline_text(markdown: str) -> str:
    """What a table cell rendered as markdown shows (Prefect's UI v1 does that)."""
    rendered = render_markdown(markdown)
    return "".join(rendered.text + rendered.code)


class Page(HTMLParser):
    """Tags, URL-bearing attributes, event handlers and text of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.text: list[str] = []
        self.handlers: list[str] = []  # on* attributes: script by another name

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("href", "src", "srcset", "action", "formaction", "poster", "data"):
                self.urls.append((tag, name, value or ""))
            if name.startswith("on"):
                self.handlers.append(name)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_page(html: str) -> Page:
    parser = Page()
    parser.feed(html)
    parser.close()
    return parser
