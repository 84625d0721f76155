"""Result caching for the snapshot's tasks: scoped to one flow run.

A flow run retried after a crash or a failure (the UI's Retry, or flow retries) runs again
under the same flow run id, so a key that starts with that id finds what the first attempt
completed: those task runs show as Cached and do not run again. A new run has a new id and
never takes another run's results: a new snapshot sees the gallery anew.

Keys are ``<flow run id>/<task>-<digest>``: every result of a run lies in one folder of the
result storage, which ``forget_results`` removes once the run has recorded its snapshot (the
results of a finished run are of no use to anyone). The result storage is Prefect's default
(``PREFECT_LOCAL_STORAGE_PATH``, ``$PREFECT_HOME/storage``): every process of the worker's
machine reads it (threads, processes, a local Dask cluster). Where a run's tasks spread over
machines (Dask workers elsewhere), point that setting at a folder they share, or a retried
task run on another machine finds no result and runs again (correct, only slower).

The key functions are plain: they take the flow run id and the inputs, and need no Prefect.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext
from prefect.filesystems import LocalFileSystem
from prefect.results import get_default_result_storage
from prefect.utilities.hashing import hash_objects

from gallery_snapshot.models import FetchResult
from gallery_snapshot.pipeline import ValidationOptions

Digest = Callable[[dict[str, Any]], str | None]


def run_key(flow_run_id: str, task_name: str, digest: str) -> str:
    """The cache key of a task's result in flow run ``flow_run_id``: under the run's folder."""
    return f"{flow_run_id}/{task_name}-{digest}"


def sha256_of_parts(parts: Iterable[str]) -> str:
    """The SHA-256 of ``parts``, each prefixed by its length: no two lists of parts collide
    by how their characters fall (``["a", "b"]`` vs ``["ab"]``)."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def batch_digest(urls: Iterable[str], options: dict[str, Any]) -> str:
    """What identifies a batch's validation: the URLs it holds, in order, and the options it
    judges them by. Not the downloads themselves (staged paths, bytes): a retried run
    downloads a batch again (see ``tasks.images``) and its validation must still be found."""
    return sha256_of_parts(
        [*(f"{name}={options[name]!r}" for name in sorted(options)), "urls:", *urls]
    )


def validation_digest(inputs: dict[str, Any]) -> str:
    """``batch_digest`` of ``validate_images``' inputs. Not the processes it validates on
    (how, not what: the worker's cores): a retry on other cores finds what was validated."""
    fetched: list[FetchResult] = inputs["fetched"]
    options = {name: value for name, value in inputs.items() if name != "fetched"}
    if isinstance(options.get("options"), ValidationOptions):
        options["options"] = replace(options["options"], processes=0)
    return batch_digest((result.link.url for result in fetched), options)


def inputs_digest(inputs: dict[str, Any]) -> str | None:
    """Prefect's own hash of the inputs (None where one does not hash: no caching then)."""
    return hash_objects(inputs, raise_on_failure=False)


@dataclass
class RunScoped(CachePolicy):
    """The key ``run_key(flow run id, task name, digest of the inputs and the task's
    source)``. None outside a flow run: a task called on its own has nothing to retry."""

    digest: Digest = field(default=inputs_digest)

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if not task_ctx or task_ctx.task_run.flow_run_id is None:
            return None
        inputs_part = self.digest(inputs)
        source = TASK_SOURCE.compute_key(task_ctx, inputs, flow_parameters, **kwargs)
        if inputs_part is None:
            return None
        return run_key(
            str(task_ctx.task_run.flow_run_id),
            task_ctx.task.name,
            sha256_of_parts([inputs_part, source or ""]),
        )


RUN_SCOPED_INPUTS = RunScoped()
RUN_SCOPED_BATCH = RunScoped(digest=validation_digest)


def results_folder(storage_root: Path, flow_run_id: str) -> Path:
    return storage_root / flow_run_id


# A run that failed or crashed keeps its results for a retry; one nobody retried within this
# long is let go by the next run that completes.
RETRY_WINDOW = timedelta(days=7)


def forget_results(flow_run_id: str) -> bool:
    """Remove the cached results of flow run ``flow_run_id`` from the default result storage,
    and those of runs left unretried for ``RETRY_WINDOW``; whether the run had a local folder
    to remove. (A remote storage block keeps them: Prefect has no generic delete there; its
    own lifecycle rules must expire them.)"""
    storage = get_default_result_storage()
    if not isinstance(storage, LocalFileSystem) or storage.basepath is None:
        return False
    root = Path(storage.basepath).expanduser()
    folder = results_folder(root, flow_run_id)
    found = folder.is_dir()
    shutil.rmtree(folder, ignore_errors=True)
    for stale in stale_results(root, now=time.time()):
        shutil.rmtree(stale, ignore_errors=True)
    return found


def stale_results(root: Path, *, now: float) -> list[Path]:
    """The result folders of flow runs (named by their id) untouched for ``RETRY_WINDOW``;
    nothing else of the storage (other flows' results lie there too, as files)."""
    stale = []
    for entry in root.iterdir() if root.is_dir() else ():
        with contextlib.suppress(ValueError, OSError):
            UUID(entry.name)
            old = now - entry.stat().st_mtime > RETRY_WINDOW.total_seconds()
            if old and entry.is_dir() and not entry.is_symlink():
                stale.append(entry)
    return stale
