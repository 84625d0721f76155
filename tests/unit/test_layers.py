"""The layers point one way: the core (gallery_snapshot/) below tasks, flows and deployments,
the command line above them all. Read from the source (every import, lazy ones in functions
included), so an import that only runs on some path is found too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Each layer, and the top-level packages it must not import.
FORBIDDEN = {
    "gallery_snapshot": {"prefect", "prefect_dask", "flows", "tasks", "deployments", "cli"},
    "tasks": {"flows", "deployments", "cli"},
    "flows": {"deployments", "cli"},
    "deployments": {"cli"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages the module at ``path`` imports, wherever in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_one_above_it(layer: str) -> None:
    wrong = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) & FORBIDDEN[layer])
        for path in sorted((REPO / layer).rglob("*.py"))
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_command_line_is_its_own_layer() -> None:
    assert (REPO / "cli" / "__init__.py").is_file()
    assert not list((REPO / "gallery_snapshot").glob("cli*.py"))


def test_prefect_settings_are_given_values_in_one_place() -> None:
    """The project's Prefect settings (heartbeats, our loggers in the runs' logs, analytics
    off) are written in deployments/prefect_env.py alone; the CLI, serve, setup's pool
    template, the local server and the benchmarks take them from there."""
    names = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_LOGGING_EXTRA_LOGGERS")
    names += ("PREFECT_SERVER_ANALYTICS_ENABLED",)
    spelled = {
        str(path.relative_to(REPO))
        for folder in ("gallery_snapshot", "tasks", "flows", "deployments", "cli", "benchmarks")
        for path in (REPO / folder).rglob("*.py")
        if any(name in path.read_text(encoding="utf-8") for name in names)
    }
    assert spelled == {"deployments/prefect_env.py"}
