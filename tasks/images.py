"""Tasks of the image half: download a batch, validate a batch.

A batch's validation is cached for the flow run (``tasks.cache``): it is the step that stores
the batch, so a retried run shows the batches its first attempt completed as Cached. It is
found by the batch's URLs, not by the downloads it was handed.

A download is not cached: its result names staged files whose life the store governs (the
validation moves them into the store, a failed attempt sets them aside for adoption), so a
cached result could name files that are gone. The store is the download cache instead: run
again, a batch reuses every image the first attempt stored, without a request (and adopts
the whole downloads a failed attempt set aside).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.models import FetchResult, ImageRecord, Link, StoredImage
from gallery_snapshot.validation import validate_fetched
from tasks.cache import RUN_SCOPED_BATCH
from tasks.retry_policy import retry_unless_permanent


@task(
    name="download_images",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless_permanent,
    cache_policy=NO_CACHE,
)
def download_images(
    links: list[Link], options: DownloadOptions, known: dict[str, StoredImage] | None = None
) -> list[FetchResult]:
    # Single images retry inside fetch_batch; a task retry only follows a crash of the batch,
    # and then reuses whatever the batch already stored.
    return fetch_batch(links, options, known=known)


@task(
    name="validate_images",
    retries=1,
    retry_condition_fn=retry_unless_permanent,
    cache_policy=RUN_SCOPED_BATCH,
)
def validate_images(
    fetched: list[FetchResult],
    *,
    out_dir: str,
    snapshot_id: str,
    formats: tuple[str, ...],
    max_pixels: int,
    deadline: float,
) -> list[ImageRecord]:
    return validate_fetched(
        fetched,
        out_dir=out_dir,
        snapshot_id=snapshot_id,
        formats=formats,
        max_pixels=max_pixels,
        deadline=deadline,
    )
