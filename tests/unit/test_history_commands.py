"""``snapshots``, ``diff`` and ``find`` on a store written as the pipeline records snapshots,
in a folder and in an object store (obstore's ``file://`` backend)."""

import json
from pathlib import Path

import pytest

from cli.main import main
from gallery_snapshot import history
from gallery_snapshot.changes import compare
from gallery_snapshot.downloader import PLACEHOLDER_REASON
from gallery_snapshot.history import read_snapshot
from gallery_snapshot.manifest import source_key, write_manifest
from gallery_snapshot.models import ImageRecord
from gallery_snapshot.pipeline import record_snapshot
from gallery_snapshot.reports.trend import trend_rows
from gallery_snapshot.store import open_store
from tests.support.manifests import with_statuses

HOSTILE = "http://h/\x1b[31mred\n.jpg"
IDS = [f"2026010{day}T000000Z-aaaaaa" for day in range(1, 5)]


def record(out: str, snapshot_id: str, fates: dict[str, str], source: str = "a.txt") -> None:
    """A snapshot recorded by the pipeline: each URL stored with content ``fates[url]`` (a
    letter), or gone for the reason given."""
    records = []
    for rank, (url, fate) in enumerate(fates.items(), 1):
        if len(fate) == 1:
            sha = fate * 64
            path = f"images/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
            fields = {"status": "downloaded", "path": path, "sha256": sha}
        else:
            fields = {"status": "gone", "error": fate}
        records.append(ImageRecord(url=url, id=url.rsplit("/", 1)[-1], rank=rank, **fields))
    record_snapshot(
        out,
        snapshot_id=snapshot_id,
        started_at=f"2026-01-0{snapshot_id[7]}T00:00:00+00:00",
        finished_at=f"2026-01-0{snapshot_id[7]}T00:01:00+00:00",
        source={"kind": "urls", "urls_file": source},
        link_count=len(records),
        records=records,
        skipped=[],
    )


@pytest.fixture(params=["folder", "object store"])
def out(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    out = str(tmp_path / "out") if request.param == "folder" else f"file://{tmp_path}/bucket"
    open_store(out).ready_for_snapshot()
    record(out, IDS[0], {"http://h/a.jpg": "a", "http://h/b.jpg": "b", HOSTILE: "c"})
    record(out, IDS[1], {"http://h/a.jpg": "d", "http://h/b.jpg": PLACEHOLDER_REASON})
    record(out, IDS[2], {"http://h/z.jpg": "e"}, source="b.txt")
    record(out, IDS[3], {"http://h/a.jpg": "d", "http://h/b.jpg": "b", "http://h/c.jpg": "f"})
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_snapshots_lists_each_source_with_its_changes(
    out: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, _ = run(capsys, "snapshots", "--out", out)
    assert code == 0 and text.endswith("4 snapshots of 2 sources\n")
    rows = {line.split()[0]: line.split() for line in text.splitlines() if "aaaaaa" in line}
    # stored, gone, failed, then new, vanished, came back, changed.
    assert rows[IDS[0]][2:] == ["3", "0", "0", "-", "-", "-", "-"]
    assert rows[IDS[1]][2:] == ["1", "1", "0", "0", "2", "0", "1"]
    assert rows[IDS[3]][2:] == ["3", "0", "0", "1", "0", "1", "0"]
    assert "urls-b  [urls-b]" in text
    code, text, _ = run(capsys, "snapshots", "--out", out, "--source", "urls-b")
    assert code == 0 and IDS[2] in text and IDS[0] not in text


def test_diff_shows_a_sources_last_two_or_any_two(
    out: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, _ = run(capsys, "diff", "--out", out)
    assert code == 0 and text.startswith(f"changes from {IDS[1]} to {IDS[3]}:")
    assert "  new: 1\n    http://h/c.jpg\n" in text and "  came back: 1\n    http://h/b.jpg" in text
    code, text, _ = run(capsys, "diff", IDS[0], IDS[3], "--out", out, "--json")
    document = json.loads(text)
    expected = compare(read_snapshot(out, IDS[0]), read_snapshot(out, IDS[3]))
    assert (document.pop("from"), document.pop("to")) == (IDS[0], IDS[3])
    assert document == expected.model_dump(exclude={"previous"})
    assert document["vanished"] == [HOSTILE] and document["changed"] == ["http://h/a.jpg"]
    code, text, _ = run(capsys, "diff", IDS[1], "--out", out)
    assert "  gone placeholder: 1\n    http://h/b.jpg\n" in text
    assert "  vanished: 2\n    http://h/b.jpg\n    http://h/\\x1b[31mred\\n.jpg\n" in text


def test_find_shows_every_snapshot_an_image_is_in(
    out: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, _ = run(capsys, "find", "http://h/b.jpg", "--out", out)
    lines = text.splitlines()
    assert code == 0 and [line.split()[:2] for line in lines[:3]] == [
        [IDS[0], "downloaded"],
        [IDS[1], "gone"],
        [IDS[3], "downloaded"],
    ]
    assert lines[3] == f"first seen {IDS[0]}, last seen {IDS[3]}"
    code, text, _ = run(capsys, "find", "e" * 64, "--out", out)
    assert code == 0 and text.split()[:2] == [IDS[2], "downloaded"]
    code, text, _ = run(capsys, "find", HOSTILE, "--out", out)
    assert "http://h/\\x1b[31mred\\n.jpg" in text and "\x1b" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["diff", "nope"], "no snapshot nope in this store"),
        (["diff", IDS[0]], f"{IDS[0]} is the first snapshot of its source"),
        (["diff", "a", "b", "c"], "give at most two snapshot ids"),
        (["snapshots", "--source", "nothing"], "no snapshots of a source matching nothing"),
        (["find", "http://h/never.jpg"], "no snapshot lists http://h/never.jpg"),
        (["find", " "], "give a URL, a sha256 or an image id to find"),
    ],
)
def test_bad_input_is_one_line_and_no_traceback(
    out: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv, "--out", out)
    assert code != 0 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_folder_without_snapshots_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "snapshots", "--out", str(tmp_path))
    assert code == 1 and err.count("\n") == 1


