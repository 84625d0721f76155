import fcntl
import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gallery_snapshot.store.files as store_module
from gallery_snapshot.errors import StoreError
from gallery_snapshot.store import StoredFileProblem, is_stored_relpath, stored_relpath
from gallery_snapshot.store.files import MAX_NAME_LENGTH, safe_component, sync_filesystem
from gallery_snapshot.store.local import LocalStore as Store


def test_stored_paths_are_named_by_content_with_fan_out() -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert stored_relpath(sha, "JPEG") == f"images/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert stored_relpath(sha, "PNG").endswith(".png")
    assert is_stored_relpath(stored_relpath(sha, "WEBP"), sha)
    assert not is_stored_relpath(stored_relpath(sha, "JPEG"), "0" * 64)


@given(st.text(max_size=120))
def test_only_the_stored_shape_is_a_stored_path(text: str) -> None:
    """What a manifest says is a path is never trusted to point outside images/."""
    if is_stored_relpath(text):
        sha = text.split("/")[3].split(".")[0]
        assert text == stored_relpath(sha, "JPEG").replace(".jpg", text[text.rindex(".") :])
        assert ".." not in text and not text.startswith("/")


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "images/../../x", "/etc/passwd", "images/ab/cd/../../../x.jpg"],
)
def test_hostile_paths_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(StoredFileProblem, match="not the stored path"):
        Store(tmp_path).check_stored(path, sha256="0" * 64)


def staged_file(tmp_path: Path, data: bytes, name: str = "staged") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_commit_is_idempotent_and_the_file_read_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "out")
    sha = hashlib.sha256(b"content").hexdigest()
    first = store.commit(staged_file(tmp_path, b"content", "a"), sha256=sha, image_format="JPEG")
    second = store.commit(staged_file(tmp_path, b"content", "b"), sha256=sha, image_format="JPEG")
    assert first == second == stored_relpath(sha, "JPEG")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    stored = store.root / first
    assert stored.read_bytes() == b"content"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444
    store.check_stored(first, sha256=sha, size=7)


def test_commit_repairs_a_damaged_copy_and_a_planted_link(tmp_path: Path) -> None:
    store = Store(tmp_path / "out")
    sha = hashlib.sha256(b"good").hexdigest()
    relpath = store.commit(staged_file(tmp_path, b"good"), sha256=sha, image_format="PNG")
    stored = store.root / relpath
    stored.chmod(0o644)
    stored.write_bytes(b"rot")
    with pytest.raises(StoredFileProblem, match="has 3 bytes"):
        store.check_stored(relpath, sha256=sha, size=4)
    store.commit(staged_file(tmp_path, b"good"), sha256=sha, image_format="PNG")
    assert stored.read_bytes() == b"good"

    outside = staged_file(tmp_path, b"good", "outside")
    stored.unlink()
    stored.symlink_to(outside)
    with pytest.raises(StoredFileProblem, match="symbolic link"):
        store.check_stored(relpath, sha256=sha)
    store.commit(staged_file(tmp_path, b"good"), sha256=sha, image_format="PNG")
    assert not stored.is_symlink() and stored.read_bytes() == b"good"


def test_a_fan_out_folder_linked_out_of_the_store_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "out")
    sha = hashlib.sha256(b"x").hexdigest()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / sha[2:4]).mkdir(parents=True)
    (elsewhere / sha[2:4] / f"{sha}.jpg").write_bytes(b"x")
    (store.root / "images").mkdir(parents=True)
    (store.root / "images" / sha[:2]).symlink_to(elsewhere)
    with pytest.raises(StoredFileProblem, match="symbolic link"):
        store.check_stored(stored_relpath(sha, "JPEG"), sha256=sha)
    # Storing that content replaces the planted link by a real folder; nothing is written
    # where the link pointed.
    relpath = store.commit(staged_file(tmp_path, b"x"), sha256=sha, image_format="JPEG")
    assert not (store.root / "images" / sha[:2]).is_symlink()
    store.check_stored(relpath, sha256=sha)
    assert sorted(p.name for p in elsewhere.rglob("*")) == sorted([sha[2:4], f"{sha}.jpg"])


def test_a_folder_planted_at_a_stored_path_is_replaced(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "out")
    sha = hashlib.sha256(b"x").hexdigest()
    planted = store.root / stored_relpath(sha, "JPEG")
    (planted / "inside").mkdir(parents=True)
    relpath = store.commit(staged_file(tmp_path, b"x"), sha256=sha, image_format="JPEG")
    store.check_stored(relpath, sha256=sha)


def test_a_fifo_in_the_store_is_refused_without_blocking(tmp_path: Path) -> None:
    store = Store(tmp_path / "out")
    sha = hashlib.sha256(b"x").hexdigest()
    fifo = store.root / stored_relpath(sha, "JPEG")
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    with pytest.raises(StoredFileProblem, match="not a regular file"):
        store.check_stored(stored_relpath(sha, "JPEG"), sha256=sha)
    relpath = store.commit(staged_file(tmp_path, b"x"), sha256=sha, image_format="JPEG")
    store.check_stored(relpath, sha256=sha)  # replaced by the real content


@pytest.mark.parametrize("entry", [".staging", "index.sqlite", ".lock", "images"])
def test_the_stores_own_entries_are_never_followed_through_a_link(
    tmp_path: Path, entry: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / entry).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="it is a symbolic link"):
        Store(out).prepare()
    assert list((tmp_path / "elsewhere").iterdir()) == []


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


def test_syncing_the_store_starts_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child forked from a large flow process counts as large as it in the run's peak memory.
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    store_module._libc.cache_clear()
    try:
        (tmp_path / "file").write_bytes(b"x")
        sync_filesystem(tmp_path)
    finally:
        store_module._libc.cache_clear()
