"""The per-image models stay small: instances given the same fields share one set of their
names (pydantic keeps one per instance, most of a model's memory)."""

from __future__ import annotations

import pickle
import tracemalloc

import pydantic
import pytest

from gallery_snapshot.models import FetchResult, ImageRecord, Link, SkippedLink, StoredImage


def validated(rank: int) -> ImageRecord:
    """As validation makes a record: a failed one, copied with what the image turned out to be."""
    record = ImageRecord(
        url=f"https://i.imgur.com/{rank}.jpg", id=str(rank), rank=rank, status="failed"
    )
    return record.model_copy(
        update={"status": "downloaded", "path": f"images/{rank}.jpg", "sha256": "a" * 64}
    )


def test_instances_given_the_same_fields_share_their_names() -> None:
    first, second = validated(1), validated(2)
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert first.model_fields_set == {"url", "id", "rank", "status", "path", "sha256"}
    links = [Link(url=f"u{rank}", id=str(rank), rank=rank) for rank in (1, 2)]
    assert links[0].__pydantic_fields_set__ is links[1].__pydantic_fields_set__
    fetched = [FetchResult(link=link, status="gone") for link in links]
    assert fetched[0].__pydantic_fields_set__ is fetched[1].__pydantic_fields_set__
    stored = [StoredImage(sha256=s, format="JPEG", bytes=1, width=1, height=1) for s in "ab"]
    assert stored[0].__pydantic_fields_set__ is stored[1].__pydantic_fields_set__
    skipped = [SkippedLink(url=u, reason="r") for u in "ab"]
    assert skipped[0].__pydantic_fields_set__ is skipped[1].__pydantic_fields_set__


def test_a_copy_or_an_unpickled_model_leaves_the_shared_names_alone() -> None:
    record = validated(1)
    failed = record.model_copy(update={"error": "HTTP 500"})
    assert failed.model_fields_set == record.model_fields_set | {"error"}
    assert validated(2).model_fields_set == {"url", "id", "rank", "status", "path", "sha256"}
    assert record.model_dump(exclude_unset=True) == validated(1).model_dump(exclude_unset=True)
    restored = pickle.loads(pickle.dumps(failed))
    assert restored == failed and restored.__pydantic_fields_set__ is failed.__pydantic_fields_set__
    with pytest.raises(pydantic.ValidationError):
        record.status = "gone"  # type: ignore[misc]  # frozen: the shared set never grows


def test_a_record_takes_under_a_kilobyte() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        records = [validated(rank) for rank in range(5000)]
        per_record = (tracemalloc.get_traced_memory()[0] - before) / len(records)
    finally:
        tracemalloc.stop()
    assert per_record < 1000  # 2.2 KB with a set of names per record
