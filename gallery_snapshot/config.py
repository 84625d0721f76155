"""The snapshot's configuration: one pydantic model, passed to the flow as its only parameter
so that the Prefect UI renders it as a form. No secrets here: the client id comes from the
environment or a Prefect Secret block."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gallery_snapshot.escaping import one_line_text
from gallery_snapshot.http import DEFAULT_DEADLINE
from gallery_snapshot.option_hints import Cli
from gallery_snapshot.selection import allowed_host
from gallery_snapshot.sources.imgur import IMGUR_API_URL, IMGUR_IMAGE_HOST
from gallery_snapshot.sources.spec import SourceSpec
from gallery_snapshot.sources.urls_file import STDIN
from gallery_snapshot.store import checked_name

# Names other modules import from here, the config's home.
__all__ = [
    "DEFAULT_DEADLINE",
    "IMGUR_API_URL",
    "IMGUR_IMAGE_HOST",
    "STDIN",
    "PruneConfig",
    "SnapshotConfig",
    "SourceSpec",
    "one_line_text",
]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Pillow's own decompression-bomb threshold: about 89.5 megapixels.
DEFAULT_MAX_PIXELS = 89_478_485

# Format names as users write them, with the MIME type a source reports and Pillow's name.
FORMATS: dict[str, tuple[str, str]] = {
    "jpeg": ("image/jpeg", "JPEG"),
    "png": ("image/png", "PNG"),
    "gif": ("image/gif", "GIF"),
    "webp": ("image/webp", "WEBP"),
}
FormatName = Literal["jpeg", "png", "gif", "webp"]
Runner = Literal["threads", "processes", "dask"]

# A run's folder when its parameters name none: under ~/gallery-snapshot/ of the machine that
# runs it, where a deployment's relative out_dir goes. (The store keeps its snapshots in
# DIR/snapshots/: a DIR named snapshots nested them.)
DEFAULT_OUT_DIR = "default"


# The command line's help for --out, longer than a form's.
OUT_HELP = (
    "Output folder for images, manifests, quarantine, or an object store: s3://BUCKET/PREFIX "
    "(also gs://, az://, file://), credentials and endpoint from AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL."
)


class SnapshotConfig(BaseModel):
    """Everything a snapshot needs to know, in one model (the flow's only parameter)."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(default_factory=lambda: SourceSpec(), description="What to list.")
    formats: list[FormatName] = Field(["jpeg"], min_length=1, description="Image formats to keep.")
    allowed_hosts: Annotated[list[str], Cli(flag="--allow-host", metavar="HOST")] = Field(
        [IMGUR_IMAGE_HOST], min_length=1, description="Hosts images may be downloaded from."
    )
    out_dir: Annotated[str, Cli(flag="--out", metavar="DIR|URL", help=OUT_HELP)] = Field(
        DEFAULT_OUT_DIR,
        description="Output folder, or object store (s3://BUCKET/PREFIX, gs://…, az://…): "
        "store, manifests, quarantine.",
    )
    runner: Runner = Field("threads", description="Task runner for the download step.")
    workers: int = Field(8, ge=1, le=512, description="Concurrent downloads in all.")
    timeout: Annotated[float, Cli(metavar="SECONDS")] = Field(
        30.0, gt=0, le=600, description="Connect and read timeout, seconds."
    )
    deadline: Annotated[float, Cli(metavar="SECONDS")] = Field(
        DEFAULT_DEADLINE,
        gt=0,
        le=86_400,
        description="Total time per image (connect, reads, retries), seconds; as long again "
        "for each API request and each image's decoding.",
    )
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1, description="Largest image accepted, bytes.")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="Largest image accepted, pixels.")
    attempts: int = Field(3, ge=1, le=10, description="Tries per image before it counts as failed.")
    recheck: bool = Field(
        False,
        description="Request every image again, even one stored before (else reused without "
        "a request): finds the images changed at the same URL or gone since.",
    )
    change_alert: Annotated[float, Cli(metavar="PERCENT")] = Field(
        25.0,
        ge=0,
        le=100,
        description="Emit the gallery-snapshot.source.changed event when more than this "
        "share (%) of the previous snapshot's images vanished or changed.",
    )
    dask_address: Annotated[str | None, Cli(metavar="ADDRESS")] = Field(
        None, description="Existing Dask scheduler (runner=dask)."
    )
    demo_gallery: Annotated[bool, Cli(hidden=True)] = Field(
        False,
        description="Snapshot the built-in demo gallery, started by the run on loopback "
        "(overrides the source's api_url and allowed_hosts; needs no client id).",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _hostnames(cls, hosts: list[str]) -> list[str]:
        return [allowed_host(host) for host in hosts]

    _text = field_validator("dask_address")(one_line_text)

    @field_validator("out_dir")
    @classmethod
    def _output(cls, out_dir: str) -> str:
        one_line_text(out_dir)
        return checked_name(out_dir)

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, formats: list[FormatName]) -> list[FormatName]:
        return list(dict.fromkeys(formats))

    @property
    def mime_types(self) -> frozenset[str]:
        return frozenset(FORMATS[name][0] for name in self.formats)

    @property
    def pillow_formats(self) -> tuple[str, ...]:
        return tuple(FORMATS[name][1] for name in self.formats)


_DURATION = re.compile(r"(\d+)([ymwdh])")
_HOURS = {"y": 365 * 24, "m": 30 * 24, "w": 7 * 24, "d": 24, "h": 1}


def parse_duration(text: str) -> timedelta:
    """restic's durations: ``1y2m3w4d5h`` (years, months of 30 days, weeks, days, hours)."""
    if not text or _DURATION.sub("", text):
        raise ValueError(f"{text!r} is not a duration like 7d, 2w, 1y6m or 12h")
    try:
        return timedelta(hours=sum(int(n) * _HOURS[u] for n, u in _DURATION.findall(text)))
    except OverflowError:
        raise ValueError(f"{text!r} is longer than any calendar can hold") from None


class PruneConfig(BaseModel):
    """What ``prune`` keeps, per source, in each output folder (the prune flow's parameter)."""

    model_config = ConfigDict(extra="forbid")

    out_dirs: list[str] = Field(
        [DEFAULT_OUT_DIR], min_length=1, description="Output folders or object-store URLs."
    )
    keep_last: int | None = Field(None, ge=1, description="Latest snapshots to keep per source.")
    keep_within: str | None = Field(
        None, description="Keep snapshots within this of a source's latest: 12h, 7d, 2w, 6m, 1y."
    )
    dry_run: bool = Field(False, description="Report what would go; change nothing.")

    @field_validator("out_dirs")
    @classmethod
    def _outputs(cls, out_dirs: list[str]) -> list[str]:
        return [SnapshotConfig._output(out_dir) for out_dir in out_dirs]

    @field_validator("keep_within")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _keeps_something(self) -> PruneConfig:
        if self.keep_last is None and self.keep_within is None:
            raise ValueError("say what to keep: keep_last and/or keep_within")
        return self

    @property
    def keep_within_delta(self) -> timedelta | None:
        return parse_duration(self.keep_within) if self.keep_within else None
