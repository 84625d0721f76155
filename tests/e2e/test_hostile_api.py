"""A hostile API end to end, through the CLI and a real Prefect server: a page trickled a byte
at a time, a gzip bomb, JSON nested 100,000 deep. Each ends the run at once with one line and
exit 1, after one request (neither the client nor Prefect retries it), without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bombs import gzip_bomb
from tests.support.hostile_server import HostileServer, response, serving
from tests.support.prefect_server import PrefectServer

PAGE = "/3/album/abc"
ALBUM = b'{"data": {"id": "abc", "images": []}, "success": true, "status": 200}'


def hostile_api(case: str) -> HostileServer:
    server = HostileServer()
    if case == "trickled":
        server.routes[PAGE] = response("200 OK", ALBUM)
        server.trickle[PAGE] = 0.5  # 35 s for the whole page, each byte well within --timeout
        server.trickle_body.add(PAGE)
    elif case == "gzip-bomb":
        bomb = gzip_bomb(200 * 1024 * 1024)  # about 200 KB on the wire
        server.routes[PAGE] = response("200 OK", bomb, b"Content-Encoding: gzip")
    else:
        server.routes[PAGE] = response("200 OK", b"[" * 100_000 + b"]" * 100_000)
    return server


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("trickled", "/album/abc did not answer in time (deadline of 2 s exceeded)"),
        ("gzip-bomb", "/album/abc answered more than 16777216 bytes"),
        ("deep-json", "/album/abc did not answer with JSON (nested too deeply)"),
    ],
)
def test_a_hostile_api_answer_ends_the_run_in_one_line(
    prefect_server: PrefectServer, tmp_path: Path, case: str, message: str
) -> None:
    with serving(hostile_api(case)) as api:
        result = prefect_server.snapshot(
            "run",
            "--api-url",
            f"{api.base_url}/3",
            "--album",
            "abc",
            "--deadline",
            "2",
            "--out",
            str(tmp_path / "out"),
            env={"IMGUR_CLIENT_ID": "test-client-id"},
        )
        connections = api.connections
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"gallery-snapshot: error: {message}"
    assert "Traceback" not in result.stderr + result.stdout
    assert connections == 1
