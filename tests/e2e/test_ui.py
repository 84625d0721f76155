"""The Prefect UI, in headless Chromium: a snapshot's summary table, report, contact sheet and
batch-named task runs render. Screenshots are kept in test-output/ui/ (look at them)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue
from tests.support.browser import headless_chromium
from tests.support.hostile_listing import hostile_snapshot
from tests.support.prefect_server import PrefectServer
from tests.support.snapshot_runs import run_args

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "ui"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as chromium:
        yield chromium


def run_and_artifacts(prefect_server: PrefectServer, stdout: str) -> tuple[str, dict[str, str]]:
    """The flow run a CLI run ended with (its run page), and its artifacts' ids by key."""
    [run_id] = re.findall(r"^run page: .*/runs/flow-run/([0-9a-f-]{36})$", stdout, re.M)
    artifacts = prefect_server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    ).json()
    return run_id, {artifact["key"]: artifact["id"] for artifact in artifacts}


def wait_for_inlined_image(page: Any) -> Any:
    sheet = page.locator("img[src^='data:image/jpeg']").first
    sheet.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => [...document.images].some("
        "i => i.src.startsWith('data:image/jpeg') && i.naturalWidth > 0)",
        timeout=30_000,
    )
    return sheet


def ui_page(prefect_server: PrefectServer, browser: Any) -> tuple[str, Any]:
    """The server's UI address, and a new page wide enough for it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    return prefect_server.api_url.removesuffix("/api"), page


def test_summary_report_contact_sheet_and_task_runs_render_in_the_ui(
    prefect_server: PrefectServer, browser: Any, tmp_path: Path
) -> None:
    result = prefect_server.snapshot("demo", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    run_id, artifacts = run_and_artifacts(prefect_server, result.stdout)
    ui, page = ui_page(prefect_server, browser)

    # The summary: a vertical (field, value) table, nothing cut off at 1400 px.
    page.goto(f"{ui}/artifacts/artifact/{artifacts['demo-summary']}")
    page.get_by_text("images/s").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "summary.png"), full_page=True)
    headers = page.locator("th").all_inner_texts()
    assert [header.strip() for header in headers] == ["field", "value"]
    rows = [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator("tbody tr").all()
    ]
    table = {row[0]: row[1] for row in rows if len(row) == 2}
    assert table["downloaded"] == "14" and table["selected"] == "19"
    assert table["duration"].endswith(" s") and float(table["images/s"]) > 0

    # The report: problems and skipped links, with their reasons in full.
    page.goto(f"{ui}/artifacts/artifact/{artifacts['demo-report']}")
    page.get_by_text("Skipped (6)").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
    text = page.locator("body").inner_text()
    assert "animated (image/gif)" in text and "is not allowed" in text

    # The demo's 14 stored images all fit on the contact sheet.
    page.goto(f"{ui}/artifacts/artifact/{artifacts['demo-contact-sheet']}")
    sheet = wait_for_inlined_image(page)
    page.screenshot(path=str(SCREENSHOTS / "contact-sheet.png"), full_page=True)
    assert sheet.evaluate("image => image.naturalWidth") == 8 * 120
    assert "all 14 shown" in page.locator("body").inner_text()

    # The flow run's task runs are named by the images each batch holds.
    page.goto(f"{ui}/runs/flow-run/{run_id}")
    page.get_by_text("Task Runs", exact=True).first.click(timeout=60_000)
    page.get_by_text("download_images[1-").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "task-runs.png"), full_page=True)
    assert page.get_by_text("validate_images[1-").count() >= 1


def test_a_capped_contact_sheet_says_how_many_it_shows(
    prefect_server: PrefectServer, browser: Any, tmp_path: Path
) -> None:
    with DemoGallery(bulk_catalogue(80, kilobytes=10)) as gallery:
        result = prefect_server.snapshot(
            *run_args(gallery, tmp_path / "out"), env={"IMGUR_CLIENT_ID": gallery.client_id}
        )
    assert result.returncode == 0, result.stderr
    _, artifacts = run_and_artifacts(prefect_server, result.stdout)
    [sheet_key] = [key for key in artifacts if key.endswith("contact-sheet")]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(
        f"{prefect_server.api_url.removesuffix('/api')}/artifacts/artifact/{artifacts[sheet_key]}"
    )
    wait_for_inlined_image(page)
    page.screenshot(path=str(SCREENSHOTS / "contact-sheet-capped.png"), full_page=True)
    assert "64 of 80 shown" in page.locator("body").inner_text()


def outside_links(page: Any) -> list[str]:
    """Every link target and image source on ``page`` that is not the Prefect UI's own."""
    targets = page.eval_on_selector_all(
        "a[href], img[src], [srcset]",
        "nodes => nodes.map(n => n.getAttribute('href') || n.getAttribute('src')"
        " || n.getAttribute('srcset'))",
    )
    return [
        target
        for target in targets
        if not re.match(
            r"^(/|#|data:image/|http://127\.0\.0\.1:|https://([a-z]+\.)?prefect\.io/)", target
        )
    ]


