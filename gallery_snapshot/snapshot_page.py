"""A snapshot for a person browsing the output folder: ``snapshots/<id>/index.html``, a static
page with the images in rank order (thumbnails linking to the stored files), each image's
status, URL and reason, and the skipped links. It opens from the file system, no server needed;
``manifest.json`` stays the machine-readable record."""

from __future__ import annotations

import io

from gallery_snapshot.changes import LABELS, LISTS
from gallery_snapshot.escaping import html_text
from gallery_snapshot.manifest import COUNT_KEYS
from gallery_snapshot.models import STORED, ImageRecord, Manifest
from gallery_snapshot.store import is_stored_relpath, store_named
from gallery_snapshot.store.layout import HISTORY_PAGE, PAGE_NAME, ROOT_FROM_PAGE, page_relpath

CHANGES_SHOWN = 60  # thumbnails of each kind of change on the page

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
.counts span { margin-right: 1.2em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 12px; }
figure { margin: 0; padding: 6px; background: #fff; border: 1px solid #ddd; }
figure img { width: 100%; height: 150px; object-fit: contain; background: #eee; }
figure.problem { border-color: #d33; }
figcaption { font-size: 12px; overflow-wrap: anywhere; }
.status { font-weight: 600; }
.url { color: #666; }
td { padding: 2px 8px; vertical-align: top; overflow-wrap: anywhere; }
"""


def _figure(image: ImageRecord) -> str:
    label = f"#{html_text(image.rank)} {html_text(image.id)}"
    path = image.path
    if image.status in STORED and path is not None and is_stored_relpath(path):
        target = html_text(f"{ROOT_FROM_PAGE}{path}")
        picture = f'<a href="{target}"><img src="{target}" loading="lazy" alt=""></a>'
        detail = html_text(f"{image.width}x{image.height} {image.format}")
        css = ""
    else:
        picture, detail, css = "", html_text(image.error or ""), ' class="problem"'
    return (
        f"<figure{css}>{picture}<figcaption>{label} "
        f'<span class="status">{html_text(image.status)}</span><br>'
        f'<span class="url">{html_text(image.url)}</span><br>{detail}</figcaption></figure>'
    )


def _records_of(manifest: Manifest | None, urls: set[str]) -> dict[str, ImageRecord]:
    """The stored records of ``urls`` (only those: a gallery of 100,000 images changes by a
    few), the first of a repeated URL."""
    found: dict[str, ImageRecord] = {}
    for image in manifest.stored() if manifest is not None else ():
        if image.url in urls:
            found.setdefault(image.url, image)
    return found


def _thumbnail(url: str, image: ImageRecord | None) -> str:
    """A change's figure: the image as stored now (then, for a vanished one), and its URL."""
    picture = ""
    if image is not None and image.path is not None and is_stored_relpath(image.path):
        target = html_text(f"{ROOT_FROM_PAGE}{image.path}")
        picture = f'<a href="{target}"><img src="{target}" loading="lazy" alt=""></a>'
    return f'<figure>{picture}<figcaption class="url">{html_text(url)}</figcaption></figure>'


def changes_section(manifest: Manifest, previous: Manifest | None) -> str:
    """ "Changes since the previous snapshot": each kind of change with its count and the
    first ``CHANGES_SHOWN`` of its images, as thumbnails (a vanished one as ``previous``
    stored it)."""
    changes = manifest.header.changes
    if changes is None:
        return '<h2 id="changes">Changes</h2><p>First snapshot of this source.</p>'
    earlier = html_text(changes.previous)
    parts = [
        f'<h2 id="changes">Changes since the previous snapshot, '
        f'<a href="../{earlier}/{PAGE_NAME}">{earlier}</a></h2>'
        f"<p>{html_text(changes.counts.unchanged)} unchanged</p>"
    ]
    shown = {name: getattr(changes, name)[:CHANGES_SHOWN] for name in LISTS}
    now = _records_of(manifest, {url for name, urls in shown.items() for url in urls})
    then = _records_of(previous, set(shown["vanished"]))
    for name, urls in shown.items():
        total = getattr(changes.counts, name)
        parts.append(f'<h3 class="{name}">{html_text(LABELS[name])} ({total})</h3>')
        if urls:
            figures = "".join(_thumbnail(url, now.get(url) or then.get(url)) for url in urls)
            more = f"<p>… and {total - len(urls)} more</p>" if total > len(urls) else ""
            parts.append(f'<div class="grid">{figures}</div>{more}')
    return "".join(parts)


def render_page(manifest: Manifest, previous: Manifest | None = None) -> bytes:
    """The snapshot page as UTF-8 HTML, with the changes since ``previous`` (the snapshot
    its changes are against). Every value from the manifest is text, escaped: its
    only links are to the store's own files (a listing's URLs are shown, not linked). Written
    figure by figure: joined and concatenated as one string, 100,000 images took ~150 MB
    above the page's own ~37 MB."""
    header = manifest.header
    snapshot_id = html_text(header.snapshot_id)
    counts = [(key, getattr(header.counts, key)) for key in COUNT_KEYS]
    out = io.BytesIO()

    def put(text: str) -> None:
        out.write(text.encode("utf-8"))

    put(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Snapshot {snapshot_id}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Snapshot {snapshot_id}</h1>"
        f"<p>{html_text(header.started_at)} to {html_text(header.finished_at)} &middot; "
        f'<a href="manifest.json">manifest.json</a> &middot; <a href="{ROOT_FROM_PAGE}'
        f'{HISTORY_PAGE}">all snapshots</a></p><p class="counts">'
        + "".join(f"<span><b>{html_text(value)}</b> {key}</span>" for key, value in counts)
        + "</p>"
        + changes_section(manifest, previous)
        + '<h2>Images</h2><div class="grid">'
    )
    for image in manifest.images():
        put(_figure(image))
    put(
        f"</div><h2>Skipped ({manifest.skipped_count})</h2>"
        "<table><tr><th>link</th><th>reason</th></tr>"
    )
    for item in manifest.skipped():
        put(f"<tr><td>{html_text(item.url)}</td><td>{html_text(item.reason)}</td></tr>")
    put("</table></body></html>\n")
    return out.getvalue()


def write_snapshot_page(out_dir: str, manifest: Manifest, previous: Manifest | None = None) -> str:
    """Write ``snapshots/<id>/index.html``; return its path."""
    page = render_page(manifest, previous)
    return store_named(out_dir).write(page_relpath(manifest.snapshot_id), page)
