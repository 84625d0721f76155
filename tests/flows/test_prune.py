"""The prune flow (the prune-weekly deployment's) on real stores."""

from pathlib import Path

from flows.prune import gallery_prune
from gallery_snapshot.config import PruneConfig
from tests.support.stores import record_snapshot


def test_the_prune_flow_prunes_each_folder_and_passes_over_missing_ones(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        record_snapshot(out, "01-x", [1])
        record_snapshot(out, "02-x", [2])
    config = PruneConfig(out_dirs=[str(first), str(tmp_path / "none"), str(second)], keep_last=1)
    reports = gallery_prune(config)
    assert [(r["out_dir"], r["removed"], r["files_removed"]) for r in reports] == [
        (str(first), ["01-x"], 1),
        (str(second), ["01-x"], 1),
    ]
    assert not (first / "snapshots" / "01-x").exists()
