"""An output location inside another store is refused (the outer store's next snapshot or prune
would delete it), and so is an empty one (the current folder), by every command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.main import main
from gallery_snapshot.errors import ConfigError
from gallery_snapshot.store import open_store
from gallery_snapshot.store.objects import ObjectStore
from tests.support.object_stores import record_snapshot as record_object_snapshot
from tests.support.stores import store_with_a_snapshot

INSIDE = [
    ".staging/x",
    "images",
    "images/ab",
    "snapshots/20261125T000000Z-abcdef",
    "quarantine/20261125T000000Z-abcdef/deeper",
    "somewhere/else/below",
]


@pytest.fixture
def outer(tmp_path: Path) -> Path:
    return store_with_a_snapshot(tmp_path / "outer")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as raised:
        main(list(argv))
    code = raised.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize("inside", INSIDE)
def test_a_folder_inside_a_store_is_refused(outer: Path, inside: str) -> None:
    before = sorted(outer.rglob("*"))
    with pytest.raises(ConfigError, match=f"inside the store {outer}"):
        open_store(str(outer / inside)).check_access()
    assert sorted(outer.rglob("*")) == before  # nothing made in there


def test_a_link_into_a_store_is_refused(outer: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(outer / "snapshots")
    with pytest.raises(ConfigError, match="inside the store"):
        open_store(str(tmp_path / "link" / "mine"))


def test_the_store_itself_and_a_folder_beside_it_are_accepted(outer: Path) -> None:
    open_store(str(outer)).check_access()
    open_store(str(outer.parent / "beside")).check_access()


@pytest.mark.parametrize("out", ["", " "])
def test_an_empty_output_location_is_refused(out: str) -> None:
    with pytest.raises(ConfigError, match="no output location"):
        open_store(out)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--urls-file", "{links}"],
        ["demo"],
        ["verify"],
        ["prune", "--keep-last", "1"],
    ],
)
@pytest.mark.parametrize("inside", ["snapshots/mine", ""])
def test_every_command_refuses_a_store_inside_a_store_or_an_empty_out(
    capsys: pytest.CaptureFixture[str],
    outer: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    inside: str,
) -> None:
    monkeypatch.chdir(outer)  # an empty --out would be this folder
    # Were the refusal missing, the run would find no Prefect API rather than start a server.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    links = tmp_path / "links.txt"
    links.write_text("https://i.imgur.com/a.jpg\n")
    out = str(outer / inside) if inside else ""
    before = sorted(outer.rglob("*"))
    code, err = run_cli(capsys, *[arg.format(links=links) for arg in argv], "--out", out)
    assert code == 2, err
    assert err.count("\n") == 1 and ("inside the store" in err or "no output location" in err)
    assert sorted(outer.rglob("*")) == before


def test_an_object_store_prefix_inside_another_store_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outer = ObjectStore(f"file://{tmp_path}/bucket/outer")
    record_object_snapshot(outer, "01-a", [1])
    for inside in ("snapshots/01-a", "snapshots/mine", "images/x", "quarantine/01-a", "index"):
        with pytest.raises(ConfigError, match="inside the store file://"):
            open_store(f"{outer.url}/{inside}").check_access()
    for argv in (["verify"], ["prune", "--keep-last", "1"]):
        code, err = run_cli(capsys, *argv, "--out", f"{outer.url}/snapshots/01-a")
        assert code == 2 and "inside the store" in err and err.count("\n") == 1, err
    assert not os.path.exists(tmp_path / "bucket" / "outer" / "snapshots" / "mine")
    # Beside it, and a folder of its own name elsewhere, are other places.
    open_store(f"file://{tmp_path}/bucket/other").check_access()
    open_store(f"file://{tmp_path}/bucket/other/snapshots/x").check_access()
