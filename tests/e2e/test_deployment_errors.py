"""A deployment run that meets a permanent error says so in one line of its logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from gallery_snapshot.demo_gallery import DemoGallery
from tests.e2e.conftest import PrefectServer
from tests.e2e.test_deployments import deployed, run_deployment, setup_runs, worker

__all__ = ["deployed", "setup_runs"]  # fixtures


def test_a_rejected_client_id_is_one_line_in_the_run_logs(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    with DemoGallery() as gallery:
        gallery.state.client_id = "not-the-stored-id"  # the Secret block's id is rejected
        config = {
            "source": {"api_url": gallery.api_url, "pages": 1},
            "allowed_hosts": [gallery.image_host],
            "out_dir": str(tmp_path / "out"),
        }
        with worker(prefect_server, tmp_path):
            run = run_deployment(prefect_server, "viral-hourly", config)
            deadline = time.monotonic() + 120  # not a speed check: a hang bound
            while run["state_type"] in {"SCHEDULED", "PENDING", "RUNNING"}:
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(1)
                run = prefect_server.api("GET", f"/flow_runs/{run['id']}").json()
    assert run["state_type"] == "FAILED", (tmp_path / "worker.log").read_text()
    logs = prefect_server.api(
        "POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}}
    ).json()
    messages = [log["message"] for log in logs]
    assert any("the API rejected the client id (Invalid client_id)" in m for m in messages)
    assert not [m for m in messages if "Traceback" in m or m.count("\n") > 1], json.dumps(
        messages, indent=1
    )
