"""A real S3-compatible HTTP server on loopback: moto's standalone ``moto_server``, with
authentication ON, so that a request signed with wrong credentials is refused (403).

How moto's authentication is switched on: the server checks signatures and IAM policies once
``INITIAL_NO_AUTH_ACTION_COUNT`` requests have been served (default: infinitely many, so never).
Counting requests is fragile (a client retry shifts the count), so the server starts with no
authentication; ``start`` creates an IAM user, its access key and an allow-all policy, then
``POST /moto-api/reset-auth`` with body ``0`` makes every later request authenticated. From then
on only that access key works: a wrong secret gets 403 ``SignatureDoesNotMatch``, an unknown key
403 ``InvalidAccessKeyId``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

import boto3
import requests as http

BIN = Path(sys.executable).parent
REGION = "us-east-1"
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
# werkzeug's access log: 127.0.0.1 - - [25/Nov/2026 11:46:32] "PUT /bucket/key HTTP/1.1" 200 -
_ACCESS_LINE = re.compile(r'"([A-Z]+) (.*) HTTP/[0-9.]+" (\d{3}) ')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """``with S3Server(log_path) as s3:`` a running, authenticating moto server.

    ``s3.env()`` holds valid credentials in the standard ``AWS_*`` variables; the helpers
    (``create_bucket``, ``objects``, ``get``) use the same credentials through boto3.
    """

    def __init__(self, log_path: Path, *, startup_timeout: float = 30) -> None:
        self.log_path = log_path
        self.port = _free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.access_key_id = ""
        self.secret_access_key = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def __enter__(self) -> S3Server:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self) -> None:
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "inf", "MOTO_PORT": str(self.port)}
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_answering()
        self._create_credentials()

    def _wait_until_answering(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                if http.get(f"{self.endpoint_url}/moto-api/data.json", timeout=2).ok:
                    return
            except http.RequestException:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start; see {self.log_path}")
            time.sleep(0.05)

    def _create_credentials(self) -> None:
        """An IAM user allowed everything, its access key, then authentication for all."""
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="unauthenticated-setup",
            aws_secret_access_key="unauthenticated-setup",
        )
        iam.create_user(UserName="gallery-snapshot-tests")
        iam.put_user_policy(
            UserName="gallery-snapshot-tests",
            PolicyName="allow-all",
            PolicyDocument=json.dumps(ALLOW_ALL),
        )
        key = iam.create_access_key(UserName="gallery-snapshot-tests")["AccessKey"]
        self.access_key_id = str(key["AccessKeyId"])
        self.secret_access_key = str(key["SecretAccessKey"])
        http.post(f"{self.endpoint_url}/moto-api/reset-auth", data=b"0", timeout=10)
        self._client = self.s3_client()

    @property
    def pid(self) -> int:
        """The server process's id (benchmarks read its CPU time)."""
        assert self._process is not None
        return self._process.pid

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within 10 s)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def env(self) -> dict[str, str]:
        """Valid credentials and this endpoint, as the standard AWS environment variables."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
        }

    def s3_client(self, *, secret_access_key: str | None = None) -> Any:
        """A boto3 S3 client for this server (valid credentials unless a secret is given)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
        )

    def create_bucket(self, name: str) -> None:
        self._client.create_bucket(Bucket=name)

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object under ``prefix`` (all listing pages): key -> size in bytes."""
        found: dict[str, int] = {}
        for page in self._client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                found[str(item["Key"])] = int(item["Size"])
        return found

    def get(self, bucket: str, key: str) -> bytes:
        body: bytes = self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def requests(
        self, *, bucket: str | None = None, status: int | None = None
    ) -> list[tuple[str, str]]:
        """``(method, path)`` of every request answered so far, oldest first, from the server's
        access log. ``path`` is percent-decoded, without the query string: ``/BUCKET/KEY`` (or
        ``/BUCKET`` for bucket-level requests such as LIST). ``bucket`` keeps only that bucket's
        requests; ``status`` only the requests answered with that HTTP status."""
        answered: list[tuple[str, str]] = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = _ACCESS_LINE.search(_ANSI.sub("", line))
            if match is None:
                continue
            method, target, code = match.groups()
            path = unquote(target.split("?", 1)[0])
            if status is not None and int(code) != status:
                continue
            if bucket is not None and path != f"/{bucket}" and not path.startswith(f"/{bucket}/"):
                continue
            answered.append((method, path))
        return answered


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket of ``server``; ``url`` is the ``--out`` value ``s3://<name>/snapshots`` and
    ``env`` the valid credentials (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL``, ``AWS_REGION``) to add to a CLI run's environment."""

    name: str
    url: str
    env: dict[str, str]
    server: S3Server

    @property
    def prefix(self) -> str:
        return self.url.removeprefix(f"s3://{self.name}/")

    def objects(self, prefix: str = "") -> dict[str, int]:
        """key -> size of every object of this bucket under ``prefix``."""
        return self.server.objects(self.name, prefix)

    def requests(self, status: int | None = None) -> list[tuple[str, str]]:
        """``(method, path)`` of every request made to this bucket so far (see S3Server)."""
        return self.server.requests(bucket=self.name, status=status)
