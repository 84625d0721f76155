import tracemalloc
from collections.abc import Iterator

import pytest
import requests

from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.errors import ApiError, RateLimitExhausted
from gallery_snapshot.http import Backoff, retry_after_seconds
from gallery_snapshot.imgur_api import ImgurClient, parse_json
from tests.support.bombs import gzip_bomb
from tests.support.hostile_server import HostileServer, response, serving

NO_WAIT = Backoff(base=0.0, cap=0.0, jitter=0.0)


def client(gallery: DemoGallery, client_id: str | None = None, **options: object) -> ImgurClient:
    return ImgurClient(
        gallery.api_url,
        client_id or gallery.client_id,
        backoff=NO_WAIT,
        **options,  # type: ignore[arg-type]
    )


def test_returns_the_envelope_data_and_notes_rate_limits(gallery: DemoGallery) -> None:
    api = client(gallery)
    page = api.get("gallery/hot/viral/day/0")
    assert isinstance(page, list) and page[0]["id"] == "Jpg001"
    assert api.rate_limits["X-RateLimit-ClientLimit"] == 12_500
    assert api.rate_limits["X-RateLimit-ClientRemaining"] == 12_499
    assert api.credits_summary() == "client 12499/12500, user 1999/2000"


def test_invalid_client_id_fails_after_one_request_without_leaking_it(gallery: DemoGallery) -> None:
    with pytest.raises(ApiError) as raised:
        client(gallery, "s3cret-wrong-id").get("gallery/hot/viral/day/0")
    assert "Invalid client_id" in str(raised.value) and "IMGUR_CLIENT_ID" in str(raised.value)
    assert "s3cret-wrong-id" not in str(raised.value)
    assert gallery.state.requests_for("/3/gallery/hot/viral/day/0") == [403]


def test_malformed_auth_header_is_permanent(gallery: DemoGallery) -> None:
    session = requests.Session()
    response = session.get(
        f"{gallery.api_url}/gallery/hot/viral/day/0", headers={"Authorization": "x"}
    )
    assert response.status_code == 403
    assert response.json()["data"]["error"] == "Malformed auth header"


def test_transient_errors_are_retried_then_succeed(gallery: DemoGallery) -> None:
    path = "/3/gallery/hot/viral/day/0"
    gallery.state.faults[path] = ["500", "over-capacity", "429+retry-after=0", "reset"]
    assert client(gallery, attempts=5).get("gallery/hot/viral/day/0")
    assert gallery.state.requests_for(path) == [
        "500",
        "over-capacity",
        "429+retry-after=0",
        "reset",
        200,
    ]


def test_an_api_that_keeps_failing_gives_a_clear_error(gallery: DemoGallery) -> None:
    gallery.state.faults["/3/gallery/hot/viral/day/0"] = ["503"] * 10
    with pytest.raises(ApiError, match="kept failing after 3 attempts") as raised:
        client(gallery, attempts=3).get("gallery/hot/viral/day/0")
    assert not raised.value.permanent


def test_a_bad_request_is_permanent(gallery: DemoGallery) -> None:
    path = "/3/gallery/hot/viral/day/0"
    gallery.state.faults[path] = ["400"]
    with pytest.raises(ApiError, match="HTTP 400 from /gallery/hot/viral/day/0") as raised:
        client(gallery).get("gallery/hot/viral/day/0")
    assert raised.value.permanent
    assert gallery.state.requests_for(path) == ["400"]


def test_missing_listing_is_permanent(gallery: DemoGallery) -> None:
    with pytest.raises(ApiError, match=r"nothing at /gallery/random/random/0 \(404\)"):
        client(gallery).get("gallery/random/random/0")
    assert gallery.state.requests_for("/3/gallery/random/random/0") == [404]


def test_spent_credits_stop_requests_politely() -> None:
    with DemoGallery(client_limit=1) as gallery:
        api = client(gallery)
        api.get("gallery/hot/viral/day/0")  # spends the last credit
        with pytest.raises(RateLimitExhausted, match="credits are spent"):
            api.get("gallery/hot/viral/day/1")
        assert len(gallery.state.requests) == 1  # the second request was never sent


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base=1.0, cap=5.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff.delay(0, retry_after=60.0) == 5.0


# -- hostile API answers (issue 17) -----------------------------------------------------------


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with serving(HostileServer()) as server:
        yield server


