"""Serve the deployments that ``prefect.yaml`` declares, without a work pool (``flow.serve``).

    python -m deployments.serve            # all of them
    python -m deployments.serve demo       # only some, by name

The names, descriptions, tags, schedules and parameters come from ``prefect.yaml`` itself, so
the two ways of running stay one set of definitions: the package carries it as
``deployments/prefect.yaml`` (a link to the checkout's, whose content an installed package
holds), so serving needs no checkout.
"""

from __future__ import annotations

import argparse
import importlib
import os
from importlib import resources
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.utilities.asyncutils import run_coro_as_sync
from prefect.utilities.templating import resolve_variables

from deployments.heartbeat import HEARTBEAT_ENV

PREFECT_YAML = resources.files("deployments") / "prefect.yaml"


def declared_deployments() -> list[dict[str, Any]]:
    """The ``deployments:`` entries of ``prefect.yaml``, with anchors and merges applied."""
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    return list(document["deployments"])


def entrypoint_flow(entrypoint: str) -> Flow[Any, Any]:
    """The flow a module-path entrypoint (``flows.snapshot:gallery_snapshot``) names."""
    module, _, name = entrypoint.partition(":")
    flow: Flow[Any, Any] = getattr(importlib.import_module(module), name)
    return flow


def runner_deployment(declared: dict[str, Any]) -> RunnerDeployment:
    schedules = [
        Cron(
            schedule["cron"],
            timezone=schedule.get("timezone", "UTC"),
            active=schedule.get("active", True),
        )
        for schedule in declared.get("schedules") or []
    ]
    flow = entrypoint_flow(declared["entrypoint"])
    return flow.to_deployment(  # type: ignore[return-value]  # sync call
        name=declared["name"],
        description=declared.get("description"),
        tags=declared.get("tags"),
        # ``{{ prefect.variables.NAME }}`` read now, as ``prefect deploy`` does.
        parameters=run_coro_as_sync(resolve_variables(declared.get("parameters") or {})),
        schedules=schedules or None,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help="deployments to serve (default: all)")
    args = parser.parse_args(argv)
    declared = declared_deployments()
    known = [entry["name"] for entry in declared]
    if unknown := sorted(set(args.names) - set(known)):
        parser.error(
            f"unknown deployment(s) {', '.join(unknown)}; prefect.yaml has {', '.join(known)}"
        )
    chosen = [entry for entry in declared if not args.names or entry["name"] in args.names]
    os.environ.update({**HEARTBEAT_ENV, **os.environ})  # flow runs inherit it
    serve(*(runner_deployment(entry) for entry in chosen))


if __name__ == "__main__":
    main()
