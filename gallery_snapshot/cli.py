"""The ``gallery-snapshot`` command: ``run``, ``demo``, ``demo-gallery``, ``setup``, ``server``.

Bad input ends with one line on stderr and a non-zero exit, never a traceback:
2 for bad options, 1 for a snapshot that could not complete. Prefect is imported lazily, and
its operations (the local server, setup) live in ``deployments/``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import logging
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from gallery_snapshot.cli_store import DEFAULT_OUT, add_store_commands
from gallery_snapshot.config import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BYTES,
    FORMATS,
    IMGUR_API_URL,
    IMGUR_IMAGE_HOST,
    STDIN,
    SnapshotConfig,
)
from gallery_snapshot.errors import ConfigError, SnapshotError, StoreError
from gallery_snapshot.http import abort_exchanges
from gallery_snapshot.manifest import summary_table
from gallery_snapshot.run_guard import error_line, run_watched, stop_on_signals
from gallery_snapshot.run_policy import trust_terminal_user
from gallery_snapshot.selection import UrlProblem, allowed_host
from gallery_snapshot.sources.urls_file import open_urls_file
from gallery_snapshot.store import absolute_name, layout, manifest_relpath, open_store, page_relpath
from gallery_snapshot.terminal import ProgressBar, ProgressHandler

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TOO_MANY_FAILED = 3
BIN = Path(sys.executable).parent  # the installed commands, e.g. .venv/bin

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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{message} (see {self.prog} --help)", EXIT_USAGE)


def _formats(value: str) -> list[str]:
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    names = ["jpeg" if name == "jpg" else name for name in names]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(unknown) or repr(value)}; choose from {', '.join(FORMATS)}"
        )
    return names


def _host(value: str) -> str:
    try:
        return allowed_host(value)
    except UrlProblem as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(value: str) -> int:
    port = int(value) if value.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port (0-65535)")
    return port


def _percent(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 100:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{value!r} is not a percentage (0-100)")
    return number


def _non_negative(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = kind(value)
        except ValueError:
            number = -1
        if not number >= 0:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"{value!r} is not a number >= 0")
        return number

    return parse


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


def _add_download_options(
    parser: argparse.ArgumentParser, *, out_default: str, pages_default: int
) -> None:
    _add_output_options(parser)
    group = parser.add_argument_group("download")
    group.add_argument(
        "--formats",
        type=_formats,
        default=["jpeg"],
        help="comma-separated formats to keep: jpeg,png,gif,webp (default: jpeg)",
    )
    group.add_argument(
        "--out",
        default=out_default,
        metavar="DIR|URL",
        help="output folder for images, manifests, quarantine, or an object store: "
        "s3://BUCKET/PREFIX (also gs://, az://, file://), credentials and endpoint from "
        f"AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL (default: {out_default})",
    )
    group.add_argument(
        "--runner",
        choices=("threads", "processes", "dask"),
        default="threads",
        help="task runner for the download step (default: threads)",
    )
    group.add_argument(
        "--workers",
        type=int,
        default=8,
        metavar="N",
        help="concurrent downloads in all (default: 8)",
    )
    group.add_argument(
        "--dask-address",
        metavar="ADDRESS",
        help="existing Dask scheduler for --runner dask (default: a local cluster)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="connect and read timeout per request (default: 30)",
    )
    group.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"largest image accepted, in bytes (default: {DEFAULT_MAX_BYTES})",
    )
    group.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help="total time per image (connect, reads, retries); past it the image is failed. "
        "Each API request, and each image's decoding, get as long "
        f"(default: {DEFAULT_DEADLINE:g})",
    )
    group.add_argument(
        "--pages",
        type=int,
        default=pages_default,
        metavar="N",
        help=f"listing pages to read; stops early at an empty page (default: {pages_default})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    run = commands.add_parser(
        "run",
        help="snapshot an Imgur listing or a file of URLs",
        description="Snapshot an Imgur listing (needs IMGUR_CLIENT_ID) or a file of image URLs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(handler=_snapshot)
    source = run.add_argument_group("source (default: the main gallery)")
    source.add_argument(
        "--api-url",
        default=os.environ.get("IMGUR_API_URL", IMGUR_API_URL),
        help=f"Imgur-compatible API base URL (default: $IMGUR_API_URL or {IMGUR_API_URL})",
    )
    source.add_argument(
        "--section",
        choices=("hot", "top", "user"),
        default="hot",
        help="main gallery section (default: hot)",
    )
    source.add_argument(
        "--sort",
        choices=("viral", "top", "time", "rising"),
        help="sort order (default: viral; time for subreddits)",
    )
    source.add_argument(
        "--window",
        choices=("day", "week", "month", "year", "all"),
        help="time window (default: day; week for subreddits and tags)",
    )
    only_one = source.add_mutually_exclusive_group()
    only_one.add_argument("--subreddit", metavar="NAME", help="a subreddit gallery")
    only_one.add_argument("--tag", metavar="NAME", help="a tag gallery")
    only_one.add_argument("--album", metavar="ID", help="one album")
    only_one.add_argument(
        "--urls-file", metavar="PATH", help="a file of image URLs, one a line (-: standard input)"
    )
    run.add_argument(
        "--allow-host",
        action="append",
        type=_host,
        metavar="HOST",
        dest="allow_hosts",
        help=f"host images may come from; repeatable (default: {IMGUR_IMAGE_HOST})",
    )
    _add_download_options(run, out_default=DEFAULT_OUT, pages_default=1)

    demo = commands.add_parser(
        "demo",
        help="snapshot the built-in demo gallery (no client id, no network)",
        description="Start the demo gallery on loopback and snapshot it.",
    )
    demo.set_defaults(handler=_snapshot)
    # Three pages: the demo gallery's two, and the empty one that ends the listing.
    _add_download_options(demo, out_default="demo-output", pages_default=3)

    serve = commands.add_parser(
        "demo-gallery",
        help="serve the demo gallery until interrupted",
        description="Serve the Imgur-compatible demo gallery on loopback, for manual runs.",
    )
    serve.set_defaults(handler=_serve_demo_gallery)
    serve.add_argument("--port", type=_port, default=8765, help="port (default: 8765; 0: any free)")
    serve.add_argument(
        "--latency",
        type=_non_negative(float),
        default=0.0,
        metavar="SECONDS",
        help="delay before each image response (default: 0)",
    )
    serve.add_argument(
        "--images",
        type=_non_negative(int),
        default=0,
        metavar="N",
        help="serve N generated JPEGs instead of the demo catalogue",
    )

    setup = commands.add_parser(
        "setup",
        help="create or update what the deployments need on the Prefect server",
        description="Create or update, on the Prefect server (PREFECT_API_URL, else the local "
        "one, which the Prefect profile gallery-snapshot then names): the process work pool "
        "gallery-snapshot with flow heartbeats on, the global rate limit imgur-api, the "
        "automation that marks runs Crashed when their heartbeats stop, and the Secret block "
        "imgur-client-id from IMGUR_CLIENT_ID when set; then resume the schedules of "
        "prefect.yaml's deployed deployments whose prerequisites exist (the others stay "
        "paused, with the reason). Idempotent.",
    )
    setup.add_argument(
        "--notify",
        metavar="URL|TYPE/NAME",
        help="notify a webhook URL (stored in a Secret, never printed) or an existing Prefect "
        "notification block (e.g. slack-webhook/ops) when a run fails or crashes, when a "
        "scheduled deployment has not completed within twice its interval, and on "
        "gallery-snapshot.source.changed events; later setups keep notifying it",
    )
    setup.set_defaults(handler=_setup)

    server = commands.add_parser(
        "server",
        help="start, stop or show this user's local Prefect server",
        description="The local Prefect server that runs use when PREFECT_API_URL is not set "
        "(on 127.0.0.1, port PREFECT_SERVER_API_PORT, data in PREFECT_HOME). A server someone "
        "else runs on that port is named and left alone, never used. `status` exits 1 when "
        "this user's server is not running.",
    )
    server.add_argument("action", choices=("start", "stop", "status"))
    server.set_defaults(handler=_server)
    add_store_commands(commands)
    return parser


def _config_from(args: argparse.Namespace, *, demo: bool) -> SnapshotConfig:
    source: dict[str, Any] = {"pages": args.pages}
    if not demo:
        kind = next(
            (k for k in ("subreddit", "tag", "album") if getattr(args, k)),
            "urls" if args.urls_file else "gallery",
        )
        source.update(
            kind=kind,
            api_url=args.api_url,
            section=args.section,
            sort=args.sort,
            window=args.window,
            subreddit=args.subreddit,
            tag=args.tag,
            album=args.album,
            urls_file=args.urls_file
            if args.urls_file in (None, STDIN)
            else os.path.abspath(args.urls_file),
        )
    options: dict[str, Any] = {
        "source": source,
        "formats": args.formats,
        # An empty --out stays empty (refused by the store), never the current folder.
        "out_dir": absolute_name(args.out),
        "runner": args.runner,
        "workers": args.workers,
        "timeout": args.timeout,
        "max_bytes": args.max_bytes,
        "deadline": args.deadline,
        "dask_address": args.dask_address,
        "demo_gallery": demo,
    }
    if not demo and args.allow_hosts:
        options["allowed_hosts"] = args.allow_hosts
    return SnapshotConfig.model_validate(options)


# The option that sets each field of SnapshotConfig, for errors that name what was typed.
FIELD_OPTIONS: dict[tuple[str, ...], str] = {
    ("source", "api_url"): "--api-url",
    ("source", "section"): "--section",
    ("source", "sort"): "--sort",
    ("source", "window"): "--window",
    ("source", "pages"): "--pages",
    ("source", "subreddit"): "--subreddit",
    ("source", "tag"): "--tag",
    ("source", "album"): "--album",
    ("source", "urls_file"): "--urls-file",
    ("formats",): "--formats",
    ("allowed_hosts",): "--allow-host",
    ("out_dir",): "--out",
    ("runner",): "--runner",
    ("workers",): "--workers",
    ("dask_address",): "--dask-address",
    ("timeout",): "--timeout",
    ("max_bytes",): "--max-bytes",
    ("deadline",): "--deadline",
}


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = tuple(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    # The longest prefix: an error about one item of a list names the list's option.
    option = next(
        (FIELD_OPTIONS[where[:n]] for n in range(len(where), 0, -1) if where[:n] in FIELD_OPTIONS),
        None,
    )
    return f"{option}: {message}" if option else message


def _fail(message: str, code: int) -> NoReturn:
    print(error_line(message), end="", file=sys.stderr)
    raise SystemExit(code)


def _check_client_id(config: SnapshotConfig) -> None:
    """Fail early and plainly when an Imgur source has no client id anywhere: neither in
    IMGUR_CLIENT_ID nor on a Prefect server that may hold its Secret block (the one
    PREFECT_API_URL names, in the environment or the active profile, or the local one `setup`
    configured). Such a server is asked once it is known."""
    if not _needs_client_id(config):
        return
    _prefect_defaults()
    from deployments.local_server import secrets_api_url
    from tasks.links import CLIENT_ID_BLOCK

    if secrets_api_url() is None:
        raise ConfigError(
            f"IMGUR_CLIENT_ID is not set and no Prefect server holds the Secret block "
            f"{CLIENT_ID_BLOCK!r}: export your Imgur client id, or store it with "
            "`IMGUR_CLIENT_ID=... gallery-snapshot setup` (see README)"
        )


def _needs_client_id(config: SnapshotConfig) -> bool:
    return (
        not config.demo_gallery
        and config.source.kind != "urls"
        and not (os.environ.get("IMGUR_CLIENT_ID", "").strip())
    )


def _check_inputs(config: SnapshotConfig) -> None:
    """What can be checked before Prefect starts: the URLs file is readable (ConfigError), the
    output folder writable (StoreError), the client id set when no server may hold it."""
    if (path := config.source.urls_file) and path != STDIN:
        open_urls_file(path).close()  # only whether it opens: a regular file, readable
    _check_client_id(config)
    open_store(config.out_dir).check_access()


def _check_secret_block(api_url: str) -> None:
    """With a Prefect server and no IMGUR_CLIENT_ID, the Secret block must be there."""
    from tasks.links import CLIENT_ID_BLOCK, resolve_client_id

    if resolve_client_id() is None:
        raise ConfigError(
            f"IMGUR_CLIENT_ID is not set and the Prefect server at {api_url} has no Secret "
            f"block {CLIENT_ID_BLOCK!r}: export your Imgur client id, or run "
            "`gallery-snapshot setup` with it (see README)"
        )


def _prefect_defaults() -> None:
    """Set before Prefect is imported: its settings are read once."""
    # Per-task "Finished in state Completed()" lines drown the progress lines at scale.
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Our own modules' logs (retries, API credits) go to the run's logs too.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "gallery_snapshot")
    from deployments.heartbeat import HEARTBEAT_ENV

    for name, value in HEARTBEAT_ENV.items():
        os.environ.setdefault(name, value)


class FlowRunHandle:
    """The CLI's flow run once it runs: what an interrupt marks Cancelled on the server."""

    def __init__(self) -> None:
        self.flow_run_id: str | None = None

    def run_name(self) -> str:
        """The flow's own run name; on the way, the run's id."""
        from flows.run_identity import current_run
        from flows.snapshot import snapshot_run_name

        self.flow_run_id = str(current_run().id)
        return snapshot_run_name()

    def cancel(self) -> None:
        if self.flow_run_id is None:
            return
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                self.flow_run_id, Cancelled(message="interrupted from the command line"), force=True
            )


