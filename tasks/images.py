"""Tasks of the image half: download a batch, validate a batch (the pipeline's steps).

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

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from gallery_snapshot.downloader import DownloadOptions
from gallery_snapshot.models import FetchResult, ImageRecord, Link, StoredImage
from gallery_snapshot.pipeline import ValidationOptions, download_batch, validate_batch
from tasks.cache import RUN_SCOPED_BATCH
from tasks.retry_policy import retry_unless_permanent


def ranks(links: list[Link]) -> str:
    """``[1-250]``: the batch's images by their rank in the listing."""
    return f"[{links[0].rank}-{links[-1].rank}]" if links else "[none]"


def download_run_name(parameters: dict[str, Any]) -> str:
    # A mapped task's runs share its options: each is named from its own parameters.
    return f"download_images{ranks(parameters['links'])}"


def validate_run_name(parameters: dict[str, Any]) -> str:
    return f"validate_images{ranks([result.link for result in parameters['fetched']])}"


@task(
    name="download_images",
    task_run_name=download_run_name,  # type: ignore[arg-type]  # Prefect's protocol is stricter than its check
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless_permanent,
    cache_policy=NO_CACHE,
)
def download_images(
    links: list[Link], options: DownloadOptions, known: dict[str, StoredImage] | None = None
) -> list[FetchResult]:
    # Single images retry inside the step; a task retry only follows a crash of the batch,
    # and then reuses whatever the batch already stored.
    return download_batch(links, options, known=known)


@task(
    name="validate_images",
    task_run_name=validate_run_name,  # type: ignore[arg-type]
    retries=1,
    retry_condition_fn=retry_unless_permanent,
    cache_policy=RUN_SCOPED_BATCH,
)
def validate_images(fetched: list[FetchResult], options: ValidationOptions) -> list[ImageRecord]:
    return validate_batch(fetched, options)
