"""The snapshot's configuration: one pydantic model, passed to the flow as its only parameter
so that the Prefect UI renders it as a form. No secrets here: the client id comes from the
environment or a Prefect Secret block."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import PurePath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gallery_snapshot.escaping import one_line
from gallery_snapshot.selection import UrlProblem, allowed_host, parse_image_url
from gallery_snapshot.store import checked_name

IMGUR_API_URL = "https://api.imgur.com/3"
IMGUR_IMAGE_HOST = "i.imgur.com"
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_DEADLINE = 120.0
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
SourceKind = Literal["gallery", "subreddit", "tag", "album", "urls"]
Runner = Literal["threads", "processes", "dask"]

# A run's folder when its parameters name none: under ~/gallery-snapshot/ of the machine that
# runs it, where a deployment's relative out_dir goes. (The store keeps its snapshots in
# DIR/snapshots/: a DIR named snapshots nested them.)
DEFAULT_OUT_DIR = "default"
# ``--urls-file -``: the command line's standard input.
STDIN = "-"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def one_line_text(value: str | None) -> str | None:
    """Refuse a parameter that would not show as itself on one line: a run's parameters end
    in its name, its log lines (a worker's terminal too) and its messages, where a line break
    forges a line and ESC or a bidi override acts on the viewer."""
    if value is not None and one_line(value) != value:
        raise ValueError(f"{value!r} holds a line break, a control or a format character")
    return value


class SourceSpec(BaseModel):
    """Where the links come from: an Imgur listing (gallery, subreddit, tag, album) or URLs."""

    model_config = ConfigDict(extra="forbid")

    kind: SourceKind = Field("gallery", description="Which listing to read.")
    api_url: str = Field(IMGUR_API_URL, description="Base URL of the Imgur-compatible API.")
    section: Literal["hot", "top", "user"] = Field("hot", description="Main gallery section.")
    sort: Literal["viral", "top", "time", "rising"] | None = Field(
        None, description="Sort order; default viral (gallery) or time (subreddit, tag)."
    )
    window: Literal["day", "week", "month", "year", "all"] | None = Field(
        None, description="Time window; default day (gallery) or week (subreddit, tag)."
    )
    pages: int = Field(1, ge=1, le=1000, description="Pages to read; stops early at an empty page.")
    show_viral: bool = Field(True, description="Gallery: include viral images in the user section.")
    mature: bool = Field(False, description="Include items flagged mature.")
    subreddit: str | None = Field(None, description="Subreddit name (kind=subreddit).")
    tag: str | None = Field(None, description="Tag name (kind=tag).")
    album: str | None = Field(None, description="Album id (kind=album).")
    urls_file: str | None = Field(None, description="Path of a file with one image URL a line.")

    @field_validator("subreddit", "tag", "album")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.fullmatch(value):  # match() takes "name\n"
            raise ValueError(f"{value!r} is not a plain name (letters, digits, _ and -)")
        return value

    _text = field_validator("api_url", "urls_file")(one_line_text)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        try:  # read as every request will read it: 'http://[::1' is one line here, not retries
            parse_image_url(value)
        except UrlProblem as exc:
            raise ValueError(f"{value!r}: {exc}") from None
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> SourceSpec:
        needed = {"subreddit": self.subreddit, "tag": self.tag, "album": self.album}
        needed["urls"] = self.urls_file
        if self.kind in needed and not needed[self.kind]:
            field = "urls_file" if self.kind == "urls" else self.kind
            raise ValueError(f"source kind {self.kind!r} needs {field}")
        if self.sort == "rising" and not (self.kind == "gallery" and self.section == "user"):
            raise ValueError("sort 'rising' exists only for the gallery's user section")
        if self.kind in ("subreddit", "tag") and self.sort not in (None, "time", "top", "viral"):
            raise ValueError(f"sort {self.sort!r} is not offered for a {self.kind} gallery")
        return self

    def describe(self) -> str:
        """A short human label, used in flow run names and reports."""
        match self.kind:
            case "gallery":
                return f"gallery-{self.section}-{self.sort or 'viral'}-{self.window or 'day'}"
            case "subreddit":
                return f"r-{self.subreddit}"
            case "tag":
                return f"tag-{self.tag}"
            case "album":
                return f"album-{self.album}"
            case _:  # the file's name (two files are two sources), or standard input
                stem = "stdin" if self.urls_file == STDIN else PurePath(self.urls_file or "").stem
                return f"urls-{stem}"


class SnapshotConfig(BaseModel):
    """Everything a snapshot needs to know, in one model (the flow's only parameter)."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(default_factory=lambda: SourceSpec(), description="What to list.")
    formats: list[FormatName] = Field(["jpeg"], min_length=1, description="Image formats to keep.")
    allowed_hosts: list[str] = Field(
        [IMGUR_IMAGE_HOST], min_length=1, description="Hosts images may be downloaded from."
    )
    out_dir: str = Field(
        DEFAULT_OUT_DIR,
        description="Output folder, or object store (s3://BUCKET/PREFIX, gs://…, az://…): "
        "store, manifests, quarantine.",
    )
    runner: Runner = Field("threads", description="Task runner for the download step.")
    workers: int = Field(8, ge=1, le=512, description="Concurrent downloads in all.")
    timeout: float = Field(30.0, gt=0, le=600, description="Connect and read timeout, seconds.")
    deadline: float = Field(
        DEFAULT_DEADLINE,
        gt=0,
        le=86_400,
        description="Total time per image (connect, reads, retries), seconds; as long again "
        "for each API request and each image's decoding.",
    )
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1, description="Largest image accepted, bytes.")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="Largest image accepted, pixels.")
    attempts: int = Field(3, ge=1, le=10, description="Tries per image before it counts as failed.")
    dask_address: str | None = Field(None, description="Existing Dask scheduler (runner=dask).")
    demo_gallery: bool = Field(
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