def run_snapshot(config: SnapshotConfig, handle: FlowRunHandle) -> tuple[dict[str, Any], str]:
    """Run the flow in this process; return its summary (snapshot id, counts, where the
    manifest and page are: the manifest itself is not read again, it can be tens of MB) and
    the flow run's id, or raise SnapshotError."""
    from prefect import tags

    from flows.snapshot import gallery_snapshot
    from gallery_snapshot.naming import source_tag

    flow = (
        gallery_snapshot.with_options(flow_run_name=handle.run_name) if handle else gallery_snapshot
    )
    with tags(source_tag(config)):  # created with it: deployment runs get it as they start
        state = flow(config, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, SnapshotError):
        raise outcome
    if isinstance(outcome, BaseException) or not state.is_completed():
        raise SnapshotError(f"the snapshot flow ended in state {state.type.value}: {state.message}")
    return outcome, str(state.state_details.flow_run_id)


def _print_summary(summary: dict[str, Any], out_dir: str, seconds: float) -> None:
    print(f"snapshot {summary['snapshot_id']} finished in {seconds:.1f} s")
    print(summary_table(summary))
    store, snapshot_id = open_store(out_dir), summary["snapshot_id"]
    print(f"manifest: {store.location(manifest_relpath(snapshot_id))}")
    hint = " (open it in a browser)" if store.browsable else ""
    print(f"page:     {store.location(page_relpath(snapshot_id))}{hint}")
    print(f"images:   {store.location(layout.IMAGES)}")
    if summary["counts"]["invalid"]:
        print(f"invalid files quarantined under {store.location(layout.QUARANTINE)}")


