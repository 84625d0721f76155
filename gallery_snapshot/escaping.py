"""Outside text (listing ids, URLs, types, reasons, a server's error prose) shown as text: on
one line in logs and messages, as markdown code spans in artifacts, escaped in HTML. Every
renderer goes through here, so a listing can say anything and inject nothing: no line of its
own in a log, no terminal or log-viewer escape sequence, no link, image or HTML tag.

Why code spans: inside one, CommonMark, GFM (GitHub, marked in Prefect's UI v1, remark-gfm in
its UI v2) and markdown-it make no link, autolink, image or HTML; backslash escaping alone
leaves GFM's bare-URL autolinks (``www.``, ``https://``, e-mail addresses) alive.
Why ``[:]//`` in logs: both of Prefect's UIs turn ``http(s)://…`` in a log line into a link."""

from __future__ import annotations

import re
import unicodedata
from html import escape

# Control and format characters (ESC, bidi overrides, zero-width ones), line and paragraph
# separators and lone surrogates: each shown as an escape, never acted on.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BACKTICKS = re.compile(r"`+")


def _visible(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: object) -> str:
    """``text`` on one line: control, format and separator characters as visible escapes
    (``\\n``, ``\\x1b``, ``\\u202e``); anything else as it is."""
    text = str(text)
    if text.isprintable():  # C speed: almost every value takes this way out
        return text
    return "".join(
        _visible(char) if unicodedata.category(char) in _HIDDEN else char for char in text
    )


def unlinked(text: object) -> str:
    """``text`` for a log line or an error message: on one line, and with ``://`` written
    ``[:]//`` so that no log viewer makes a link of it."""
    return one_line(text).replace("://", "[:]//")


def md_code(text: object) -> str:
    """``text`` as a markdown code span that shows exactly ``one_line(text)``: fenced by more
    backticks than any run inside it, padded where it starts or ends with a backtick or a space
    (CommonMark strips one space from each side of all but blank content). Empty text is no
    span at all."""
    text = one_line(text)
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    if (text[0] in "` " or text[-1] in "` ") and text.strip(" "):
        text = f" {text} "
    return f"{fence}{text}{fence}"


def html_text(text: object) -> str:
    """``text`` as HTML text or attribute value: on one line, ``&<>"'`` escaped."""
    return escape(one_line(text))


def one_line_text(value: str | None) -> str | None:
    """Refuse a parameter that would not show as itself on one line: a run's parameters end
    in its name, its log lines (a worker's terminal too) and its messages, where a line break
    forges a line and ESC or a bidi override acts on the viewer."""
    if value is not None and one_line(value) != value:
        raise ValueError(f"{value!r} holds a line break, a control or a format character")
    return value
