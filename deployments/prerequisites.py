"""What a scheduled deployment needs before its schedule may run, and `setup`'s resuming of the
schedules of prefect.yaml's deployments.

prefect.yaml cannot branch on what the server holds (``{{ prefect.variables.NAME }}`` turns a
missing Variable into an empty string, silently), so every schedule there starts paused;
`gallery-snapshot setup`, which can look, resumes those whose prerequisites exist, and
``deployments.serve`` serves them active or paused by the same rule.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints
from uuid import UUID

import yaml
from prefect import Flow
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import DeploymentSchedule
from prefect.exceptions import ObjectNotFound
from pydantic import BaseModel, ValidationError

from gallery_snapshot.config import SnapshotConfig
from gallery_snapshot.sources import needs_client_id
from tasks.links import CLIENT_ID_BLOCK

Row = tuple[str, str, str]  # what, name, outcome
PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"
VARIABLE = re.compile(r"\{\{\s*prefect\.variables\.([\w-]+)\s*\}\}")


def declared_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments:`` entries of ``prefect.yaml``, with anchors and merges applied."""
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    return list(document["deployments"])


def entrypoint_flow(entrypoint: str) -> Flow[Any, Any]:
    """The flow a module-path entrypoint (``flows.snapshot:gallery_snapshot``) names."""
    module, _, name = entrypoint.partition(":")
    flow: Flow[Any, Any] = getattr(importlib.import_module(module), name)
    return flow


@dataclass(frozen=True)
class Scheduled:
    """A deployed, scheduled deployment of prefect.yaml, as `setup` left it."""

    name: str  # flow/deployment
    id: UUID
    schedules: list[DeploymentSchedule]

    @property
    def active(self) -> bool:
        return any(schedule.active for schedule in self.schedules)


def referenced_variables(template: Any) -> set[str]:
    """The Prefect Variables ``template`` (prefect.yaml's parameters) reads."""
    return set(VARIABLE.findall(json.dumps(template)))


def missing_prerequisites(
    flow: Flow[Any, Any],
    declared_parameters: Any,
    parameters: dict[str, Any],
    *,
    variables: Collection[str],
    has_client_id: bool,
) -> list[str]:
    """Why runs of ``flow`` with ``parameters`` would fail as things stand (empty: they may
    run). ``declared_parameters`` is prefect.yaml's template of them, ``variables`` the Prefect
    Variables it reads that exist, ``has_client_id`` whether the client id's Secret block
    exists."""
    missing = sorted(referenced_variables(declared_parameters) - set(variables))
    reasons = [
        f"the Prefect Variable {name} is not set (`prefect variable set {name} VALUE`, "
        "then deploy again)"
        for name in missing
    ]
    model: type[BaseModel] = get_type_hints(flow.fn)["config"]
    try:
        config = model.model_validate(parameters.get("config", {}))
    except ValidationError as exc:
        if not missing:  # else the empty Variable is why
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            reasons.append(
                f"its parameters do not validate, deploy it again: config.{where}: {message}"
            )
        return reasons
    if (
        isinstance(config, SnapshotConfig)
        and not config.demo_gallery
        and needs_client_id(config.source)
        and not has_client_id
    ):
        reasons.append(
            f"no Secret block {CLIENT_ID_BLOCK!r} on the server "
            "(`IMGUR_CLIENT_ID=... gallery-snapshot setup` stores it)"
        )
    return reasons


def missing_on_server(
    client: SyncPrefectClient,
    flow: Flow[Any, Any],
    declared_parameters: Any,
    parameters: dict[str, Any],
) -> list[str]:
    """``missing_prerequisites`` with the Variables and the Secret block as the server has
    them."""
    present = {
        name
        for name in referenced_variables(declared_parameters)
        if client.read_variable_by_name(name) is not None
    }
    try:
        client.read_block_document_by_name(CLIENT_ID_BLOCK, "secret", include_secrets=False)
        has_client_id = True
    except ObjectNotFound:
        has_client_id = False
    return missing_prerequisites(
        flow, declared_parameters, parameters, variables=present, has_client_id=has_client_id
    )


def ensure_schedules(client: SyncPrefectClient) -> tuple[list[Row], list[Scheduled]]:
    """Resume the paused schedules of prefect.yaml's deployed deployments whose prerequisites
    exist; a row for each (why the others stay paused), and the deployments as left. A
    schedule someone resumed by hand stays resumed, with a warning."""
    if not PREFECT_YAML.is_file():
        return [("schedules", "prefect.yaml", f"skipped: no {PREFECT_YAML}")], []
    rows: list[Row] = []
    found: list[Scheduled] = []
    for entry in declared_deployments():
        if not entry.get("schedules"):
            continue
        flow = entrypoint_flow(entry["entrypoint"])
        name = f"{flow.name}/{entry['name']}"
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            rows.append(("schedule", name, "not deployed"))
            continue
        reasons = missing_on_server(
            client, flow, entry.get("parameters"), deployment.parameters or {}
        )
        schedules = client.read_deployment_schedules(deployment.id)
        if not reasons:
            paused = [schedule for schedule in schedules if not schedule.active]
            for schedule in paused:
                client.update_deployment_schedule(deployment.id, schedule.id, active=True)
            schedules = client.read_deployment_schedules(deployment.id)
            outcome = "resumed" if paused else "active"
        elif any(schedule.active for schedule in schedules):
            outcome = f"active, but its runs will fail: {'; '.join(reasons)}"
        else:
            outcome = f"paused: {'; '.join(reasons)}"
        rows.append(("schedule", name, outcome))
        found.append(Scheduled(name=name, id=deployment.id, schedules=schedules))
    if not found:
        return [
            (
                "schedules",
                "prefect.yaml",
                "skipped: none deployed yet (`prefect deploy --all`, then setup again)",
            )
        ], []
    return rows, found