def hostile_client(server: HostileServer, **options: object) -> ImgurClient:
    return ImgurClient(f"{server.base_url}/3", "client-id", backoff=NO_WAIT, **options)  # type: ignore[arg-type]


def json_answer(body: bytes, status: str = "200 OK", *headers: bytes) -> bytes:
    return response(status, body, b"Content-Type: application/json", *headers)


def test_a_trickled_page_ends_at_the_deadline_without_a_retry(hostile: HostileServer) -> None:
    hostile.routes["/3/album/slow"] = json_answer(b'{"data": {"id": "slow", "images": []}}')
    hostile.trickle["/3/album/slow"] = 0.2  # one byte every 0.2 s: each read well in time
    hostile.trickle_body.add("/3/album/slow")
    with pytest.raises(ApiError) as raised:
        hostile_client(hostile, deadline=1.0).get("album/slow")
    assert str(raised.value) == "/album/slow did not answer in time (deadline of 1 s exceeded)"
    assert raised.value.permanent and hostile.connections == 1


def test_a_gzip_bomb_page_is_cut_at_the_cap_without_holding_it(hostile: HostileServer) -> None:
    bomb = gzip_bomb(200 * 1024 * 1024)
    assert len(bomb) < 300_000
    hostile.routes["/3/album/bomb"] = json_answer(bomb, "200 OK", b"Content-Encoding: gzip")
    tracemalloc.start()
    try:
        with pytest.raises(ApiError) as raised:
            hostile_client(hostile, max_bytes=1024 * 1024).get("album/bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(raised.value) == "/album/bomb answered more than 1048576 bytes"
    assert raised.value.permanent and hostile.connections == 1
    assert peak < 16 * 1024 * 1024  # the whole page would be 200 MB


def test_a_page_declaring_more_than_the_cap_is_not_read(hostile: HostileServer) -> None:
    hostile.routes["/3/album/big"] = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n" + b"[" * 1000
    )
    with pytest.raises(ApiError, match=r"^/album/big answered more than 1048576 bytes$"):
        hostile_client(hostile, max_bytes=1024 * 1024).get("album/big")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"data": ' + b"7" * 5000 + b"}", "Exceeds the limit (4300 digits)"),
        (b'{"data": [1, 2', "Expecting ',' delimiter"),
        (b'{"data": "\xff"}', "'utf-8' codec can't decode byte 0xff"),
    ],
    ids=["deep", "huge-number", "cut-short", "not-utf-8"],
)
def test_json_that_does_not_parse_is_one_permanent_error(
    hostile: HostileServer, body: bytes, reason: str
) -> None:
    hostile.routes["/3/album/odd"] = json_answer(body)
    with pytest.raises(ApiError) as raised:
        hostile_client(hostile).get("album/odd")
    message = str(raised.value)
    assert message.startswith(f"/album/odd did not answer with JSON ({reason}")
    assert "\n" not in message and len(message) < 300
    assert raised.value.permanent and hostile.connections == 1


def test_an_error_page_of_deep_json_is_still_an_http_error(hostile: HostileServer) -> None:
    hostile.routes["/3/album/deep"] = json_answer(b"[" * 100_000, "400 Bad Request")
    with pytest.raises(ApiError, match=r"^HTTP 400 from /album/deep: Bad Request$"):
        hostile_client(hostile).get("album/deep")


def test_early_hints_before_an_api_answer_are_skipped(hostile: HostileServer) -> None:
    hostile.routes["/3/album/hints"] = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        + json_answer(b'{"data": {"id": "hints"}}')
    )
    assert hostile_client(hostile).get("album/hints") == {"id": "hints"}


def test_parse_json_says_why_in_one_line() -> None:
    assert parse_json(b'{"data": [1]}') == {"data": [1]}
    assert parse_json('\ufeff{"a": 1}'.encode()) == {"a": 1}  # a byte order mark is fine
    for body, reason in [
        (b"[" * 5000, "nested too deeply"),
        (b"1" * 4301, "Exceeds the limit (4300 digits) for integer string conversion"),
        (b"", "Expecting value: line 1 column 1 (char 0)"),
    ]:
        with pytest.raises(ValueError) as raised:
            parse_json(body)
        assert str(raised.value).startswith(reason) and "\n" not in str(raised.value)
