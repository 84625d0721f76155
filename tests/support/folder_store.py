"""Reading a snapshot store kept in a folder, for the end-to-end tests: its images and whether
a run left it clean."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image


def stored(out: Path) -> dict[str, str]:
    """Stored images by relative path, with their sha256."""
    return {
        path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((out / "images").rglob("*"))
        if path.is_file()
    }


def assert_store_is_clean(out: Path) -> None:
    for path in (out / "images").rglob("*"):
        if path.is_file():
            with Image.open(path) as image:
                image.load()  # every stored file is a whole image
    assert list((out / ".staging").iterdir()) == []
