"""The report artifact: a snapshot's problems and skipped links with their reasons, and its
changes since the previous snapshot of the same source, as markdown."""

from __future__ import annotations

from gallery_snapshot.changes import LABELS
from gallery_snapshot.escaping import md_code
from gallery_snapshot.manifest import COUNT_KEYS
from gallery_snapshot.models import STORED, Manifest
from gallery_snapshot.reports import Markdown, ReportArtifact, ReportInput


def _listed(lines: list[str], total: int, *, limit: int) -> list[str]:
    """The first ``limit`` lines, then how many more there are."""
    return lines[:limit] + ([f"- … and {total - limit} more"] if total > limit else [])


def _problems(manifest: Manifest, limit: int) -> list[str]:
    """The first ``limit`` images not stored (a line each), then how many more there are."""
    entries: list[str] = []
    total = 0
    for image in manifest.images():
        if image.status in STORED:
            continue
        total += 1
        if total <= limit:
            entries.append(
                f"- **{image.status}** {md_code(image.id)} ({md_code(image.url)}): "
                + md_code(image.error or "")
            )
    lines = [f"## Problems ({total})", ""]
    if not total:
        return [*lines, "None: every selected image is stored and valid."]
    return lines + _listed(entries, total, limit=limit)


def _skipped(manifest: Manifest, limit: int) -> list[str]:
    lines = [f"## Skipped ({manifest.skipped_count})", ""]
    if not manifest.skipped_count:
        return [*lines, "None: every link was selected."]
    entries: list[str] = []
    for item in manifest.skipped():
        if len(entries) == limit:
            break
        entries.append(f"- {md_code(item.url)}: {md_code(item.reason)}")
    return lines + _listed(entries, manifest.skipped_count, limit=limit)


def _changes(manifest: Manifest, limit: int) -> list[str]:
    changes = manifest.header.changes
    if changes is None:
        return ["## Changes", "", "First snapshot of this source."]
    lines = [f"## Changes since {md_code(changes.previous)}", ""]
    for name, label in LABELS.items():
        urls: list[str] = getattr(changes, name)
        shown = f" ({', '.join(map(md_code, urls[:limit]))}{', …' if len(urls) > limit else ''})"
        lines.append(f"- {label}: {len(urls)}" + (shown if urls else ""))
    return [*lines, f"- unchanged: {changes.counts.unchanged}"]


def markdown_report(manifest: Manifest, *, limit: int = 50) -> str:
    """Problems (invalid, gone, failed) and skipped links with their reasons, as lists whose
    reasons wrap (first ``limit`` of each), and the manifest's changes since the previous
    snapshot of its source (the URLs of each kind: first ``limit``). Every
    value from a manifest is a code span: a listing's text shows as text, never as markdown."""
    counts = manifest.counts
    lines = [
        f"# Snapshot {md_code(manifest.snapshot_id)}",
        "",
        " · ".join(f"**{getattr(counts, key)}** {key}" for key in COUNT_KEYS),
        "",
        *_problems(manifest, limit),
        "",
        *_skipped(manifest, limit),
        "",
        *_changes(manifest, limit),
    ]
    return "\n".join(lines) + "\n"


def render(report: ReportInput) -> Markdown:
    return Markdown(markdown_report(report.manifest))


ARTIFACT = ReportArtifact(
    key="report", description="Problems and changes of snapshot {snapshot_id}", render=render
)