def _console_level(args: argparse.Namespace) -> str | None:
    """The least level of a log line shown on the terminal (None: Prefect's own choice). The
    run's logs on the server are the same whatever is shown here."""
    if args.quiet:
        return "CRITICAL"  # our own one-line error is all that is printed
    if not args.verbose and sys.stderr is not None and sys.stderr.isatty():
        return "WARNING"  # a progress bar stands in for the progress lines
    return None


def _verbose(args: argparse.Namespace) -> None:
    """Every log line with -v: set before Prefect is imported (it reads its settings once)."""
    if args.verbose:
        os.environ["PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"] = "INFO"
        logging.getLogger("gallery_snapshot").setLevel(logging.DEBUG)


def _show_on_console(level: str | None) -> None:
    """Prefect's console handler at ``level``, in this process and the worker processes it
    starts (not in a local Prefect server it started: its log keeps every line)."""
    if level is None:
        return
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = level
    ensure_logging_setup()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.setLevel(level)


@contextlib.contextmanager
def _progress_shown(bar: ProgressBar | None) -> Iterator[None]:
    """The flow's progress records drawn on ``bar`` while the run goes; its line cleared at
    the end, for the summary or an error."""
    if bar is None:
        yield
        return
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # first: setting up Prefect's logging replaces its loggers' handlers
    handler = ProgressHandler(bar)
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        bar.close()


