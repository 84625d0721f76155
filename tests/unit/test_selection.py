from gallery_snapshot.models import Link
from gallery_snapshot.selection import normalize_url, select_links

JPEG = frozenset({"image/jpeg"})
HOSTS = ["i.imgur.com"]


def link(rank: int, url: str, type_: str | None = "image/jpeg", **extra: object) -> Link:
    image_id = url.rsplit("/", 1)[-1].split(".")[0]
    return Link.model_validate({"url": url, "id": image_id, "rank": rank, "type": type_, **extra})


def test_keeps_jpegs_by_type_not_by_extension() -> None:
    links = [
        link(1, "https://i.imgur.com/a.png", "image/jpeg"),
        link(2, "https://i.imgur.com/b.jpg", "image/png"),
    ]
    result = select_links(links, mime_types=JPEG, allowed_hosts=HOSTS)
    assert [item.id for item in result.selected] == ["a"]
    assert result.skipped[0].reason == "type image/png not wanted"


def test_drops_animated_videos_and_foreign_hosts_with_reasons() -> None:
    links = [
        link(1, "https://i.imgur.com/g.gif", "image/gif", animated=True),
        link(2, "https://i.imgur.com/v.mp4", "video/mp4", animated=True),
        link(3, "https://evil.example.com/x.jpg"),
        link(4, "ftp://i.imgur.com/y.jpg"),
        link(5, "https://i.imgur.com/u.jpg", None),
    ]
    result = select_links(links, mime_types=JPEG, allowed_hosts=HOSTS)
    assert result.selected == []
    assert [item.reason for item in result.skipped] == [
        "animated (image/gif)",
        "video (video/mp4)",
        "host evil.example.com is not allowed",
        "not an http(s) URL",
        "unknown type",
    ]


def test_animated_gifs_are_kept_when_gif_is_wanted() -> None:
    links = [link(1, "https://i.imgur.com/g.gif", "image/gif", animated=True)]
    result = select_links(links, mime_types=frozenset({"image/gif"}), allowed_hosts=HOSTS)
    assert len(result.selected) == 1


def test_dedupes_by_id_and_by_normalized_url_keeping_the_first() -> None:
    links = [
        link(1, "https://i.imgur.com/a.jpg"),
        link(2, "https://i.imgur.com/a.jpeg"),  # same id
        link(3, "HTTPS://I.IMGUR.COM:443/b.jpg#frag"),
        link(4, "https://i.imgur.com/b.jpg"),  # same URL once normalized
    ]
    result = select_links(links, mime_types=JPEG, allowed_hosts=HOSTS)
    assert [item.rank for item in result.selected] == [1, 3]
    assert [item.reason for item in result.skipped] == [
        "duplicate of https://i.imgur.com/a.jpg",
        "duplicate of HTTPS://I.IMGUR.COM:443/b.jpg#frag",
    ]


def test_normalize_url() -> None:
    assert normalize_url("HTTP://Example.COM:80") == "http://example.com/"
    assert normalize_url("https://x.com:8443/a?b=1#c") == "https://x.com:8443/a?b=1"
