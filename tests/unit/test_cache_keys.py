"""The cache keys: one flow run's retries share them, another run never does."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

from gallery_snapshot.models import FetchResult, Link
from gallery_snapshot.pipeline import ValidationOptions
from tasks.cache import (
    RETRY_WINDOW,
    RUN_SCOPED_BATCH,
    RUN_SCOPED_INPUTS,
    batch_digest,
    forget_results,
    results_folder,
    run_key,
    validation_digest,
)

OPTIONS = {"out_dir": "/out", "snapshot_id": "s1", "formats": ("JPEG",), "max_pixels": 9}


def link(n: int) -> Link:
    return Link(url=f"https://i.example/{n}.jpg", id=str(n), rank=n)


def fetched(n: int, **update: Any) -> FetchResult:
    staged = FetchResult(link=link(n), status="fetched", path=f"/out/.staging/s1/{n}")
    return staged.model_copy(update=update)


def task_context(flow_run_id: Any, name: str = "validate_images") -> Any:
    return SimpleNamespace(
        task_run=SimpleNamespace(flow_run_id=flow_run_id, id=uuid4()),
        task=SimpleNamespace(name=name, source_code=f"def {name}(): ..."),
    )


def test_a_key_lies_in_its_flow_runs_folder() -> None:
    assert run_key("r1", "validate_images", "abc") == "r1/validate_images-abc"


def test_a_batch_is_known_by_its_urls_in_order_and_its_options() -> None:
    urls = [link(n).url for n in range(3)]
    assert batch_digest(urls, OPTIONS) == batch_digest(list(urls), dict(reversed(OPTIONS.items())))
    assert batch_digest(urls, OPTIONS) != batch_digest(urls[::-1], OPTIONS)
    assert batch_digest(urls, OPTIONS) != batch_digest(urls[:2], OPTIONS)
    assert batch_digest(urls, OPTIONS) != batch_digest(urls, {**OPTIONS, "max_pixels": 10})
    # A URL cannot pass for an option, nor two URLs for one.
    assert batch_digest(["a", "b"], {}) != batch_digest(["ab"], {})
    assert batch_digest(["a", "b"], {}) != batch_digest(["a\0b"], {})


def test_a_validation_is_found_whatever_its_downloads_were() -> None:
    """A retried run downloads the batch again (a reused image, other staged files): its
    validation is the same batch's."""
    first = {"fetched": [fetched(1), fetched(2)], **OPTIONS}
    again = {"fetched": [fetched(1, path="/elsewhere"), fetched(2, status="reused")], **OPTIONS}
    other = {"fetched": [fetched(1), fetched(3)], **OPTIONS}
    assert validation_digest(first) == validation_digest(again)
    assert validation_digest(first) != validation_digest(other)


def test_a_validation_is_found_whatever_cores_validated_it() -> None:
    """A retry on a worker with other cores (another machine, cpuset or CPU limit) validates
    the same batch: the processes it validates on say how, not what. Failed on main: the
    digest held ``processes``, so the retry validated every batch again."""
    options = ValidationOptions(**OPTIONS, deadline=10.0, processes=2)  # type: ignore[arg-type]
    first = {"fetched": [fetched(1), fetched(2)], "options": options}
    elsewhere = {**first, "options": dataclasses.replace(options, processes=8)}
    in_place = {**first, "options": dataclasses.replace(options, processes=0)}
    stricter = {**first, "options": dataclasses.replace(options, max_pixels=8)}
    assert validation_digest(first) == validation_digest(elsewhere) == validation_digest(in_place)
    assert validation_digest(first) != validation_digest(stricter)


def test_a_retry_of_the_run_finds_its_key_and_another_run_does_not() -> None:
    run, other = uuid4(), uuid4()
    inputs = {"fetched": [fetched(1)], **OPTIONS}
    key = RUN_SCOPED_BATCH.compute_key(task_context(run), inputs, {})
    assert key is not None and key.startswith(f"{run}/validate_images-")
    assert RUN_SCOPED_BATCH.compute_key(task_context(run), inputs, {}) == key
    assert RUN_SCOPED_BATCH.compute_key(task_context(other), inputs, {}) != key
    changed = {**inputs, "max_pixels": 1}
    assert RUN_SCOPED_BATCH.compute_key(task_context(run), changed, {}) != key


def test_inputs_are_hashed_as_prefect_does_within_the_run() -> None:
    run = uuid4()
    inputs = {"links": [link(1), link(2)], "config": {"mime_types": ["image/jpeg"]}}
    key = RUN_SCOPED_INPUTS.compute_key(task_context(run, "filter_links"), inputs, {})
    assert key is not None and key.startswith(f"{run}/filter_links-")
    assert RUN_SCOPED_INPUTS.compute_key(task_context(run, "filter_links"), inputs, {}) == key
    other = {**inputs, "links": [link(1)]}
    assert RUN_SCOPED_INPUTS.compute_key(task_context(run, "filter_links"), other, {}) != key
    assert RUN_SCOPED_INPUTS.compute_key(task_context(uuid4(), "filter_links"), inputs, {}) != key


def test_no_key_outside_a_flow_run() -> None:
    """A task called on its own has no run to retry: nothing is cached."""
    assert RUN_SCOPED_INPUTS.compute_key(task_context(None), {"x": 1}, {}) is None
    assert RUN_SCOPED_INPUTS.compute_key(None, {"x": 1}, {}) is None  # type: ignore[arg-type]


def test_an_unhashable_input_caches_nothing() -> None:
    inputs = {"lock": __import__("threading").Lock()}
    assert RUN_SCOPED_INPUTS.compute_key(task_context(uuid4()), inputs, {}) is None


def test_forgetting_a_run_removes_its_results_and_unretried_ones_only(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from prefect.filesystems import LocalFileSystem

    import tasks.cache

    storage = LocalFileSystem(basepath=str(tmp_path))
    monkeypatch.setattr(tasks.cache, "get_default_result_storage", lambda: storage)
    done, failed, abandoned = (str(uuid4()) for _ in range(3))
    for run in (done, failed, abandoned):
        folder = results_folder(tmp_path, run)
        folder.mkdir()
        (folder / "validate_images-abc").write_text("{}")
    (tmp_path / "0f3a9b").write_text("{}")  # another flow's result, under Prefect's own key
    (tmp_path / "not-a-run").mkdir()
    week = RETRY_WINDOW.total_seconds()
    os.utime(results_folder(tmp_path, abandoned), (time.time() - week - 60,) * 2)
    os.utime(tmp_path / "not-a-run", (time.time() - week - 60,) * 2)
    assert forget_results(done) is True
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [failed, "0f3a9b", "not-a-run"]
    )
    assert forget_results(done) is False  # nothing left to forget
