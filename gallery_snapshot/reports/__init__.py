"""Report artifacts: what a person reads about a snapshot in Prefect's UI. Each artifact is
one module of this package declaring ``ARTIFACT``, a ReportArtifact: the suffix of its key
and how it renders from the snapshot (a markdown text or a table). The report task publishes
every artifact found here, so adding one is adding a module."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gallery_snapshot.history import previous_manifest
from gallery_snapshot.models import Manifest

__all__ = [
    "Markdown",
    "ReportArtifact",
    "ReportInput",
    "Table",
    "previous_manifest",
    "report_artifacts",
]


@dataclass(frozen=True)
class Markdown:
    text: str
    written: str | None = None  # where the artifact put a file of its own into the store


@dataclass(frozen=True)
class Table:
    rows: list[dict[str, Any]]


@dataclass
class ReportInput:
    """What an artifact renders from: the snapshot's manifest as written (never read back:
    tens of MB at 100,000 images), the store it is in, and how long the snapshot took."""

    out_dir: str
    manifest: Manifest
    seconds: float

    @cached_property
    def previous(self) -> Manifest | None:
        """The previous snapshot of the same source, read when first asked for."""
        return previous_manifest(self.out_dir, self.manifest)


@dataclass(frozen=True)
class ReportArtifact:
    key: str  # the suffix of the artifact's key, after the deployment's and the source's
    description: str  # "{snapshot_id}" stands for the snapshot's id
    render: Callable[[ReportInput], Markdown | Table | None]  # None: nothing to show


def report_artifacts() -> list[ReportArtifact]:
    """The ``ARTIFACT`` of every module of this package, in the order of their names."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        artifact = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ARTIFACT", None)
        if isinstance(artifact, ReportArtifact):
            found.append(artifact)
    return found
