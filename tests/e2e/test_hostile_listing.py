"""A hostile listing end to end: two CLI runs against a real Prefect server snapshot a gallery
whose ids, types, links and error texts are full of markdown, HTML, URLs and control
characters. Every artifact and log line read back from the server's API, the snapshot page
and the CLI's error line hold only what the project made: the listing's text shows as text."""

from __future__ import annotations

import json
from pathlib import Path

from gallery_snapshot.changes import LISTS
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.escaping import one_line
from tests.support.hostile_listing import (
    FORGED,
    HOSTILE_ERROR,
    INJECTIONS,
    PAGE0,
    hostile_snapshot,
)
from tests.support.prefect_server import PrefectServer
from tests.support.rendering import inline_text, parse_page, render_markdown
from tests.support.snapshot_runs import manifests, run_args


def check_artifacts(server: PrefectServer, run_id: str) -> dict[str, str]:
    """Every artifact of the flow run holds only the project's links and images, and its
    table cells read the same as text and as markdown; the markdown ones, by key."""
    artifacts = server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    ).json()
    assert {artifact["type"] for artifact in artifacts} == {"table", "markdown", "progress"}
    markdown = {}
    for artifact in artifacts:
        description = render_markdown(artifact["description"] or "")
        assert description.links == description.images == description.html == []
        if artifact["type"] == "markdown":
            rendered = render_markdown(artifact["data"])
            assert rendered.links == rendered.html == rendered.bare_urls == [], rendered
            assert all(src.startswith("data:image/jpeg;base64,") for src in rendered.images)
            assert len(rendered.images) == artifact["key"].endswith("contact-sheet")
            markdown[artifact["key"]] = artifact["data"]
        elif artifact["type"] == "table":
            rows = artifact["data"]
            rows = json.loads(rows) if isinstance(rows, str) else rows
            for cell in (str(value) for row in rows for value in row.values()):
                rendered = render_markdown(cell)
                assert rendered.links == rendered.images == rendered.html == []
                assert rendered.bare_urls == [] and inline_text(cell) == cell
        else:
            assert isinstance(artifact["data"], int | float)
    return markdown


def test_a_hostile_listing_shows_as_text_in_every_artifact_log_and_page(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with DemoGallery() as gallery:
        first = hostile_snapshot(prefect_server, gallery, out, 1)
        second = hostile_snapshot(prefect_server, gallery, out, 2)
    check_artifacts(prefect_server, first)
    artifacts = check_artifacts(prefect_server, second)
    [report] = [data for key, data in artifacts.items() if key.endswith("-report")]
    shown = set(render_markdown(report).code)
    # What the listing said is in the report, as text: URLs (of each kind of change), links,
    # the type in its skip reason, the server's error text in the album's.
    _, manifest = manifests(out)
    texts = [url for name in LISTS for url in manifest["changes"][name]]
    assert len(texts) == 2 and all(INJECTIONS.replace(" ", "") in url for url in texts)
    texts += [item["url"] for item in manifest["skipped"]]
    texts += [image["url"] for image in manifest["images"] if image["status"] == "failed"]
    assert {one_line(text) for text in texts if text} <= shown
    assert any(INJECTIONS in code and "image/png" in code for code in shown)
    assert any("forged line\\x1b[31m https[:]//evil.example/" in code for code in shown)

    # The logs: the server's error text is there, on its line, with no link and no escape.
    for run_id in (first, second):
        messages = prefect_server.logs_until(
            run_id, lambda logs: any(FORGED in m and "https[:]//evil" in m for m in logs)
        )
        assert any(FORGED in message and "https[:]//evil" in message for message in messages)
        for message in messages:
            assert f"\n{FORGED}" not in message and "\x1b" not in message
            assert "://evil" not in message and "\u202e" not in message

    # The snapshot page links only to the store's own files.
    page = parse_page((out / "snapshots" / manifest["snapshot_id"] / "index.html").read_text())
    own = {"manifest.json"} | {f"../../{image['path']}" for image in manifest["images"]}
    own |= {"../../index.html", f"../{manifest['changes']['previous']}/index.html"}  # history
    assert page.urls and {value for _, _, value in page.urls} <= own
    assert one_line(texts[0]) in "".join(page.text)


def test_a_hostile_api_error_is_one_line_in_the_terminal_and_the_run_logs(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    with DemoGallery() as gallery:
        gallery.state.faults[PAGE0] = [f"error=403:{HOSTILE_ERROR}"]
        result = prefect_server.snapshot(
            *run_args(gallery, tmp_path / "out"), env={"IMGUR_CLIENT_ID": gallery.client_id}
        )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("gallery-snapshot: error: the API rejected the client id (bad ")
    assert f"\\n{FORGED}\\x1b[31m https[:]//evil.example/ " in last_line
    assert f"\n{FORGED}" not in result.stderr + result.stdout  # no line of its own
    assert "\x1b[31m" not in result.stderr + result.stdout
    flow_run = prefect_server.flow_run_writing_to(tmp_path / "out")
    said = f"\\n{FORGED}"  # escaped
    messages = prefect_server.logs_until(flow_run["id"], lambda logs: any(said in m for m in logs))
    assert any(said in message for message in messages)
    for message in messages:
        assert f"\n{FORGED}" not in message and "\x1b" not in message
        assert "://evil" not in message
