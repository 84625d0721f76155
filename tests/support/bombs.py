"""Frame bombs: animations small on disk whose frames decode to billions of pixels.

Pillow writes a two-frame animation whose second frame changes one pixel (stored as a 1x1
sub-frame); that frame's bytes are then repeated, so a bomb of thousands of full-canvas frames
costs Pillow one small encode and takes a few hundred KB.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _two_frames(image_format: str, size: tuple[int, int], **options: object) -> bytes:
    mode = "L" if image_format == "GIF" else "RGB"
    base = Image.new(mode, size)
    changed = base.copy()
    changed.putpixel((0, 0), 255 if mode == "L" else (255, 255, 255))
    buffer = io.BytesIO()
    base.save(buffer, image_format, save_all=True, append_images=[changed], **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def apng_bomb(frames: int, size: tuple[int, int] = (4000, 4000)) -> bytes:
    """An APNG of ``frames`` frames of ``size``, every one after the first a 1x1 change."""
    chunks = _png_chunks(_two_frames("PNG", size, duration=10))
    out = [b"\x89PNG\r\n\x1a\n"]
    last_control = max(i for i, (kind, _) in enumerate(chunks) if kind == b"fcTL")
    control, data = chunks[last_control][1], chunks[last_control + 1][1]
    sequence = struct.unpack(">I", control[:4])[0]
    for kind, body in chunks[:last_control]:
        if kind == b"acTL":
            body = struct.pack(">I", frames) + body[4:]
        out.append(_png_chunk(kind, body))
    for _ in range(frames - 1):
        out.append(_png_chunk(b"fcTL", struct.pack(">I", sequence) + control[4:]))
        out.append(_png_chunk(b"fdAT", struct.pack(">I", sequence + 1) + data[4:]))
        sequence += 2
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def gif_bomb(frames: int, size: tuple[int, int] = (4000, 4000)) -> bytes:
    """A GIF of ``frames`` frames on a ``size`` screen, every one after the first a 1x1 change."""
    data = _two_frames("GIF", size, duration=10)
    second = data.rindex(b"\x21\xf9\x04")  # the last frame's graphic control extension
    return data[:second] + data[second:-1] * (frames - 1) + b";"


def growing_gif(frames: int, size: tuple[int, int]) -> bytes:
    """A GIF whose screen and first frame are 1x1 and whose later 1x1 frames sit at the far
    corner of ``size``: the canvas grows to ``size`` after the header was read."""
    data = _two_frames("GIF", (1, 1), duration=10)
    second = data.rindex(b"\x21\xf9\x04")
    frame = bytearray(data[second:-1])
    assert frame[8] == 0x2C  # the image descriptor, after the 8-byte control extension
    frame[9:13] = struct.pack("<HH", size[0] - 1, size[1] - 1)
    return data[:second] + bytes(frame) * (frames - 1) + b";"


def webp_bomb(frames: int, size: tuple[int, int] = (4000, 4000)) -> bytes:
    """An animated WebP of ``frames`` frames of ``size``, every one after the first a small
    change (libwebp stores it as a sub-frame)."""
    data = _two_frames("WEBP", size, duration=10, lossless=True, method=0)
    chunks, at = [], 12
    while at < len(data):
        kind, length = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        end = at + 8 + length + length % 2
        chunks.append((kind, data[at:end]))
        at = end
    frame_chunks = [raw for kind, raw in chunks if kind == b"ANMF"]
    head = b"".join(raw for kind, raw in chunks if kind != b"ANMF")
    body = b"WEBP" + head + frame_chunks[0] + frame_chunks[-1] * (frames - 1)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mpo(*frames: Image.Image) -> bytes:
    """A multi-picture JPEG (MPO: a camera's photo with its previews or stereo pair)."""
    buffer = io.BytesIO()
    frames[0].save(buffer, "MPO", save_all=True, append_images=list(frames[1:]))
    return buffer.getvalue()


def progressive_jpeg_bomb(scans: int, size: tuple[int, int]) -> bytes:
    """A progressive JPEG whose last scan is repeated: libjpeg works through the whole image
    for every scan."""
    buffer = io.BytesIO()
    Image.new("L", size).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    last = data.rindex(b"\xff\xda")  # the start of scan marker never occurs in scan data
    return data[:-2] + data[last:-2] * (scans - data.count(b"\xff\xda")) + b"\xff\xd9"


def gzip_bomb(decoded: int, *, start: bytes = b'{"data": [') -> bytes:
    """A gzip stream of ``start`` then spaces, ``decoded`` bytes in all (about a thousandth of
    that on the wire), compressed piecewise so that making it costs no memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    parts = [compressor.compress(start)]
    block = b" " * (1 << 20)
    left = decoded - len(start)
    while left > 0:
        parts.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(compressor.flush())
    return b"".join(parts)
