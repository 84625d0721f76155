"""``gallery-snapshot setup``: what a Prefect server needs before the deployments can run.

Idempotent: each object is created when missing, updated when it differs from what is wanted,
and otherwise left alone; a second run reports everything "found".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from prefect.blocks.system import Secret
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    WorkPoolCreate,
    WorkPoolUpdate,
)
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound
from prefect.workers.process import ProcessWorker

from deployments.notifications import (
    Target,
    ensure_automation,
    ensure_notifications,
    notification_block,
)
from deployments.prefect_env import FLOW_RUN_ENV, HEARTBEAT_SECONDS
from deployments.prerequisites import Row, ensure_schedules
from flows.snapshot import gallery_snapshot
from gallery_snapshot.errors import SnapshotError
from tasks.links import API_RATE_LIMIT, CLIENT_ID_BLOCK, CLIENT_ID_ENV

Outcome = str  # "created", "updated", "found", or why it was skipped

WORK_POOL = "gallery-snapshot"
MISSED_HEARTBEATS = 3  # then the run is crashed
# Imgur grants 12,500 requests a day (~0.14 a second) per client; bursts of 50.
RATE_LIMIT = 50
RATE_LIMIT_DECAY = 0.14
ZOMBIE_AUTOMATION = "gallery-snapshot: crash zombie flow runs"


# The only job variables a run or deployment may set: none reaches the flow process's
# environment, command or working folder.
RUN_JOB_VARIABLES = ("name", "labels", "stream_output")


def pool_template() -> dict[str, Any]:
    """The process worker's job template without `env`, `command` and `working_dir`: a run's
    job variables would otherwise set the flow process's environment (switching the worker's
    limits off) or replace it with any command. The server refuses job variables the schema
    does not list."""
    template = ProcessWorker.get_default_base_job_template()
    variables = template["variables"]
    variables["properties"] = {
        name: schema
        for name, schema in variables["properties"].items()
        if name in RUN_JOB_VARIABLES
    }
    variables["additionalProperties"] = False
    template["job_configuration"] = {
        **{name: f"{{{{ {name} }}}}" for name in RUN_JOB_VARIABLES},
        # What every flow run's process gets, in the template itself; the schema offers no
        # `env`, so the server refuses a run or deployment that would add to it.
        "env": dict(FLOW_RUN_ENV),
    }
    return template


def zombie_automation() -> AutomationCore:
    """Prefect's documented "Detect zombie flows" automation: a flow run that neither beats nor
    ends within three heartbeats is set to Crashed. Only this project's flow: other flows on the
    server may beat at Prefect's default of 180 s, and must not be crashed after 90."""
    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Marks flow runs Crashed when their heartbeats stop (a killed worker).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "flow", "prefect.resource.name": gallery_snapshot.name}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=HEARTBEAT_SECONDS * MISSED_HEARTBEATS),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"No heartbeat for {HEARTBEAT_SECONDS * MISSED_HEARTBEATS} s: "
                "the process running this flow run died.",
            )
        ],
    )


def ensure_work_pool(client: SyncPrefectClient) -> Outcome:
    wanted = pool_template()
    try:
        pool = client.read_work_pool(WORK_POOL)
    except ObjectNotFound:
        client.create_work_pool(
            WorkPoolCreate(name=WORK_POOL, type="process", base_job_template=wanted)
        )
        return "created"
    if pool.base_job_template == wanted:
        return "found"
    client.update_work_pool(WORK_POOL, WorkPoolUpdate(base_job_template=wanted))
    return "updated"


def ensure_rate_limit(client: SyncPrefectClient) -> Outcome:
    try:
        limit = client.read_global_concurrency_limit_by_name(API_RATE_LIMIT)
    except ObjectNotFound:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(
                name=API_RATE_LIMIT, limit=RATE_LIMIT, slot_decay_per_second=RATE_LIMIT_DECAY
            )
        )
        return "created"
    if (limit.limit, limit.slot_decay_per_second, limit.active) == (
        RATE_LIMIT,
        RATE_LIMIT_DECAY,
        True,
    ):
        return "found"
    client.update_global_concurrency_limit(
        API_RATE_LIMIT,
        GlobalConcurrencyLimitUpdate(
            limit=RATE_LIMIT, slot_decay_per_second=RATE_LIMIT_DECAY, active=True
        ),
    )
    return "updated"


def ensure_zombie_automation(client: SyncPrefectClient) -> Outcome:
    return ensure_automation(client, zombie_automation())


def ensure_client_id_block() -> Outcome:
    """The Secret block from ``IMGUR_CLIENT_ID``; skipped when that is not set."""
    value = os.environ.get(CLIENT_ID_ENV, "").strip()
    if not value:
        return "skipped: IMGUR_CLIENT_ID is not set"
    try:
        current = Secret.load(CLIENT_ID_BLOCK)
    except ValueError:  # no such block
        Secret(value=value).save(CLIENT_ID_BLOCK)
        return "created"
    if current.get() == value:  # type: ignore[union-attr]
        return "found"
    Secret(value=value).save(CLIENT_ID_BLOCK, overwrite=True)
    return "updated"


def setup(*, notify: Target | None = None) -> list[Row]:
    """Create or update everything, resume the schedules whose prerequisites exist, wire
    notifications to ``notify`` (else to the target of an earlier one); one row per object.
    SnapshotError when the server refuses, ConfigError for a ``notify`` block it lacks."""
    with get_client(sync_client=True) as client:
        steps: list[tuple[str, str, Callable[[], Outcome]]] = [
            ("work pool", WORK_POOL, lambda: ensure_work_pool(client)),
            ("global rate limit", API_RATE_LIMIT, lambda: ensure_rate_limit(client)),
            ("automation", ZOMBIE_AUTOMATION, lambda: ensure_zombie_automation(client)),
            ("secret block", CLIENT_ID_BLOCK, ensure_client_id_block),
        ]
        try:
            notifying = notification_block(client, notify)  # a bad --notify changes nothing
            rows = [(what, name, ensure()) for what, name, ensure in steps]
            schedule_rows, scheduled = ensure_schedules(client)
            if notifying is None:
                return [*rows, *schedule_rows, ("notifications", "-", "skipped: no --notify")]
            block_id, block_rows = notifying
            automations = ensure_notifications(client, block_id, scheduled)
            return rows + schedule_rows + block_rows + automations
        except httpx.HTTPError as exc:
            raise SnapshotError(f"the Prefect API refused the setup: {exc}") from None


def format_rows(rows: list[Row]) -> str:
    """The rows as an aligned table, with a header."""
    table = [("what", "name", "result"), *rows]
    widths = [max(len(row[column]) for row in table) for column in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )
