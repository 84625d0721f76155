"""What a run parameter may make the worker reach (gallery_snapshot.run_policy), without
Prefect: the API that gets the client id, the URLs file read, the output, the Dask scheduler."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.errors import ConfigError
from gallery_snapshot.run_policy import (
    API_HOSTS_ENV,
    DASK_ADDRESSES_ENV,
    OUT_ROOTS_ENV,
    URLS_DIRS_ENV,
    RunPolicy,
    check_api_url,
    check_dask_address,
    checked_config,
    checked_out_dir,
    checked_urls_file,
    trust_terminal_user,
)
from tests.support.terminal_user import forget_terminal_user


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's home: its output root is ``home/gallery-snapshot``."""
    home = tmp_path / "home"
    (home / "gallery-snapshot").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def worker(**environ: str) -> RunPolicy:
    """The policy of a deployment run's process whose environment holds ``environ``."""
    return RunPolicy.of_this_process(environ)


def terminal() -> RunPolicy:
    trust_terminal_user()
    try:
        return RunPolicy.of_this_process({})
    finally:
        forget_terminal_user()


# -- the API that gets the client id ---------------------------------------------------------


@pytest.mark.parametrize(
    "api_url",
    [
        "http://127.0.0.2:8080/3",
        "https://api.imgur.com.evil.example/3",
        "https://api.imgur.com@evil.example/3",
        "https://evil.example\\@api.imgur.com/3",
        "https://evil.example#@api.imgur.com/3",
        "https://api.imgur.com%2eevil.example/3",
        "http://api.imgur.com/3",  # the id in clear text
        "https://api.imgur.com:8443/3",
        "https://api.imgur.com/3?x=1",
    ],
)
def test_a_run_parameter_cannot_send_the_client_id_elsewhere(home: Path, api_url: str) -> None:
    with pytest.raises(ConfigError, match="is not an API this worker sends its client id to"):
        check_api_url(api_url, worker())


def test_the_worker_names_the_apis_it_trusts(home: Path) -> None:
    for api_url in (
        "https://api.imgur.com/3",
        "https://API.Imgur.com",
        "https://api.imgur.com:443",
    ):
        check_api_url(api_url, worker())
    policy = worker(**{API_HOSTS_ENV: "proxy.internal, http://127.0.0.1:8765,[::1]:8443"})
    for api_url in (
        "https://proxy.internal/3",
        "http://127.0.0.1:8765/3",
        "https://[0:0::1]:8443/3",
        "https://api.imgur.com/3",
    ):
        check_api_url(api_url, policy)
    for api_url in ("http://proxy.internal/3", "http://127.0.0.1:8766/3", "https://[::1]/3"):
        with pytest.raises(ConfigError):
            check_api_url(api_url, policy)


def test_a_malformed_trusted_host_is_one_line_naming_the_variable(home: Path) -> None:
    with pytest.raises(ConfigError, match=f"{API_HOSTS_ENV} of this worker's environment"):
        worker(**{API_HOSTS_ENV: "user@host"})


def test_the_demo_gallery_and_a_urls_file_send_no_client_id_so_their_api_url_is_free(
    home: Path,
) -> None:
    (home / "gallery-snapshot" / "links.txt").write_text("https://i.imgur.com/a.jpg\n")
    hostile = "http://127.0.0.2:9/3"
    demo = SnapshotConfig(demo_gallery=True, source=SourceSpec(api_url=hostile))
    checked_config(demo, worker())
    urls = SourceSpec(kind="urls", urls_file="links.txt", api_url=hostile)
    checked_config(SnapshotConfig(source=urls), worker())
    with pytest.raises(ConfigError, match="client id"):
        checked_config(SnapshotConfig(source=SourceSpec(api_url=hostile)), worker())


# -- where a run writes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "out_dir",
    [
        "../outside",
        "snapshots/../../outside",
        "/tmp/elsewhere",
        "~/elsewhere",
        "~/gallery-snapshot/../elsewhere",
        "s3://their-bucket/snapshots",
        "file:///tmp/elsewhere",
    ],
)
def test_a_run_parameter_cannot_write_outside_the_output_root(home: Path, out_dir: str) -> None:
    with pytest.raises(ConfigError, match="is not where this worker writes for a run"):
        checked_out_dir(out_dir, worker())


def test_the_output_root_and_the_worker_named_roots_take_runs(home: Path, tmp_path: Path) -> None:
    root = home / "gallery-snapshot"
    assert checked_out_dir("snapshots/viral", worker()) == str(root / "snapshots" / "viral")
    assert checked_out_dir("~/gallery-snapshot/a", worker()) == str(root / "a")
    assert checked_out_dir(str(root / "b"), worker()) == str(root / "b")
    policy = worker(**{OUT_ROOTS_ENV: f"{tmp_path / 'shared'}, s3://my-bucket/snaps"})
    assert checked_out_dir(str(tmp_path / "shared" / "x"), policy) == str(tmp_path / "shared/x")
    assert checked_out_dir("s3://my-bucket/snaps/viral", policy) == "s3://my-bucket/snaps/viral"
    assert checked_out_dir("S3://my-bucket/snaps", policy) == "S3://my-bucket/snaps"
    for out_dir in ("s3://my-bucket/snapsx", "s3://my-bucket", str(tmp_path / "sharedx")):
        with pytest.raises(ConfigError):
            checked_out_dir(out_dir, policy)


