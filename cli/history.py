"""The history's commands: ``snapshots``, ``diff`` and ``find`` (plain Python, no Prefect
server needed). Whatever a listing chose (URLs, ids, a source's text) is printed on one line
(``escaping.one_line``): it can forge no line of its own nor act on the terminal."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.failure import guarded
from cli.store import DEFAULT_OUT, OUT_HELP
from gallery_snapshot.changes import LISTS
from gallery_snapshot.escaping import one_line
from gallery_snapshot.history import (
    HistoryQueryError,
    Snapshot,
    changes_between,
    choose_pair,
    find_image,
    matching_source,
    snapshots,
    source_label,
    source_slug,
    timelines,
)
from gallery_snapshot.models import Changes
from gallery_snapshot.store import SnapshotStore, open_store

SOURCE_HELP = "only the source with this slug, or whose label holds this text"


def add_commands(commands: Any) -> None:
    """Register ``snapshots``, ``diff`` and ``find`` on the CLI's subcommands."""
    listing = commands.add_parser(
        "snapshots",
        help="list the snapshots of each source, with what changed in each",
        description="List every snapshot of the store by source, oldest first: when it "
        "finished, its counts and its changes since the previous snapshot of its source.",
    )
    listing.add_argument("--out", default=DEFAULT_OUT, metavar="DIR|URL", help=OUT_HELP)
    listing.add_argument("--source", metavar="TEXT", help=SOURCE_HELP)
    listing.set_defaults(handler=_snapshots)

    diff = commands.add_parser(
        "diff",
        help="show what changed between two snapshots",
        description="Show what changed from snapshot A to snapshot B (new, vanished, came "
        "back, changed, gone by cause). With one id: that snapshot since the previous one of its "
        "source; with neither: the last two snapshots of the source (of the latest snapshot).",
    )
    diff.add_argument("ids", nargs="*", metavar="A B", help="snapshot ids, older first")
    diff.add_argument("--out", default=DEFAULT_OUT, metavar="DIR|URL", help=OUT_HELP)
    diff.add_argument("--source", metavar="TEXT", help=SOURCE_HELP)
    diff.add_argument("--json", action="store_true", help="print the changes as JSON")
    diff.set_defaults(handler=_diff)

    find = commands.add_parser(
        "find",
        help="show every snapshot an image appears in",
        description="Show every snapshot whose manifest lists the image of this URL, sha256 "
        "or id, with its status there, and when it was first and last seen.",
    )
    find.add_argument("image", metavar="URL|SHA256|ID")
    find.add_argument("--out", default=DEFAULT_OUT, metavar="DIR|URL", help=OUT_HELP)
    find.set_defaults(handler=_find)


def _existing(out: str) -> SnapshotStore:
    store = open_store(out)
    store.open_existing(upgrade=False)
    return store


def _row(snapshot: Snapshot) -> str:
    header = snapshot.header
    counts, changes = header.counts, header.changes
    stored = counts.downloaded + counts.reused
    kinds = ("new", "vanished", "came_back", "changed")
    changed = "".join(f"{getattr(changes.counts, name) if changes else '-':>10}" for name in kinds)
    return (
        f"  {one_line(header.snapshot_id):<26}{one_line(header.finished_at):<34}"
        f"{stored:>7}{counts.gone:>6}{counts.failed + counts.invalid:>8}{changed}"
    )


def _snapshots(args: argparse.Namespace) -> None:
    found = guarded(lambda: matching_source(snapshots(_existing(args.out)), args.source))
    lines = timelines(found)
    for line in lines.values():
        source = line[0].header.source
        print(f"{one_line(source_label(source))}  [{source_slug(source)}]")
        print(
            f"  {'snapshot':<26}{'finished':<34}{'stored':>7}{'gone':>6}{'failed':>8}"
            + "".join(f"{name:>10}" for name in ("new", "vanished", "came back", "changed"))
        )
        for snapshot in line:
            print(_row(snapshot))
    print(f"{len(found)} snapshots of {len(lines)} sources")


def _diff_text(older: str, newer: str, changes: Changes) -> list[str]:
    lines = [f"changes from {one_line(older)} to {one_line(newer)}:"]
    for name in LISTS:
        urls: list[str] = getattr(changes, name)
        lines.append(f"  {name.replace('_', ' ')}: {len(urls)}")
        lines += [f"    {one_line(url)}" for url in urls]
    return [*lines, f"  unchanged: {changes.counts.unchanged}"]


def _diff(args: argparse.Namespace) -> None:
    if len(args.ids) > 2:
        guarded(lambda: _refuse("give at most two snapshot ids (A B)"))

    def compared() -> tuple[str, str, Changes]:
        store = _existing(args.out)
        older, newer = choose_pair(snapshots(store), args.ids, args.source)
        return older, newer, changes_between(store, older, newer)

    older, newer, changes = guarded(compared)
    if args.json:
        document = {"from": older, "to": newer, **changes.model_dump(exclude={"previous"})}
        print(json.dumps(document, indent=2))  # ASCII: escapes whatever a listing chose
    else:
        print("\n".join(_diff_text(older, newer, changes)))


def _refuse(message: str) -> None:
    raise HistoryQueryError(message)


def _find(args: argparse.Namespace) -> None:
    found = guarded(lambda: find_image(_existing(args.out), args.image))
    if not found:
        guarded(lambda: _refuse(f"no snapshot lists {one_line(args.image)}"))
    for each in found:
        print(
            f"{one_line(each.snapshot_id)}  {each.status:<10} {one_line(each.url)}  "
            f"id {one_line(each.id)}  sha256 {one_line(each.sha256 or '-')}  "
            f"[{one_line(each.source)}]"
        )
    print(f"first seen {found[0].snapshot_id}, last seen {found[-1].snapshot_id}")
