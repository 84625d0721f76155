"""``setup`` and ``server``: the Prefect server the deployments and runs use (Prefect is
imported only when one of them runs)."""

from __future__ import annotations

import argparse
from typing import Any

from cli.failure import EXIT_FAILED, EXIT_USAGE, fail
from deployments.prefect_env import apply_defaults
from gallery_snapshot.errors import ConfigError, SnapshotError


def add_commands(commands: Any) -> None:
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
    setup.set_defaults(handler=run_setup)

    server = commands.add_parser(
        "server",
        help="start, stop or show this user's local Prefect server",
        description="The local Prefect server that runs use when PREFECT_API_URL is not set "
        "(on 127.0.0.1, port PREFECT_SERVER_API_PORT, data in PREFECT_HOME). A server someone "
        "else runs on that port is named and left alone, never used. `status` exits 1 when "
        "this user's server is not running.",
    )
    server.add_argument("action", choices=("start", "stop", "status"))
    server.set_defaults(handler=run_server)


def run_setup(args: argparse.Namespace) -> None:
    apply_defaults()
    from deployments.local_server import PROFILE, local_server_in_use, remember, use_prefect_api
    from deployments.notifications import parse_target
    from deployments.setup import format_rows
    from deployments.setup import setup as set_up

    try:
        target = parse_target(args.notify) if args.notify is not None else None
    except ValueError as exc:
        fail(f"--notify: {exc}", EXIT_USAGE)
    try:
        local = local_server_in_use()  # (asked first: using it exports its address)
        ui_url = use_prefect_api()
        # The local server goes into a profile of the project's own, never the active one:
        # other projects' `prefect` must not depend on this server running.
        profile = [("prefect profile", PROFILE, remember(local))] if local else []
        rows = set_up(notify=target)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except SnapshotError as exc:
        fail(str(exc), EXIT_FAILED)
    print(format_rows(profile + rows))
    print(f"Prefect UI: {ui_url}")
    if profile:
        print(
            f"Prefect's own CLI reaches this server with --profile {PROFILE}: "
            f"`prefect --profile {PROFILE} deploy --all`, "
            f"`prefect --profile {PROFILE} worker start --pool gallery-snapshot`"
        )


def run_server(args: argparse.Namespace) -> None:
    apply_defaults()
    from deployments.local_server import LocalServer, configured_api_url, stale_profile

    server = LocalServer.from_settings()
    code = 0
    if args.action == "start":
        try:
            started = server.start()
        except SnapshotError as exc:
            fail(str(exc), EXIT_FAILED)
        print(f"{'started' if started else 'already running'}: UI at {server.ui_url}")
    elif args.action == "stop":
        if server.stop():
            print("stopped")
        elif holder := server.other_holder():
            fail(f"not stopped: port {server.port} is taken by {holder}", EXIT_FAILED)
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