def _problem_share(counts: dict[str, int]) -> float:
    """Failed and invalid images, in % of those selected."""
    return 100 * (counts["failed"] + counts["invalid"]) / max(1, counts["selected"])


def _end_the_run() -> None:
    """Before the line saying why a run failed, which must be the last: the run is over and
    recorded, but threads of its other batches may still end and log. Their downloads are
    cut, and what they would log is dropped."""
    abort_exchanges()
    logging.disable(logging.CRITICAL)


def _snapshot(args: argparse.Namespace) -> None:
    handle = FlowRunHandle()
    stop_on_signals(handle.cancel)
    try:
        config = _config_from(args, demo=args.command == "demo")
        _check_inputs(config)
    except ValidationError as exc:
        _fail(_validation_message(exc), EXIT_USAGE)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except StoreError as exc:
        _fail(str(exc), EXIT_FAILED)
    _verbose(args)
    _prefect_defaults()
    from deployments.local_server import configured_api_url, use_prefect_api

    try:
        with contextlib.redirect_stderr(io.StringIO()) if args.quiet else contextlib.nullcontext():
            ui_url = use_prefect_api()  # says so when it starts the local server
        api_url = str(configured_api_url())
        if _needs_client_id(config):
            _check_secret_block(api_url)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except SnapshotError as exc:
        _fail(str(exc), EXIT_FAILED)
    trust_terminal_user()  # its options are its user's, who owns this machine (see run_policy)
    console_level = _console_level(args)
    _show_on_console(console_level)
    bar = ProgressBar(sys.stderr) if console_level == "WARNING" else None
    started = time.perf_counter()
    try:
        with _progress_shown(bar):
            summary, flow_run_id = run_watched(lambda: run_snapshot(config, handle), api_url)
    except SnapshotError as exc:
        _end_the_run()
        _fail(str(exc), EXIT_FAILED)
    except Exception as exc:  # a bug or a Prefect failure: still one line
        _end_the_run()
        _fail(f"the snapshot failed: {type(exc).__name__}: {exc}", EXIT_FAILED)
    if not args.quiet:
        _print_summary(summary, config.out_dir, time.perf_counter() - started)
        print(f"run page: {ui_url}/runs/flow-run/{flow_run_id}")
    share = _problem_share(summary["counts"])
    if args.fail_on is not None and share > args.fail_on:
        _fail(
            f"{share:.1f} % of the {summary['counts']['selected']} selected images failed or "
            f"were invalid, more than --fail-on {args.fail_on:g}",
            EXIT_TOO_MANY_FAILED,
        )


