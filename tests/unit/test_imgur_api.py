import pytest
import requests

from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.errors import ApiError, RateLimitExhausted
from gallery_snapshot.http import Backoff, retry_after_seconds
from gallery_snapshot.imgur_api import ImgurClient

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
