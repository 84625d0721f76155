"""The command's parser: its subcommands and their options (the snapshot's generated from
the config model, see ``options``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import version

from cli import demo, history, prefect_commands, snapshot, store
from cli.failure import Parser
from cli.options import add_config_options, options

EPILOG = """\
examples:
  gallery-snapshot demo                         snapshot the built-in demo gallery
  IMGUR_CLIENT_ID=... gallery-snapshot run --section top --sort top --pages 2
  gallery-snapshot run --urls-file links.txt --allow-host example.org --out snaps
  grep -h jpg lists/*.txt | gallery-snapshot run --urls-file - --allow-host example.org
  gallery-snapshot run -q --fail-on 5           quiet unless over 5 % failed (cron, CI)
  gallery-snapshot demo --out s3://my-bucket/demo   into S3 (AWS_* from the environment)
  gallery-snapshot run --runner dask --dask-address tcp://scheduler:8786 --out s3://b/p
  gallery-snapshot setup                        prepare a Prefect server for the deployments
  gallery-snapshot server status                the local Prefect server runs use

Without PREFECT_API_URL, runs report to this user's local Prefect server, started in the
background on first use (gallery-snapshot server stop stops it).

exit status:
  0    the snapshot completed (what happened to single images is in its manifest)
  1    the snapshot could not complete (client id rejected, API unreachable, disk full,
       object store refusing the credentials, the Prefect API lost)
  2    bad options, or no client id
  3    the snapshot completed, but more of its images failed or were invalid than --fail-on
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM)
"""


def _percent(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 100:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{value!r} is not a percentage (0-100)")
    return number


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "terminal and exit status",
        "On a terminal, a progress bar on stderr (images fetched, rate, time left) stands in "
        "for the log lines; elsewhere (a pipe, cron) the log lines are printed as they come.",
    )
    loudness = group.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing but an error: no log lines, no progress bar, no summary",
    )
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print every log line, each task run's included, and no progress bar",
    )
    group.add_argument(
        "--fail-on",
        type=_percent,
        metavar="PERCENT",
        help="exit with status 3 when more than PERCENT %% of the selected images failed or "
        "were invalid (default: exit 0 whenever the snapshot completes)",
    )


def _add_snapshot_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    run = commands.add_parser(
        "run",
        help="snapshot an Imgur listing or a file of URLs",
        description="Snapshot an Imgur listing (needs IMGUR_CLIENT_ID) or a file of image URLs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(handler=snapshot.snapshot)
    _add_output_options(run)
    add_config_options(run, defaults={("out_dir",): store.DEFAULT_OUT})

    demo_run = commands.add_parser(
        "demo",
        help="snapshot the built-in demo gallery (no client id, no network)",
        description="Start the demo gallery on loopback and snapshot it.",
    )
    demo_run.set_defaults(handler=snapshot.snapshot)
    _add_output_options(demo_run)
    # Three pages: the demo gallery's two, and the empty one that ends the listing. Its own
    # gallery, and the hosts it serves from: no other source option, no --allow-host.
    others = [o.path for o in options() if o.path[0] == "source" and o.path[-1] != "pages"]
    add_config_options(
        demo_run,
        defaults={("out_dir",): "demo-output", ("source", "pages"): 3},
        skip=[*others, ("allowed_hosts",)],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gallery-snapshot",
        description="Take validated, deduplicated snapshots of image galleries (Imgur and "
        "compatible APIs), orchestrated by Prefect.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version('gallery-snapshot')}"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    adders: tuple[Callable[[argparse._SubParsersAction[Parser]], None], ...] = (
        _add_snapshot_commands,
        demo.add_command,
        prefect_commands.add_commands,
        store.add_commands,
        history.add_commands,
    )
    for add in adders:
        add(commands)
    return parser
