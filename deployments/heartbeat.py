"""Flow-run heartbeats, which the zombie-run automation watches (no Prefect import here: the
CLI sets them before Prefect reads its settings).

Every process that runs the flow sends one every ``HEARTBEAT_SECONDS`` (Prefect's minimum; its
default, 180 s, would let the automation crash healthy runs): workers through the work pool's
job variables, the CLI and ``deployments.serve`` through their environment.
"""

HEARTBEAT_SECONDS = 30
HEARTBEAT_ENV = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}