def test_the_history_is_read_from_one_file_and_checked_against_the_manifests(
    out: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    real_read = history._read_header
    monkeypatch.setattr(
        history, "_read_header", lambda store, sid: read.append(sid) or real_read(store, sid)
    )
    assert [s.snapshot_id for s in history.snapshots(out)] == IDS and read == []
    store = open_store(out)
    store.delete_snapshot(IDS[1])  # as prune does: history.json still lists it
    later = "20260105T000000Z-aaaaaa"
    write_manifest(out, with_statuses(later, {"x": "downloaded"}))  # not in history.json
    assert [s.snapshot_id for s in history.snapshots(out)] == [IDS[0], *IDS[2:], later]
    assert read == [later]


def test_the_history_page_links_every_snapshot_and_escapes_what_a_listing_chose(out: str) -> None:
    page = open_store(out).read("index.html").decode()
    for snapshot_id in IDS:
        assert f'<a href="snapshots/{snapshot_id}/index.html">{snapshot_id}</a>' in page
    assert page.count("<table>") == 2 and "urls-b" in page
    snapshot_page = open_store(out).read(f"snapshots/{IDS[1]}/index.html").decode()
    assert "http://h/\\x1b[31mred\\n.jpg" in snapshot_page and "\x1b" not in snapshot_page
    assert f'<a href="../{IDS[0]}/index.html">' in snapshot_page


def test_the_trend_table_holds_the_sources_last_snapshots(out: str) -> None:
    rows = trend_rows(history.snapshots(out), source_key({"kind": "urls", "urls_file": "a.txt"}))
    assert [row["snapshot"] for row in rows] == [IDS[0], IDS[1], IDS[3]]
    assert [(row["stored"], row["new"], row["vanished"], row["came back"]) for row in rows] == [
        (3, "", "", ""),
        (1, 0, 2, 0),
        (3, 1, 0, 1),
    ]
    assert rows[0]["images/s"] == "0.1"  # 3 images in a minute
    source = source_key({"kind": "urls", "urls_file": "a.txt"})
    assert len(trend_rows(history.snapshots(out), source, length=2)) == 2


def test_a_prune_rewrites_the_history_page(out: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "prune", "--out", out, "--keep-last", "1")
    assert code == 0, err
    page = open_store(out).read("index.html").decode()
    assert IDS[2] in page and IDS[3] in page
    assert IDS[0] not in page and IDS[1] not in page
