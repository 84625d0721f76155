"""Tasks of the image half: download a batch, validate a batch.

Neither caches results: the store is the download cache (a stored image is reused, never
fetched again, and that survives crashes and retries, which a result cache keyed on staging
files would not), and validation always looks at the files as they are now.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.models import FetchResult, ImageRecord, Link, StoredImage
from gallery_snapshot.validation import validate_fetched
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
    cache_policy=NO_CACHE,
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
