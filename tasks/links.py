"""Tasks of the listing half: fetch the links, filter them."""

from __future__ import annotations

import os
from datetime import timedelta

from prefect import get_run_logger, task
from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import rate_limit

from gallery_snapshot.config import DEFAULT_DEADLINE, SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery.server import DEMO_CLIENT_ID
from gallery_snapshot.models import Link, Listing, Selection
from gallery_snapshot.pipeline import select_images
from gallery_snapshot.sources import list_links, needs_client_id
from tasks.cache import RUN_SCOPED_INPUTS
from tasks.retry_policy import retry_unless_permanent

CLIENT_ID_ENV = "IMGUR_CLIENT_ID"
CLIENT_ID_BLOCK = "imgur-client-id"
# A global concurrency limit with slot decay, shared by every run and worker on the server
# (create it as the README says; without it the calls pass unthrottled).
API_RATE_LIMIT = "imgur-api"


class SharedApiRateLimit:
    """Takes a slot of the global rate limit before each API request. Where the server has no
    such limit, it says so once and stops asking (Prefect would warn on every request)."""

    def __init__(self) -> None:
        self.missing = False

    def __call__(self) -> None:
        if self.missing:
            return
        try:
            rate_limit(API_RATE_LIMIT, occupy=1, strict=True)
        except ConcurrencySlotAcquisitionError:
            self.missing = True
            # A warning: task runs log at WARNING and above by default, and unthrottled
            # requests can spend the credits every run shares.
            get_run_logger().warning(
                "no global rate limit %r on this server: API requests are not throttled "
                "across runs (`gallery-snapshot setup` creates it)",
                API_RATE_LIMIT,
            )


def resolve_client_id() -> str | None:
    """The Imgur client id from ``IMGUR_CLIENT_ID``, else from the Secret block
    ``imgur-client-id``. Never a parameter, never logged."""
    if value := os.environ.get(CLIENT_ID_ENV, "").strip():
        return value
    from prefect.blocks.system import Secret

    try:
        return str(Secret.load(CLIENT_ID_BLOCK).get())  # type: ignore[union-attr]
    except Exception:  # no server, no block: the caller reports the missing id
        return None


# A listing is cached for the flow run only (tasks.cache): a retried run spends no API credits,
# and every new snapshot reads a fresh listing (an edited URLs file, a rejected client id are
# seen at once).
@task(
    name="fetch_links",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_unless_permanent,
    cache_policy=RUN_SCOPED_INPUTS,
    cache_expiration=timedelta(days=1),
)
def fetch_links(
    source: SourceSpec,
    timeout: float,
    demo_gallery: bool = False,
    deadline: float = DEFAULT_DEADLINE,
) -> Listing:
    if demo_gallery:  # the demo gallery's id is public, and it spends no Imgur credits
        return list_links(source, client_id=DEMO_CLIENT_ID, timeout=timeout, deadline=deadline)
    client_id = resolve_client_id() if needs_client_id(source) else None
    return list_links(
        source,
        client_id=client_id,
        timeout=timeout,
        deadline=deadline,
        before_request=SharedApiRateLimit(),
    )


# Per flow run too: a retry selects what its first attempt did, from the same cached listing.
@task(name="filter_links", cache_policy=RUN_SCOPED_INPUTS, retries=1)
def filter_links(links: list[Link], config: SnapshotConfig) -> Selection:
    return select_images(links, config)
