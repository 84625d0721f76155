"""The download step for an object store: no task may read another's disk (a Dask worker on
another machine, a container gone with its run), so a batch returns its downloads' bytes for
the validation step, wherever that runs.

Reuse was decided once for the whole run (``ObjectStore.lookup``: one LIST of the index and one
of the images); a reused image costs no request here. The rest is downloaded as for a local
store (``fetch_batch``, every check included) into a scratch folder of this worker, which is
gone when the batch returns.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.models import FetchResult, Link, StoredImage


def fetch_batch_for_upload(
    links: list[Link], options: DownloadOptions, *, known: dict[str, StoredImage]
) -> list[FetchResult]:
    """Results in link order: ``reused`` for the links in ``known``, the others downloaded
    with their content attached."""
    results: list[FetchResult | None] = [
        None
        if (image := known.get(link.url)) is None
        else FetchResult(
            link=link, status="reused", sha256=image.sha256, bytes=image.bytes, stored=image
        )
        for link in links
    ]
    todo = [index for index, result in enumerate(results) if result is None]
    with tempfile.TemporaryDirectory(prefix="gallery-snapshot-batch-") as scratch:
        scratch_options = dataclasses.replace(options, out_dir=scratch)
        for index, fetched in zip(
            todo, fetch_batch([links[i] for i in todo], scratch_options), strict=True
        ):
            results[index] = _with_content(fetched)
    return [result for result in results if result is not None]


def _with_content(result: FetchResult) -> FetchResult:
    if result.status != "fetched" or result.path is None:
        return result
    return result.model_copy(update={"content": Path(result.path).read_bytes(), "path": None})
