"""The report artifact: a snapshot's problems and skipped links with their reasons, and its
changes since the previous snapshot of the same source, as markdown."""

from __future__ import annotations

from gallery_snapshot.escaping import md_code
from gallery_snapshot.manifest import COUNT_KEYS
from gallery_snapshot.models import STORED, Manifest
from gallery_snapshot.reports import Markdown, ReportArtifact, ReportInput


def stored_ids(manifest: Manifest) -> list[str]:
    return [image.id for image in manifest.stored()]


def changes(previous: Manifest | None, current: Manifest) -> tuple[list[str], list[str]]:
    """Image ids new in ``current`` and ids that dropped out since ``previous``."""
    now = stored_ids(current)
    before = stored_ids(previous) if previous else []
    now_set, before_set = set(now), set(before)  # once: a set per image made this quadratic
    return [i for i in now if i not in before_set], [i for i in before if i not in now_set]


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


def _changes(manifest: Manifest, previous: Manifest | None, limit: int) -> list[str]:
    if previous is None:
        return ["## Changes", "", "First snapshot of this source."]
    new, dropped = changes(previous, manifest)
    return [
        f"## Changes since {md_code(previous.snapshot_id)}",
        "",
        f"- new: {len(new)}" + (f" ({', '.join(map(md_code, new[:limit]))})" if new else ""),
        f"- dropped out: {len(dropped)}"
        + (f" ({', '.join(map(md_code, dropped[:limit]))})" if dropped else ""),
    ]


def markdown_report(manifest: Manifest, previous: Manifest | None, *, limit: int = 50) -> str:
    """Problems (invalid, gone, failed) and skipped links with their reasons, as lists whose
    reasons wrap (first ``limit`` of each), and changes since the previous snapshot. Every
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
        *_changes(manifest, previous, limit),
    ]
    return "\n".join(lines) + "\n"


def render(report: ReportInput) -> Markdown:
    return Markdown(markdown_report(report.manifest, report.previous))


ARTIFACT = ReportArtifact(
    key="report", description="Problems and changes of snapshot {snapshot_id}", render=render
)
