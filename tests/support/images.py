"""Small real images, different for every seed."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(seed: int, image_format: str = "JPEG", size: tuple[int, int] = (24, 16)) -> bytes:
    colour = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    image = Image.new("RGB", (size[0] + seed % 7, size[1]), colour)
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()
