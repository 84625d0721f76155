"""The store's own page, ``index.html`` at its root: every source with its timeline of
snapshots (when, counts, and how many images were new, vanished, came back or changed),
each linking to its snapshot's page. Rewritten from the manifests' headers after each
snapshot is recorded, through the store (a file, or an object beside the manifests)."""

from __future__ import annotations

import io

from gallery_snapshot.escaping import html_text
from gallery_snapshot.history import Snapshot, remember_snapshots, source_label, timelines
from gallery_snapshot.manifest import StoreLike, opened
from gallery_snapshot.models import ManifestHeader
from gallery_snapshot.store.layout import HISTORY_PAGE, page_relpath

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child, td.time { text-align: left; }
td.changed { font-weight: 600; }
"""
COLUMNS = ("snapshot", "finished", "stored", "gone", "failed", "skipped")
CHANGE_COLUMNS = ("new", "vanished", "came_back", "changed")


def _row(snapshot: Snapshot) -> str:
    header = snapshot.header
    counts, changes = header.counts, header.changes
    snapshot_id = html_text(header.snapshot_id)
    cells = [
        f'<td><a href="{html_text(page_relpath(header.snapshot_id))}">{snapshot_id}</a></td>',
        f'<td class="time">{html_text(header.finished_at)}</td>',
        *(
            f"<td>{value}</td>"
            for value in (
                counts.downloaded + counts.reused,
                counts.gone,
                counts.failed + counts.invalid,
                counts.skipped,
            )
        ),
    ]
    for name in CHANGE_COLUMNS:
        value = getattr(changes.counts, name) if changes is not None else None
        css = ' class="changed"' if value else ""
        cells.append(f"<td{css}>{'-' if value is None else value}</td>")
    return f"<tr>{''.join(cells)}</tr>"


def render_history_page(found: list[Snapshot]) -> bytes:
    """The page of ``found`` (oldest first) as UTF-8 HTML, newest first under each source.
    Every value from a manifest is text, escaped; the only links are to snapshot pages."""
    out = io.BytesIO()
    out.write(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Snapshots</title><style>{_STYLE}</style></head><body>"
        f"<h1>Snapshots</h1><p>{len(found)} snapshots</p>".encode()
    )
    names = [*COLUMNS, *(name.replace("_", " ") for name in CHANGE_COLUMNS)]
    head = "<tr>" + "".join(f"<th>{name}</th>" for name in names) + "</tr>"
    for line in timelines(found).values():
        label = html_text(source_label(line[0].header.source))
        rows = "".join(_row(snapshot) for snapshot in reversed(line))
        out.write(f'<h2 class="source">{label}</h2><table>{head}{rows}</table>'.encode())
    out.write(b"</body></html>\n")
    return out.getvalue()


def write_history_page(store: StoreLike, recorded: ManifestHeader | None = None) -> str:
    """Write the store's ``index.html`` of every snapshot now in it, ``recorded`` the latest
    (and the ``history.json`` it is made of); return its location. After a snapshot is
    recorded, and after a prune removed some."""
    store = opened(store)
    return store.write(HISTORY_PAGE, render_history_page(remember_snapshots(store, recorded)))
