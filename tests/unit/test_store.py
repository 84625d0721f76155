import fcntl
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gallery_snapshot.errors import StoreError
from gallery_snapshot.store import MAX_NAME_LENGTH, Store, image_parts, safe_component


def test_plain_imgur_names_are_kept() -> None:
    assert image_parts("https://i.imgur.com/21yMxCS.jpg") == (
        "images",
        "i.imgur.com",
        "21yMxCS.jpg",
    )
    # The port is not part of the name: the demo gallery's port changes every run.
    assert image_parts("http://127.0.0.1:4242/a.jpg") == image_parts("http://127.0.0.1:1/a.jpg")


@pytest.mark.parametrize(
    "url",
    [
        "https://h/../../etc/passwd",
        "https://h/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "https://h/a%2fb.jpg",
        "https://h/.hidden.jpg",
        "https://h/" + "x" * 500 + ".jpg",
        "https://h/\u202eexe.jpg",
        "https://h/",
    ],
)
def test_hostile_names_stay_inside_the_store(url: str, tmp_path: Path) -> None:
    path = Store(tmp_path).image_path(url)
    assert path.parent == tmp_path / "images" / "h"
    assert not path.name.startswith(".")
    assert len(path.name) <= MAX_NAME_LENGTH


@given(st.text(min_size=0, max_size=300))
def test_safe_component_is_always_one_safe_component(text: str) -> None:
    name = safe_component(text, fallback="x")
    assert name and len(name) <= MAX_NAME_LENGTH
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert name.isascii()


@given(st.text(max_size=60), st.text(max_size=60))
def test_different_inputs_never_share_a_name(first: str, second: str) -> None:
    if first != second:
        assert safe_component(first, fallback="x") != safe_component(second, fallback="x")


@given(st.text(max_size=200))
def test_any_url_path_maps_inside_the_store(path: str) -> None:
    folder, host, name = image_parts("https://i.imgur.com/" + path)
    assert (folder, host) == ("images", "i.imgur.com")
    assert name not in ("", ".", "..") and "/" not in name


def test_a_name_shaped_like_a_hashed_name_cannot_take_it() -> None:
    hashed = safe_component("a b.jpg", fallback="x")
    assert hashed.startswith("a_b-") and hashed.endswith(".jpg")
    assert safe_component(hashed, fallback="x") != hashed


def test_snapshot_lock_cleans_up_and_sweep_spares_live_runs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    dead = store.staging_dir("dead")
    dead.mkdir(parents=True)
    (dead / "1-a.jpg").write_bytes(b"partial")
    (tmp_path / ".staging" / "dead.lock").write_bytes(b"")
    with store.snapshot_lock("live") as staging:
        (staging / "2-b.jpg").write_bytes(b"partial")
        assert store.sweep_stale_staging() == ["dead"]
        assert staging.exists() and not dead.exists()
    assert not staging.exists()
    assert not (tmp_path / ".staging" / "live.lock").exists()


def test_sweep_spares_a_staging_folder_locked_by_another_process(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.staging_dir("other").mkdir(parents=True)
    lock_path = tmp_path / ".staging" / "other.lock"
    ready_read, ready_write = os.pipe()
    release_read, release_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other run: holds the lock until released
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            os.write(ready_write, b"x")
            os.read(release_read, 1)
        os._exit(0)
    os.read(ready_read, 1)
    try:
        assert store.sweep_stale_staging() == []
        assert store.staging_dir("other").exists()
    finally:
        os.write(release_write, b"x")
        os.waitpid(pid, 0)


def test_unwritable_output_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot write to the output folder"):
        Store(blocker / "out").prepare()