def test_a_malformed_output_root_is_one_line_naming_the_variable(home: Path) -> None:
    for entry in ("relative/folder", "s3://key:secret@bucket"):
        with pytest.raises(ConfigError, match=f"{OUT_ROOTS_ENV} of this worker's environment"):
            worker(**{OUT_ROOTS_ENV: entry})


def test_the_terminal_user_writes_anywhere(home: Path, tmp_path: Path) -> None:
    assert checked_out_dir(str(tmp_path / "x"), terminal()) == str(tmp_path / "x")
    assert checked_out_dir("s3://any/where", terminal()) == "s3://any/where"
    assert checked_out_dir("rel", terminal()) == str(home / "gallery-snapshot" / "rel")


# -- which file a run reads as its URLs file -------------------------------------------------


@pytest.mark.parametrize("urls_file", ["/proc/self/environ", "/etc/passwd", "../../etc/passwd"])
def test_a_run_parameter_cannot_read_files_outside_the_allowed_folders(
    home: Path, urls_file: str
) -> None:
    with pytest.raises(ConfigError, match="is not in a folder this worker reads URLs files from"):
        checked_urls_file(urls_file, worker())


def test_a_symbolic_link_out_of_the_allowed_folder_is_refused(home: Path, tmp_path: Path) -> None:
    root = home / "gallery-snapshot"
    (tmp_path / "secret.txt").write_text("TOKEN=abc\n")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "environ").symlink_to("/proc/self/environ")
    (root / "inside.txt").write_text("https://i.imgur.com/a.jpg\n")
    (root / "alias.txt").symlink_to(root / "inside.txt")
    for name in ("escape.txt", "environ", str(root / "environ")):
        with pytest.raises(ConfigError, match="is not in a folder"):
            checked_urls_file(name, worker())
    assert checked_urls_file("alias.txt", worker()) == str(root / "inside.txt")


def test_only_regular_files_are_read_and_a_fifo_is_refused_at_once(
    home: Path, tmp_path: Path
) -> None:
    root = home / "gallery-snapshot"
    os.mkfifo(root / "fifo")
    (root / "folder").mkdir()
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "a.txt").write_text("https://i.imgur.com/a.jpg\n")
    policy = worker(**{URLS_DIRS_ENV: str(lists)})
    assert checked_urls_file(str(lists / "a.txt"), policy) == str(lists / "a.txt")
    for name, kind in (("fifo", "a FIFO"), ("folder", "a folder")):
        with pytest.raises(ConfigError, match=f"not a regular file \\({kind}\\)"):
            checked_urls_file(name, policy)
    # The terminal user may name any regular file, but never waits on a FIFO either.
    assert checked_urls_file("/etc/passwd", terminal()) == "/etc/passwd"
    for path, kind in ((str(root / "fifo"), "a FIFO"), ("/dev/zero", "a character device")):
        with pytest.raises(ConfigError, match=f"not a regular file \\({kind}\\)"):
            checked_urls_file(path, terminal())


def test_standard_input_is_the_terminal_users_only(home: Path) -> None:
    # A file named "-" in the output root is no way in: a worker's run never reads stdin.
    (home / "gallery-snapshot" / "-").write_text("https://i.imgur.com/a.jpg\n")
    with pytest.raises(ConfigError, match="standard input\\) is for the command line only"):
        checked_urls_file("-", worker())
    assert checked_urls_file("-", terminal()) == "-"


# -- the Dask scheduler ----------------------------------------------------------------------


def test_a_run_parameter_names_only_schedulers_the_worker_lists(home: Path) -> None:
    with pytest.raises(ConfigError, match="is not a scheduler this worker connects to"):
        check_dask_address("tcp://127.0.0.2:8786", worker())
    policy = worker(**{DASK_ADDRESSES_ENV: "tcp://scheduler:8786"})
    check_dask_address("tcp://scheduler:8786", policy)
    with pytest.raises(ConfigError):
        check_dask_address("tcp://scheduler:8787", policy)
    check_dask_address("tcp://127.0.0.2:8786", terminal())


# -- who is trusted --------------------------------------------------------------------------


def test_trust_comes_from_the_process_never_from_a_parameter_or_the_environment(
    home: Path,
) -> None:
    """A run parameter is a field of the config, which has no field for trust; a run's job
    variables can set its environment, which grants no trust either: only the CLI's own call
    in its own process does."""
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SnapshotConfig.model_validate({"terminal": True})
    everything = {name: "1" for name in os.environ} | {"GALLERY_SNAPSHOT_TERMINAL": "1"}
    assert not worker(**everything).terminal
    assert terminal().terminal
    assert not worker().terminal


def test_checked_config_resolves_what_the_run_reads_and_writes(home: Path) -> None:
    root = home / "gallery-snapshot"
    (root / "lists").mkdir()
    (root / "lists" / "a.txt").write_text("https://i.imgur.com/a.jpg\n")
    config = SnapshotConfig(
        source=SourceSpec(kind="urls", urls_file="lists/a.txt"), out_dir="snapshots/a"
    )
    checked = checked_config(config, worker())
    assert checked.source.urls_file == str(root / "lists" / "a.txt")
    assert checked.out_dir == str(root / "snapshots" / "a")
    with pytest.raises(ConfigError, match="dask_address"):
        checked_config(config.model_copy(update={"dask_address": "tcp://x:1"}), worker())