def _setup(args: argparse.Namespace) -> None:
    _prefect_defaults()
    from deployments.local_server import PROFILE, local_server_in_use, remember, use_prefect_api
    from deployments.notifications import parse_target
    from deployments.setup import format_rows, setup

    try:
        target = parse_target(args.notify) if args.notify is not None else None
    except ValueError as exc:
        _fail(f"--notify: {exc}", EXIT_USAGE)
    try:
        local = local_server_in_use()  # (asked first: using it exports its address)
        ui_url = use_prefect_api()
        # The local server goes into a profile of the project's own, never the active one:
        # other projects' `prefect` must not depend on this server running.
        profile = [("prefect profile", PROFILE, remember(local))] if local else []
        rows = setup(notify=target)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except SnapshotError as exc:
        _fail(str(exc), EXIT_FAILED)
    print(format_rows(profile + rows))
    print(f"Prefect UI: {ui_url}")
    if profile:
        print(
            f"Prefect's own CLI reaches this server with --profile {PROFILE}: "
            f"`prefect --profile {PROFILE} deploy --all`, "
            f"`prefect --profile {PROFILE} worker start --pool gallery-snapshot`"
        )


def _server(args: argparse.Namespace) -> None:
    _prefect_defaults()
    from deployments.local_server import LocalServer, configured_api_url, stale_profile

    server = LocalServer.from_settings()
    code = 0
    if args.action == "start":
        try:
            started = server.start()
        except SnapshotError as exc:
            _fail(str(exc), EXIT_FAILED)
        print(f"{'started' if started else 'already running'}: UI at {server.ui_url}")
    elif args.action == "stop":
        if server.stop():
            print("stopped")
        elif holder := server.other_holder():
            _fail(f"not stopped: port {server.port} is taken by {holder}", EXIT_FAILED)
        else:
            print("not running")
        if profile := stale_profile(server):
            print(
                f"note: the Prefect profile {profile!r} still names {server.api_url} (an older "
                f"setup wrote it); `prefect --profile {profile} config unset PREFECT_API_URL "
                "--yes` undoes that"
            )
    elif server.running():
        print(f"running: UI at {server.ui_url}, data in {server.home} (pid {server.pid()})")
    else:
        holder = server.other_holder()
        print(
            f"not running: port {server.port} is taken by {holder}"
            if holder
            else "not running (the next run starts it)"
        )
        code = EXIT_FAILED
    if (url := configured_api_url()) and url != server.api_url:
        print(f"note: PREFECT_API_URL is set, so runs use {url}, not this server")
    if code:
        raise SystemExit(code)


