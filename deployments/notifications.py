"""`gallery-snapshot setup --notify`: where notifications go, and the automations that send them:

- a run of this project's flows ends Failed or Crashed (the zombie automation's Crashed too);
- a scheduled deployment has no Completed run within twice its schedule's interval (a proactive
  trigger: it fires on silence, so a stopped worker or a stuck run is noticed too); it is off
  while the deployment's schedule is paused;
- a ``gallery-snapshot.source.changed`` event (a big change in a source, emitted by the
  snapshot flow once it detects one).

The target is a webhook URL, kept in a Custom Webhook block whose URL lives in the block's
secrets (the UI and the API show it obfuscated, and it is never printed), or an existing
notification block (``slack-webhook/ops``). A later ``setup`` without ``--notify`` keeps
notifying the target the failure automation names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, cast
from urllib.parse import urlsplit
from uuid import UUID

from prefect._vendor.croniter.croniter import croniter
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound

from deployments.prerequisites import Row, Scheduled
from flows.events import SOURCE_CHANGED
from flows.prune import gallery_prune
from flows.snapshot import gallery_snapshot
from gallery_snapshot.errors import ConfigError

NOTIFY_BLOCK = "gallery-snapshot-notify"
FAILED_AUTOMATION = "gallery-snapshot: notify on failed or crashed runs"
CHANGED_AUTOMATION = "gallery-snapshot: notify on source changes"
LATE_FACTOR = 2  # a scheduled deployment is late after twice its interval without a completion
# What the webhook receives: Slack-style "text", and the parts for anything else.
PAYLOAD = {"text": "{{subject}}\n{{body}}", "subject": "{{subject}}", "body": "{{body}}"}
_BLOCK_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Target:
    """Where notifications go: a webhook URL, or an existing block as TYPE/NAME."""

    url: str | None = None
    block: str | None = None


def parse_target(value: str) -> Target:
    """``--notify``'s value, or a ValueError that never repeats it (a URL may hold a token)."""
    value = value.strip()
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("a webhook URL is http(s)://HOST/PATH")
        return Target(url=value)
    slug, _, name = value.partition("/")
    if not _BLOCK_SLUG.match(slug) or not name.strip():
        raise ValueError(
            "expected a webhook URL (http(s)://...) or a notification block as TYPE/NAME "
            "(e.g. slack-webhook/ops)"
        )
    return Target(block=value)


def late_window(schedule: Any) -> timedelta | None:
    """Twice the longest gap between a schedule's runs (a weekday schedule's weekend
    included); None for schedules this cannot tell (rrule)."""
    if isinstance(schedule, IntervalSchedule):
        return LATE_FACTOR * schedule.interval
    if not isinstance(schedule, CronSchedule):
        return None
    # Prefect's own cron reader, the one its scheduler uses.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    runs = croniter(schedule.cron, start, day_or=schedule.day_or)  # type: ignore[no-untyped-call]
    times: list[datetime] = [
        runs.get_next(datetime)  # type: ignore[no-untyped-call]
        for _ in range(400)  # a year of weekly runs
    ]
    return LATE_FACTOR * max(later - earlier for earlier, later in pairwise(times))


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _notify(block_id: UUID, subject: str, body: str) -> SendNotification:
    return SendNotification(block_document_id=block_id, subject=subject, body=body)


def failed_automation(block_id: UUID) -> AutomationCore:
    return AutomationCore(
        name=FAILED_AUTOMATION,
        description="Notifies when a gallery-snapshot or gallery-prune run fails or crashes.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": [gallery_snapshot.name, gallery_prune.name],
                }
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            _notify(
                block_id,
                "gallery-snapshot: {{ flow_run.name }} {{ flow_run.state.name }}",
                "Flow run {{ flow.name }}/{{ flow_run.name }} ended {{ flow_run.state.name }}: "
                "{{ flow_run.state.message }}\n{{ flow_run|ui_url }}",
            )
        ],
    )


def changed_automation(block_id: UUID) -> AutomationCore:
    return AutomationCore(
        name=CHANGED_AUTOMATION,
        description=f"Notifies on {SOURCE_CHANGED} events (a big change in a source).",
        trigger=EventTrigger(expect={SOURCE_CHANGED}, posture=Posture.Reactive, threshold=1),
        actions=[
            _notify(
                block_id,
                "gallery-snapshot: {{ event.resource.name or event.resource.id }} changed",
                "{{ event.resource.id }} changed at {{ event.occurred }}: {{ event.payload }}",
            )
        ],
    )


