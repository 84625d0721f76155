"""The flows at the edges of a store: a deployment's ``out_dir`` inside another store, which the
CLI's checks never see."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.prune import gallery_prune
from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import PruneConfig, SnapshotConfig, SourceSpec
from gallery_snapshot.errors import ConfigError
from gallery_snapshot.run_policy import OUT_ROOTS_ENV
from tests.support.stores import store_with_a_snapshot
from tests.support.terminal_user import forget_terminal_user


@pytest.fixture
def outer(tmp_path: Path) -> Path:
    return store_with_a_snapshot(tmp_path / "outer")


def test_a_deployment_out_dir_inside_a_store_is_refused_by_the_flows(
    outer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deployment run's process, where runs may write under tmp_path: not inside a store.
    forget_terminal_user()
    monkeypatch.setenv(OUT_ROOTS_ENV, str(tmp_path))
    before = sorted(outer.rglob("*"))
    inside = outer / "snapshots" / "mine"
    config = SnapshotConfig(demo_gallery=True, source=SourceSpec(pages=3), out_dir=str(inside))
    state = gallery_snapshot(config, return_state=True)
    assert state.is_failed()
    with pytest.raises(ConfigError, match=f"inside the store {outer}"):
        state.result()
    prune = gallery_prune(PruneConfig(out_dirs=[str(inside)], keep_last=1), return_state=True)
    assert prune.is_failed()
    with pytest.raises(ConfigError, match="inside the store"):
        prune.result()
    assert sorted(outer.rglob("*")) == before


@pytest.mark.parametrize("out_dirs", [[""], [" "]])
def test_an_empty_deployment_out_dir_is_refused_not_taken_for_the_output_root(
    out_dirs: list[str],
) -> None:
    forget_terminal_user()
    config = SnapshotConfig(demo_gallery=True, out_dir=out_dirs[0])
    state = gallery_snapshot(config, return_state=True)
    with pytest.raises(ConfigError, match="no output location"):
        state.result()
    prune = gallery_prune(PruneConfig(out_dirs=out_dirs, keep_last=1), return_state=True)
    with pytest.raises(ConfigError, match="no output location"):
        prune.result()
