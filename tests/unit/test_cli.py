"""CLI paths that end before any flow runs (no Prefect needed)."""

import pytest

from gallery_snapshot.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as raised:
        main(list(argv))
    code = raised.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--workers", "0"], "workers: Input should be greater than or equal to 1"),
        (["run", "--pages", "0"], "pages: Input should be greater than or equal to 1"),
        (["run", "--formats", "bmp"], "unknown format bmp"),
        (["run", "--section", "cold"], "invalid choice: 'cold'"),
        (["run", "--subreddit", "a/b"], "subreddit: 'a/b' is not a plain name"),
        (["run", "--allow-host", "x/y"], "allowed-hosts: 'x/y' is not a hostname"),
        (["run", "--tag", "a", "--album", "b"], "not allowed with argument"),
        (["run", "--api-url", "nope"], "api-url: 'nope' is not an http(s) URL"),
        (["run", "--timeout", "abc"], "invalid float value"),
        (["run"], "IMGUR_CLIENT_ID is not set"),
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
    ):
        assert option in text
