"""Serve the deployments that ``prefect.yaml`` declares, without a work pool (``flow.serve``).

    python -m deployments.serve            # all of them
    python -m deployments.serve demo       # only some, by name

The names, descriptions, tags, schedules, concurrency limits and parameters come from
``prefect.yaml`` itself, so the two ways of running stay one set of definitions. A schedule
runs only when what its runs need exists on the server (the rule `gallery-snapshot setup`
applies to deployed ones); the others are served paused, and said so. The package carries
``prefect.yaml`` (``deployments/prefect.yaml``, a link to the checkout's whose content a wheel
holds), so serving needs no checkout.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from prefect import serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron
from prefect.utilities.asyncutils import run_coro_as_sync
from prefect.utilities.templating import resolve_variables

from deployments.prefect_env import apply_defaults
from deployments.prerequisites import declared_deployments, entrypoint_flow, missing_on_server


def concurrency_limit(declared: dict[str, Any]) -> ConcurrencyLimitConfig | int | None:
    """prefect.yaml's ``concurrency_limit`` (a number, or limit and collision strategy)."""
    limit = declared.get("concurrency_limit")
    return ConcurrencyLimitConfig.model_validate(limit) if isinstance(limit, dict) else limit


def runner_deployment(declared: dict[str, Any]) -> tuple[RunnerDeployment, list[str]]:
    """The deployment to serve, and why its schedules are paused (empty: they run)."""
    flow = entrypoint_flow(declared["entrypoint"])
    # ``{{ prefect.variables.NAME }}`` read now, as ``prefect deploy`` does.
    parameters = run_coro_as_sync(resolve_variables(declared.get("parameters") or {}))
    missing: list[str] = []
    if declared.get("schedules"):
        with get_client(sync_client=True) as client:
            missing = missing_on_server(client, flow, declared.get("parameters"), parameters)
    schedules = [
        Cron(schedule["cron"], timezone=schedule.get("timezone", "UTC"), active=not missing)
        for schedule in declared.get("schedules") or []
    ]
    deployment = flow.to_deployment(
        name=declared["name"],
        description=declared.get("description"),
        tags=declared.get("tags"),
        parameters=parameters,
        schedules=schedules or None,
        concurrency_limit=concurrency_limit(declared),
    )
    return deployment, missing  # type: ignore[return-value]  # to_deployment is sync here


def deployed_to_pools(chosen: list[dict[str, Any]]) -> list[str]:
    """Of the chosen deployments, those already deployed to a work pool, said plainly:
    serving one takes its name over, and its runs then crash loading code from no storage."""
    taken = []
    with get_client(sync_client=True) as client:
        for entry in chosen:
            name = f"{entrypoint_flow(entry['entrypoint']).name}/{entry['name']}"
            try:
                pool = client.read_deployment_by_name(name).work_pool_name
            except ObjectNotFound:
                continue
            if pool:
                taken.append(f"{name} is deployed to work pool '{pool}'")
    return taken


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
    if taken := deployed_to_pools(chosen):
        parser.error(
            f"{'; '.join(taken)}: run it with a worker of that pool, or delete it "
            "first (prefect deployment delete NAME) to serve it here"
        )
    apply_defaults()  # flow runs inherit them
    deployments = []
    for entry in chosen:
        deployment, missing = runner_deployment(entry)
        if missing:
            print(f"{entry['name']}: schedule paused: {'; '.join(missing)}", file=sys.stderr)
        deployments.append(deployment)
    serve(*deployments)


if __name__ == "__main__":
    main()
