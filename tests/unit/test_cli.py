"""CLI paths that end before any flow runs (no Prefect needed)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import build_parser, main
from gallery_snapshot.config import PruneConfig, SnapshotConfig


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as raised:
        main(list(argv))
    code = raised.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # Errors name the option typed, not the config field it sets.
        (["run", "--workers", "0"], "error: --workers: Input should be greater than or equal to 1"),
        (["run", "--pages", "0"], "error: --pages: Input should be greater than or equal to 1"),
        (["run", "--formats", "bmp"], "unknown format bmp"),
        (["run", "--section", "cold"], "invalid choice: 'cold'"),
        (["run", "--subreddit", "a/b"], "error: --subreddit: 'a/b' is not a plain name"),
        (["run", "--allow-host", "x/y"], "argument --allow-host: 'x/y' is not a host name"),
        (
            ["run", "--allow-host", "127.0.0.1:8901"],
            "argument --allow-host: '127.0.0.1:8901' is a host and a port: give the host alone",
        ),
        (["run", "--allow-host", "[::1"], "argument --allow-host: '[::1' is not a host name"),
        (["run", "--tag", "a", "--album", "b"], "not allowed with argument"),
        (["run", "--api-url", "nope"], "error: --api-url: 'nope' is not an http(s) URL"),
        (["run", "--timeout", "abc"], "invalid float value"),
        (["run", "--timeout", "0"], "error: --timeout: Input should be greater than 0"),
        (["demo", "--deadline", "0"], "error: --deadline: Input should be greater than 0"),
        (["run", "--max-bytes", "0"], "error: --max-bytes: Input should be greater than or equal"),
        # Options generated from config fields that had none.
        (["run", "--attempts", "0"], "error: --attempts: Input should be greater than or equal"),
        (["run", "--attempts", "11"], "error: --attempts: Input should be less than or equal"),
        (["run", "--max-pixels", "many"], "argument --max-pixels: invalid int value: 'many'"),
        (["run", "--formats", "png,bmp"], "argument --formats: unknown format bmp"),
        (["run", "--formats", ","], "argument --formats: ',' names nothing"),
        (["run", "--out", "gs://b/../p"], "error: --out: "),
        (["run", "--fail-on", "101"], "argument --fail-on: '101' is not a percentage (0-100)"),
        (["demo", "--fail-on", "x"], "argument --fail-on: 'x' is not a percentage (0-100)"),
        (["run", "-q", "-v"], "argument -v/--verbose: not allowed with argument -q/--quiet"),
        # Either no server is configured, or (after an e2e `setup` in this PREFECT_HOME) the
        # local one holds no block: both lines name the Secret block a run would look for.
        (["run"], "IMGUR_CLIENT_ID is not set and "),
        (["run"], "Secret block 'imgur-client-id'"),
        (["explode"], "invalid choice: 'explode'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("gallery-snapshot")
    assert "Traceback" not in err


def test_help_documents_every_contract_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--api-url",
        "--section",
        "--sort",
        "--window",
        "--pages",
        "--subreddit",
        "--tag",
        "--album",
        "--urls-file",
        "--formats",
        "--allow-host",
        "--out",
        "--runner",
        "--workers",
        "--timeout",
        "--max-bytes",
        "--quiet",
        "--verbose",
        "--fail-on",
    ):
        assert option in text


def test_the_default_output_folder_does_not_nest_snapshots_in_snapshots() -> None:
    # The store keeps its snapshots in DIR/snapshots/: a DIR named snapshots made
    # snapshots/snapshots/<id>/manifest.json.
    for command in ("run", "demo", "verify", "prune"):
        out = Path(build_parser().parse_args([command]).out)
        assert "snapshots" not in out.parts, out
    assert build_parser().parse_args(["verify"]).out == build_parser().parse_args(["run"]).out
    # A deployment run naming no folder: ~/gallery-snapshot/<out_dir>/snapshots/<id>.
    assert "snapshots" not in Path(SnapshotConfig().out_dir).parts
    assert all("snapshots" not in Path(out).parts for out in PruneConfig(keep_last=1).out_dirs)


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as raised:
        main([*argv, "--help"])
    assert raised.value.code == 0
    return capsys.readouterr().out


def test_demo_help_shows_the_demo_default_of_three_pages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert re.search(r"--pages N .*\(default: 3\)", " ".join(help_of(capsys, "demo").split()))
    assert re.search(r"--pages N .*\(default: 1\)", " ".join(help_of(capsys, "run").split()))
    assert build_parser().parse_args(["demo"]).pages == 3


def test_help_has_examples_exit_statuses_and_a_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of(capsys)
    assert "examples:" in text and "gallery-snapshot demo" in text
    assert "exit status:" in text and "130" in text
    for command in ("setup", "server", "demo-gallery"):
        assert command in text
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert re.fullmatch(r"gallery-snapshot \d+\.\d+\.\d+\n", capsys.readouterr().out)


def test_demo_gallery_prints_a_command_that_reads_every_page() -> None:
    # 450 images at 100 a page: five pages, and the command must say so (it said 3 always).
    installed = Path(sys.executable).with_name("gallery-snapshot")
    gallery = subprocess.Popen(
        [str(installed), "demo-gallery", "--port", "0", "--images", "450"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert gallery.stdout is not None
        lines = [gallery.stdout.readline() for _ in range(3)]
    finally:
        gallery.terminate()
        gallery.wait(timeout=30)
    command = lines[2].removeprefix("try: ").split()
    assert command[0].startswith("IMGUR_CLIENT_ID=")
    assert command[1] == str(installed)  # runnable as printed, without the venv on PATH
    assert command[command.index("--pages") + 1] == "5"


@pytest.fixture
def no_prefect_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command gets as far as a Prefect server (starting or asking one)."""
    import deployments.local_server

    def refuse(**kwargs: object) -> str:
        raise AssertionError("a Prefect server was asked for before the options were checked")

    monkeypatch.setattr(deployments.local_server, "use_prefect_api", refuse)