def late_automation(block_id: UUID, deployment: Scheduled, within: timedelta) -> AutomationCore:
    return AutomationCore(
        name=f"gallery-snapshot: notify when {deployment.name} is late",
        description=f"Notifies when no run of {deployment.name} completes for {LATE_FACTOR} "
        "intervals of its schedule.",
        enabled=deployment.active,
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {
                    "prefect.resource.role": "deployment",
                    "prefect.resource.id": f"prefect.deployment.{deployment.id}",
                }
            ),
            posture=Posture.Proactive,
            threshold=1,
            within=within,
        ),
        actions=[
            _notify(
                block_id,
                f"gallery-snapshot: {deployment.name} is late",
                f"No run of {deployment.name} has completed for {_duration(within)} "
                f"({LATE_FACTOR} intervals of its schedule): see its runs, and the workers of "
                "its work pool.",
            )
        ],
    )


def ensure_automation(client: SyncPrefectClient, wanted: AutomationCore) -> str:
    """Create ``wanted``, or update the automation of its name to it; "created", "updated" or
    "found"."""
    existing = client.read_automations_by_name(wanted.name)
    if not existing:
        client.create_automation(wanted)
        return "created"
    fields = set(AutomationCore.model_fields)
    if AutomationCore.model_validate(existing[0].model_dump(include=fields)) == wanted:
        return "found"
    client.update_automation(existing[0].id, wanted)
    return "updated"


def ensure_webhook_block(url: str) -> tuple[UUID, str]:
    """The Custom Webhook block that POSTs to ``url``, its URL a secret."""
    wanted = CustomWebhookNotificationBlock(
        name="gallery-snapshot", url="{{url}}", json_data=PAYLOAD, secrets={"url": url}
    )
    try:  # (load and save are sync here: no event loop runs)
        current = cast(
            CustomWebhookNotificationBlock, CustomWebhookNotificationBlock.load(NOTIFY_BLOCK)
        )
    except ValueError:  # no such block
        return cast(UUID, wanted.save(NOTIFY_BLOCK)), "created"
    if (
        current.url == wanted.url
        and current.json_data == wanted.json_data
        and (current.secrets.get_secret_value() == wanted.secrets.get_secret_value())
    ):
        assert current._block_document_id is not None  # a loaded block has its id
        return current._block_document_id, "found"
    return cast(UUID, wanted.save(NOTIFY_BLOCK, overwrite=True)), "updated"


def named_block(client: SyncPrefectClient, reference: str) -> UUID:
    """The id of the notification block TYPE/NAME; ConfigError when it is missing or does
    not notify."""
    slug, _, name = reference.partition("/")
    try:
        document = client.read_block_document_by_name(name, slug, include_secrets=False)
    except ObjectNotFound:
        raise ConfigError(f"--notify: the server has no block {reference}") from None
    if "notify" not in (document.block_schema.capabilities if document.block_schema else []):
        raise ConfigError(f"--notify: {reference} is not a notification block")
    return document.id


def current_block(client: SyncPrefectClient) -> UUID | None:
    """The block an earlier ``--notify`` wired, as the failure automation names it."""
    for automation in client.read_automations_by_name(FAILED_AUTOMATION):
        for action in automation.actions:
            if isinstance(action, SendNotification):
                return action.block_document_id
    return None


def notification_block(
    client: SyncPrefectClient, target: Target | None
) -> tuple[UUID, list[Row]] | None:
    """The block notifications go to, and its row: ``target``'s, else the one an earlier
    ``--notify`` wired; None when there is none. ConfigError for a named block that is
    missing or does not notify."""
    if target is not None and target.url is not None:
        block_id, outcome = ensure_webhook_block(target.url)
        return block_id, [("notification block", f"custom-webhook/{NOTIFY_BLOCK}", outcome)]
    if target is not None and target.block is not None:
        return named_block(client, target.block), [("notification block", target.block, "found")]
    earlier = current_block(client)
    return None if earlier is None else (earlier, [])


def ensure_notifications(
    client: SyncPrefectClient, block_id: UUID, scheduled: list[Scheduled]
) -> list[Row]:
    """The automations that notify block ``block_id``; rows as `setup` prints them."""
    wanted = [failed_automation(block_id), changed_automation(block_id)]
    for deployment in scheduled:
        windows = [late_window(schedule.schedule) for schedule in deployment.schedules]
        known = [window for window in windows if window is not None]
        if known and len(known) == len(windows):
            wanted.append(late_automation(block_id, deployment, max(known)))
    rows: list[Row] = []
    for automation in wanted:
        outcome = ensure_automation(client, automation)
        off = "" if automation.enabled else " (off while its schedule is paused)"
        rows.append(("automation", automation.name, outcome + off))
    return rows
