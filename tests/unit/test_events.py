"""Which events a recorded snapshot emits, and with what in them."""

import pytest

from flows.events import SNAPSHOT_COMPLETED, SOURCE_CHANGED, completed_events, source_resource
from gallery_snapshot.changes import changed_percent, with_changes
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from tests.support.manifests import with_statuses

BEFORE = {"a": "downloaded", "b": "downloaded", "c": "downloaded", "d": "downloaded"}


@pytest.mark.parametrize(
    ("after", "alert", "fires"),
    [
        ({"a": "reused", "b": "reused", "c": "reused", "d": "gone"}, 25.0, False),  # 25 %: not past
        ({"a": "reused", "b": "reused", "c": "gone", "d": "gone"}, 25.0, True),  # 50 %
        ({"a": "reused", "b": "reused", "c": "reused", "d": "gone"}, 0.0, True),
        ({"a": "reused", "b": "reused", "c": "reused", "d": "reused"}, 0.0, False),
    ],
)
def test_the_source_changed_event_fires_past_the_threshold(
    after: dict[str, str], alert: float, fires: bool
) -> None:
    previous = with_statuses("20260101T000000Z-aaaaaa", BEFORE)  # type: ignore[arg-type]
    current = with_changes(with_statuses("20260102T000000Z-bbbbbb", after), previous)  # type: ignore[arg-type]
    config = SnapshotConfig(source=SourceSpec(section="top"), change_alert=alert)
    events = completed_events(config, current, "m.json")
    assert [name for name, _ in events] == [
        SNAPSHOT_COMPLETED,
        *([SOURCE_CHANGED] if fires else []),
    ]
    payload = events[0][1]
    assert payload["counts"] == current.counts.model_dump() and payload["manifest"] == "m.json"
    assert payload["changes"]["vanished"] == list(after.values()).count("gone")
    assert payload["previous"] == previous.snapshot_id
    if fires:
        assert events[1][1]["changed_percent"] == changed_percent(current.header.changes)


def test_a_first_snapshot_never_alerts_and_the_source_is_the_resource() -> None:
    first = with_statuses("20260101T000000Z-aaaaaa", BEFORE)  # type: ignore[arg-type]
    config = SnapshotConfig(source=SourceSpec(section="top"), change_alert=0.0)
    [(name, payload)] = completed_events(config, first, "m.json")
    assert name == SNAPSHOT_COMPLETED and payload["changes"] is None
    assert (
        source_resource(config)["prefect.resource.id"]
        == "gallery-snapshot.source.gallery-top-viral-day"
    )
