"""The store's commands: ``verify`` and ``prune`` (plain Python, no Prefect server needed)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cli.failure import guarded
from gallery_snapshot.config import parse_duration
from gallery_snapshot.store.maintenance import prune_store, verify_store

# The commands' default folder, gallery-dl's habit: one named after the tool. (The store keeps
# its snapshots in DIR/snapshots/, so a DIR named snapshots nested them.)
DEFAULT_OUT = "gallery-snapshot"
OUT_HELP = f"output folder, or object store (s3://BUCKET/PREFIX, …) (default: {DEFAULT_OUT})"


def add_commands(commands: Any) -> None:
    """Register ``verify`` and ``prune`` on the CLI's subcommands."""
    verify = commands.add_parser(
        "verify",
        help="re-hash every stored image the manifests reference",
        description="Re-hash every stored file that any manifest references; print one line "
        "per problem (missing, wrong sha256, symbolic link, unreadable) and a summary. "
        "Exit 0 when all hold, 1 otherwise.",
    )
    verify.add_argument("--out", default=DEFAULT_OUT, metavar="DIR|URL", help=OUT_HELP)
    verify.set_defaults(handler=_verify)

    prune = commands.add_parser(
        "prune",
        help="forget old snapshots and delete images no kept snapshot references",
        description="Per source, keep the --keep-last latest snapshots and those within "
        "--keep-within of the latest; remove the other manifests, then every stored image "
        "that no kept snapshot references. Waits for running snapshots of the folder.",
    )
    prune.add_argument("--out", default=DEFAULT_OUT, metavar="DIR|URL", help=OUT_HELP)
    prune.add_argument(
        "--keep-last", type=_positive, metavar="N", help="latest snapshots to keep, per source"
    )
    prune.add_argument(
        "--keep-within",
        type=_duration,
        metavar="DURATION",
        help="keep snapshots within this of the latest: 12h, 7d, 2w, 6m (months), 1y",
    )
    prune.add_argument("--dry-run", action="store_true", help="print what would go; change nothing")
    prune.set_defaults(handler=_prune)


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return number


def _duration(text: str) -> Any:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _ProgressLine:
    """``verifying 1200/20000`` rewritten in place on a terminal, at most ten times a second."""

    def __init__(self) -> None:
        self.shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.shown >= 0.1 or done == total:
            self.shown = now
            print(f"\rverifying {done}/{total} files", end="", file=sys.stderr, flush=True)
            if done == total:
                print(file=sys.stderr)


def _verify(args: argparse.Namespace) -> None:
    started = time.monotonic()
    progress = _ProgressLine() if sys.stderr.isatty() else None
    report = guarded(lambda: verify_store(args.out, progress=progress))
    for problem in report.problems:
        print(problem)
    verdict = f"{len(report.problems)} problem(s)" if report.problems else "all hold"
    print(
        f"verified {report.files} stored files referenced by {report.snapshots} snapshots "
        f"in {time.monotonic() - started:.1f} s: {verdict}"
    )
    if report.problems:
        raise SystemExit(1)


def _prune(args: argparse.Namespace) -> None:
    report = guarded(
        lambda: prune_store(
            args.out, keep_last=args.keep_last, keep_within=args.keep_within, dry_run=args.dry_run
        )
    )
    would = "would remove" if args.dry_run else "removed"
    for snapshot_id in report.removed:
        print(f"{would} snapshot {snapshot_id}")
    print(
        f"kept {len(report.kept)} snapshots; {would} {len(report.removed)} snapshots and "
        f"{report.files_removed} stored files ({report.bytes_removed / 1e6:.1f} MB)"
    )
