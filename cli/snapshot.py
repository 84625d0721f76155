"""``run`` and ``demo``: options into the config, what can be checked before Prefect starts,
then the flow in this process, and an exit status that says how it went."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time

from pydantic import ValidationError

from cli.failure import EXIT_FAILED, EXIT_TOO_MANY_FAILED, EXIT_USAGE, fail
from cli.flow_run import (
    FlowRunHandle,
    console_level,
    end_the_run,
    print_summary,
    problem_share,
    progress_shown,
    run_snapshot,
    show_on_console,
    verbose,
)
from cli.options import config_from, validation_message
from deployments.prefect_env import apply_defaults
from gallery_snapshot.config import STDIN, SnapshotConfig
from gallery_snapshot.errors import ConfigError, SnapshotError, StoreError
from gallery_snapshot.run_guard import run_watched, stop_on_signals
from gallery_snapshot.run_policy import trust_terminal_user
from gallery_snapshot.sources import needs_client_id
from gallery_snapshot.sources.urls_file import open_urls_file
from gallery_snapshot.store import open_store
from gallery_snapshot.terminal import ProgressBar


def _check_client_id(config: SnapshotConfig) -> None:
    """Fail early and plainly when an Imgur source has no client id anywhere: neither in
    IMGUR_CLIENT_ID nor on a Prefect server that may hold its Secret block (the one
    PREFECT_API_URL names, in the environment or the active profile, or the local one `setup`
    configured). Such a server is asked once it is known."""
    if not _needs_client_id(config):
        return
    apply_defaults()
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
        and needs_client_id(config.source)
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


def snapshot(args: argparse.Namespace) -> None:
    handle = FlowRunHandle()
    stop_on_signals(handle.cancel)
    try:
        config = config_from(args, demo=args.command == "demo")
        _check_inputs(config)
    except ValidationError as exc:
        fail(validation_message(exc), EXIT_USAGE)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except StoreError as exc:
        fail(str(exc), EXIT_FAILED)
    verbose(args)
    apply_defaults()
    from deployments.local_server import configured_api_url, use_prefect_api

    try:
        with contextlib.redirect_stderr(io.StringIO()) if args.quiet else contextlib.nullcontext():
            ui_url = use_prefect_api()  # says so when it starts the local server
        api_url = str(configured_api_url())
        if _needs_client_id(config):
            _check_secret_block(api_url)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except SnapshotError as exc:
        fail(str(exc), EXIT_FAILED)
    trust_terminal_user()  # its options are its user's, who owns this machine (see run_policy)
    level = console_level(args)
    show_on_console(level)
    bar = ProgressBar(sys.stderr) if level == "WARNING" else None
    started = time.perf_counter()
    try:
        with progress_shown(bar):
            summary, flow_run_id = run_watched(lambda: run_snapshot(config, handle), api_url)
    except SnapshotError as exc:
        end_the_run()
        fail(str(exc), EXIT_FAILED)
    except Exception as exc:  # a bug or a Prefect failure: still one line
        end_the_run()
        fail(f"the snapshot failed: {type(exc).__name__}: {exc}", EXIT_FAILED)
    if not args.quiet:
        print_summary(summary, config.out_dir, time.perf_counter() - started)
        print(f"run page: {ui_url}/runs/flow-run/{flow_run_id}")
    share = problem_share(summary.counts)
    if args.fail_on is not None and share > args.fail_on:
        fail(
            f"{share:.1f} % of the {summary.counts.selected} selected images failed or "
            f"were invalid, more than --fail-on {args.fail_on:g}",
            EXIT_TOO_MANY_FAILED,
        )
