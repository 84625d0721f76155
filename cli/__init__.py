"""The ``gallery-snapshot`` command, the layer above flows, tasks and deployments: it parses
options into the config model, checks what it can before Prefect starts, and runs the flow or
the store's commands. Nothing below imports it."""
