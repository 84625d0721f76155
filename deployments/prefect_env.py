"""The Prefect settings every process of the project gets, in one place (no Prefect import
here: they must be in the environment before Prefect reads its settings, once).

``FLOW_RUN_ENV`` goes to every process that runs a flow: the CLI's, ``deployments.serve``'s
and the work pool's (written into its job template by ``setup``). ``PROCESS_ENV`` adds what
any process of ours wants, servers included. The test suites and benchmarks use the same.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# Flow-run heartbeats, which the zombie-run automation watches, every this many seconds:
# Prefect's minimum; its default, 180 s, would let the automation crash healthy runs.
HEARTBEAT_SECONDS = 30

FLOW_RUN_ENV = {
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
    # Our own modules' logs (API credits, retries) in the run's logs.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "gallery_snapshot",
    # Per-task "Finished in state Completed()" lines drown the progress lines at scale.
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "WARNING",
}
PROCESS_ENV = {**FLOW_RUN_ENV, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def apply_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    """``PROCESS_ENV`` into ``environ`` where it does not already say otherwise."""
    for name, value in PROCESS_ENV.items():
        environ.setdefault(name, value)
