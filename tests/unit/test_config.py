from typing import Any

import pytest
from pydantic import ValidationError

from gallery_snapshot.config import PruneConfig, SnapshotConfig, SourceSpec
from gallery_snapshot.escaping import one_line


def test_defaults_are_the_articles_jpeg_only_hot_viral_gallery() -> None:
    config = SnapshotConfig()
    assert config.formats == ["jpeg"]
    assert config.allowed_hosts == ["i.imgur.com"]
    assert config.source.kind == "gallery"
    assert config.source.describe() == "gallery-hot-viral-day"
    assert config.mime_types == {"image/jpeg"}
    assert config.pillow_formats == ("JPEG",)


@pytest.mark.parametrize(
    "source",
    [
        {"kind": "subreddit"},
        {"kind": "tag"},
        {"kind": "album"},
        {"kind": "urls"},
        {"subreddit": "../../etc"},
        {"album": "a/b"},
        {"pages": 0},
        {"api_url": "ftp://example.com"},
        {"sort": "rising"},
        {"kind": "subreddit", "subreddit": "pics", "sort": "rising"},
        {"unknown": 1},
    ],
)
def test_bad_sources_are_rejected(source: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SourceSpec.model_validate(source)


def test_hosts_are_lowercased_and_checked() -> None:
    assert SnapshotConfig(allowed_hosts=["I.Imgur.COM"]).allowed_hosts == ["i.imgur.com"]
    with pytest.raises(ValidationError):
        SnapshotConfig(allowed_hosts=["evil.com/path"])


def test_formats_are_deduplicated_and_map_to_pillow_names() -> None:
    config = SnapshotConfig(formats=["png", "jpeg", "png"])
    assert config.formats == ["png", "jpeg"]
    assert config.pillow_formats == ("PNG", "JPEG")


def test_rising_is_allowed_for_the_user_section() -> None:
    assert SourceSpec(section="user", sort="rising").sort == "rising"


# Text a person reads in a log line, a run's name or a message: a parameter that a name check
# passes must be all of it, and no parameter may carry a character that a terminal or a log
# viewer acts on (a line break, ESC, a bidi override).
@pytest.mark.parametrize(
    "config",
    [
        {"source": {"kind": "subreddit", "subreddit": "EarthPorn\n"}},
        {"source": {"kind": "tag", "tag": "cats\n"}},
        {"source": {"kind": "album", "album": "AbC12\n"}},
        {"allowed_hosts": ["i.imgur.com\n"]},
        {"source": {"api_url": "https://api.imgur.com/3\n"}},
        {"source": {"api_url": "https://api.imgur.com/3\x1b[2J"}},
        {"source": {"kind": "urls", "urls_file": "lists/a\x1b[31m.txt"}},
        {"source": {"kind": "urls", "urls_file": "lists/a.txt\nforged line"}},
        {"out_dir": "snapshots/x\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07"},
        {"out_dir": "snapshots/x\nforged line"},
        {"out_dir": "snapshots/\u202ex"},
        {"dask_address": "tcp://scheduler:8786\n"},
    ],
)
def test_parameters_holding_line_breaks_or_escapes_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as raised:
        SnapshotConfig.model_validate(config)
    for line in str(raised.value).splitlines():  # pydantic's form, which Prefect logs
        assert one_line(line) == line


@pytest.mark.parametrize("out_dir", ["snapshots/x\n", "x\x1b[31m", "\u2028x"])
def test_prune_folders_holding_line_breaks_or_escapes_are_refused(out_dir: str) -> None:
    with pytest.raises(ValidationError):
        PruneConfig(out_dirs=["snapshots", out_dir], keep_last=1)


def test_plain_unicode_names_are_still_folders() -> None:
    assert SnapshotConfig(out_dir="snapshots/café ✓").out_dir == "snapshots/café ✓"
