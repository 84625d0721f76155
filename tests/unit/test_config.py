from typing import Any

import pytest
from hypothesis import given, settings
from pydantic import ValidationError

from gallery_snapshot.config import PruneConfig, SnapshotConfig, SourceSpec
from gallery_snapshot.escaping import one_line
from gallery_snapshot.selection import parse_image_url
from tests.support.urls import awkward_urls


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
        {"api_url": "http://[::1"},
        {"api_url": "http://127.0.0.1\uff1a8080/3"},
        {"api_url": "http://host:99999/3"},
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


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8901",
        "i.imgur.com:443",
        "[::1]:8080",
        "[::1",
        "::1]",
        "[127.0.0.1]",
        "[fe80::1%eth0]",
        "fe80::1%25eth0",
        "1:2",
        "",
        "i.imgur.com\uff1a443",
    ],
)
def test_a_host_with_a_port_or_a_malformed_ipv6_literal_is_refused(host: str) -> None:
    """``127.0.0.1:8901`` was once read as the IPv6 literal ``[127.0.0.1:8901]``."""
    with pytest.raises(ValidationError):
        SnapshotConfig(allowed_hosts=[host])


@settings(max_examples=300, deadline=None)
@given(awkward_urls(("127.0.0.1:8901", "i.imgur.com")))
def test_any_allowed_host_text_is_a_host_or_one_validation_error(text: str) -> None:
    try:
        [host] = SnapshotConfig(allowed_hosts=[text]).allowed_hosts
    except ValidationError as exc:
        assert len(exc.errors()) == 1
        return
    assert parse_image_url(f"http://{host}/a.jpg").host == host


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