def test_a_hostile_listing_shows_as_text_in_both_uis(
    prefect_server: PrefectServer, browser: Any, tmp_path: Path
) -> None:
    """Prefect serves two UIs (v2 at /v2, the default; v1 at /): in each, the report of a
    hostile listing and its run's logs show the listing's text, and no link or image of it."""
    out = tmp_path / "out"
    with DemoGallery() as gallery:
        hostile_snapshot(prefect_server, gallery, out, 1)
        run_id = hostile_snapshot(prefect_server, gallery, out, 2)
    artifacts = prefect_server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    ).json()
    [report] = [a["id"] for a in artifacts if (a["key"] or "").endswith("-report")]
    ui = prefect_server.api_url.removesuffix("/api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    requested: list[str] = []
    for version, base in (("v1", ui), ("v2", f"{ui}/v2")):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda request: requested.append(request.url))
        # Seen, then stopped: nothing leaves the machine (UI v2 calls its analytics service).
        page.route(re.compile(r"^(?!http://127\.0\.0\.1:)[a-z]+://"), lambda route: route.abort())
        page.goto(f"{base}/artifacts/artifact/{report}")
        page.get_by_text("Skipped (").first.wait_for(timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / f"hostile-report-{version}.png"), full_page=True)
        text = page.locator("body").inner_text()
        assert "x](javascript:alert(1)) [y ![p](http://tracker.example/p.png)" in text
        assert '<img src="http://tracker.example/i.png">' in text
        assert outside_links(page) == []

        page.goto(f"{base}/runs/flow-run/{run_id}")
        page.get_by_text("CRITICAL forged line").first.wait_for(timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / f"hostile-logs-{version}.png"), full_page=True)
        assert outside_links(page) == []
        hostile = ("evil.example", "tracker.example", "127.0.0.2", "javascript:")
        assert [url for url in requested if any(name in url for name in hostile)] == []
        page.close()


def test_the_snapshot_parameters_render_as_a_form(
    prefect_server: PrefectServer, browser: Any
) -> None:
    """The flow's one parameter, ``SnapshotConfig`` (its ``source`` built from the source
    registry), is a form the UI draws field by field: every source's options, the registry's
    kinds as choices, no field left to raw JSON."""
    from prefect.utilities.callables import parameter_schema

    from flows.snapshot import gallery_snapshot

    schema = parameter_schema(gallery_snapshot).model_dump_for_openapi()
    flow = prefect_server.api("POST", "/flows/", json={"name": gallery_snapshot.name}).json()
    deployment = prefect_server.api(
        "POST",
        "/deployments/",
        json={
            "name": "form",
            "flow_id": flow["id"],
            "parameter_openapi_schema": schema,
            "entrypoint": "flows/snapshot.py:gallery_snapshot",
        },
    ).json()
    ui, page = ui_page(prefect_server, browser)
    page.goto(f"{ui}/deployments/deployment/{deployment['id']}/run")
    page.get_by_text("Urls File").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "parameters-form.png"), full_page=True)
    text = page.locator("body").inner_text()
    for label in ("Kind", "Api Url", "Section", "Subreddit", "Album", "Pages", "Max Pixels"):
        assert label in text, label
    assert "not supported" not in text.lower()