@pytest.mark.usefixtures("no_prefect_server")
@pytest.mark.parametrize(
    ("argv", "message", "status"),
    [
        (["--urls-file", "{tmp}/missing.txt"], "cannot read the URLs file", 2),
        (["--urls-file", "{tmp}"], "not a regular file (a folder)", 2),
        (["--urls-file", "{tmp}/fifo"], "not a regular file (a FIFO)", 2),  # not waited on
        (["--urls-file", "/dev/zero"], "not a regular file (a character device)", 2),
        (["--out", "{tmp}/a-file"], "cannot write to the output folder", 1),
        (["--out", "{tmp}/a-file/out"], "cannot write to the output folder", 1),
        (["--out", "http://bucket/snaps"], "http:// is not a store this tool writes to", 2),
        (["--out", "file:///"], "not the file system's root", 2),
        (["--out", "s3://key:secret@bucket/p"], "credentials come from AWS_ACCESS_KEY_ID", 2),
    ],
)
def test_bad_files_are_found_before_any_prefect_server(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    message: str,
    status: int,
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "links.txt").write_text("https://i.imgur.com/a.jpg\n")
    os.mkfifo(tmp_path / "fifo")
    args = [arg.format(tmp=tmp_path) for arg in argv]
    if "--urls-file" not in args:
        args += ["--urls-file", str(tmp_path / "links.txt")]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    code, err = run_cli(capsys, "run", *args)
    assert code == status
    assert message in err and err.count("\n") == 1, err
    assert (tmp_path / "a-file").read_text() == "not a folder"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "99999"], "'99999' is not a port (0-65535)"),
        (["--port", "-1"], "'-1' is not a port (0-65535)"),
        (["--latency", "-1"], "'-1' is not a number >= 0"),
        (["--latency", "nan"], "'nan' is not a number >= 0"),
        (["--images", "-5"], "'-5' is not a number >= 0"),
    ],
)
def test_demo_gallery_refuses_bad_numbers_in_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, err = run_cli(capsys, "demo-gallery", *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1, err
