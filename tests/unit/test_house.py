"""The house rules that a reader relies on, checked from the source: no module over 400 lines
and no function over 60 in the product's code and the benchmarks, and no test module importing
another test module or a conftest (what tests share lives in tests/support)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("gallery_snapshot", "flows", "tasks", "cli", "deployments", "benchmarks")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Being rewritten by other work in progress, to be split there; the list is to be emptied, not
# grown. An entry is ``path`` (the module is too long) or ``path::function``.
PENDING_SPLIT: set[str] = set()


def sources(folders: tuple[str, ...]) -> Iterator[Path]:
    """The project's own modules: not those of a virtual environment kept inside a folder
    (the benchmark installs img2dataset into ``benchmarks/.img2dataset-venv``)."""
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            if not any(part.startswith(".") for part in path.relative_to(REPO).parts):
                yield path


def oversized(path: Path) -> Iterator[str]:
    """``path`` if the module is too long, ``path::name (N lines)`` for each function that is,
    nested ones included (decorators not counted, the docstring counted)."""
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(REPO).as_posix()
    if len(text.splitlines()) > MAX_MODULE_LINES:
        yield name
    for node in ast.walk(ast.parse(text, name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                yield f"{name}::{node.name}"


def test_no_module_over_400_lines_and_no_function_over_60() -> None:
    found = {entry for path in sources(FOLDERS) for entry in oversized(path)}
    assert found - PENDING_SPLIT == set()
    assert PENDING_SPLIT - found == set(), "split meanwhile: remove it from PENDING_SPLIT"


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, wherever in it; relative imports as ``.name``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")


def test_tests_share_code_through_tests_support_only() -> None:
    """A test module imports no other test module and no conftest: a helper two tests share
    is in tests/support, where it is found, and importing it runs no other module's tests."""
    wrong = {
        f"{path.relative_to(REPO).as_posix()}: {module}"
        for path in sources(("tests",))
        for module in imported_modules(path)
        if module.startswith(".")
        or module.split(".")[-1] == "conftest"
        or (module.startswith("tests.") and not module.startswith("tests.support"))
    }
    assert wrong == set()
