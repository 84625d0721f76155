import pytest
from pydantic import ValidationError

from gallery_snapshot.config import SnapshotConfig, SourceSpec


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