def _serve_demo_gallery(args: argparse.Namespace) -> None:
    from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue, demo_catalogue

    catalogue = bulk_catalogue(args.images) if args.images else demo_catalogue()
    try:
        gallery = DemoGallery(catalogue, latency=args.latency, port=args.port)
    except OSError as exc:
        _fail(f"cannot listen on port {args.port}: {exc.strerror}", EXIT_FAILED)
    command = [
        str(BIN / "gallery-snapshot"),
        "run",
        "--api-url",
        gallery.api_url,
        "--allow-host",
        gallery.image_host,
        "--pages",
        str(max(1, len(catalogue.pages))),  # every page the gallery serves
    ]
    with gallery:
        print(f"demo gallery API: {gallery.api_url}")
        print(f"client id:        {gallery.client_id}")
        print(f"try: IMGUR_CLIENT_ID={gallery.client_id} {shlex.join(command)}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    handler(args)


def command() -> NoReturn:
    """The ``gallery-snapshot`` command: ``main()``, then an exit that skips tearing down the
    interpreter (freeing Prefect's modules and objects took 0.3-0.4 s after each run; the OS
    frees a process at once). What the interpreter runs at exit still runs first, in its
    order: threads' exit callbacks (Prefect's event worker drains there), then exit handlers
    (its log worker, logging); every file the run wrote was closed and synced."""
    code = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the descriptor was closed before the start
                stream.flush()
        except (OSError, ValueError):  # a pipe nobody reads any more, a closed stream
            pass
    os._exit(code)
