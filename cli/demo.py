"""``demo-gallery``: the Imgur-compatible demo gallery served on loopback, for manual runs."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.failure import EXIT_FAILED, fail

BIN = Path(sys.executable).parent  # the installed commands, e.g. .venv/bin


def _port(value: str) -> int:
    port = int(value) if value.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port (0-65535)")
    return port


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


def add_command(commands: Any) -> None:
    serve = commands.add_parser(
        "demo-gallery",
        help="serve the demo gallery until interrupted",
        description="Serve the Imgur-compatible demo gallery on loopback, for manual runs.",
    )
    serve.set_defaults(handler=serve_demo_gallery)
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


def serve_demo_gallery(args: argparse.Namespace) -> None:
    from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue, demo_catalogue

    catalogue = bulk_catalogue(args.images) if args.images else demo_catalogue()
    try:
        gallery = DemoGallery(catalogue, latency=args.latency, port=args.port)
    except OSError as exc:
        fail(f"cannot listen on port {args.port}: {exc.strerror}", EXIT_FAILED)
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
