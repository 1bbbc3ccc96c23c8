"""Benign media generated at test time, and hostile variants of it, all as bytes in memory.

Every picture is a synthetic gradient with noise or moving coloured shapes: nothing real, nothing
stored in the repository. The hostile variants are built by patching or cutting these benign files,
so they test the decoders' limits without needing any real-world sample.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import av
import numpy as np
from PIL import Image


def gradient(seed: int = 0, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """An RGB gradient with noise: enough structure for a PDQ quality well above 50."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=2)
    return np.clip(base + rng.normal(0, 12, base.shape) + rng.uniform(0, 60), 0, 255).astype(np.uint8)


def shapes_frame(index: int, size: tuple[int, int] = (160, 120), fps: int = 10) -> np.ndarray:
    """One frame of a square and a bar sliding over a gradient, so each second looks different."""
    width, height = size
    pixels = gradient(1, size) // 2
    side = height // 3
    x0 = (index * 7) % (width - side)
    y0 = (index * 3) % (height - side)
    pixels[y0:y0 + side, x0:x0 + side] = (230, 40 + (index * 9) % 200, 30)
    bar = (index * 5 + (index // fps) * 40) % width
    pixels[:, bar:bar + 8] = (20, 20, 220)
    return pixels


def _save(pixels: np.ndarray, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **params)
    return out.getvalue()


def jpeg(seed: int = 0, size: tuple[int, int] = (160, 120)) -> bytes:
    """A baseline JPEG."""
    return _save(gradient(seed, size), "JPEG", quality=85)


def png(seed: int = 1, size: tuple[int, int] = (160, 120)) -> bytes:
    return _save(gradient(seed, size), "PNG")


def gif(seed: int = 2, size: tuple[int, int] = (160, 120)) -> bytes:
    return _save(gradient(seed, size), "GIF")


def webp(seed: int = 3, size: tuple[int, int] = (160, 120)) -> bytes:
    return _save(gradient(seed, size), "WEBP", quality=80)


def bmp(seed: int = 4, size: tuple[int, int] = (160, 120)) -> bytes:
    return _save(gradient(seed, size), "BMP")


def tiff(seed: int = 5, size: tuple[int, int] = (160, 120)) -> bytes:
    return _save(gradient(seed, size), "TIFF", compression="tiff_deflate")


def animated_gif(frames: int = 30, size: tuple[int, int] = (120, 90), frame_ms: int = 100) -> bytes:
    """A 3 s animation (at the defaults) of the moving-shapes scene."""
    images = [Image.fromarray(shapes_frame(i, size)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return out.getvalue()


def _encode(container_format: str, codec: str, seconds: float, size: tuple[int, int], fps: int,
            **container_options: str) -> bytes:
    """Encode the moving-shapes scene in memory with PyAV."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format, options=container_options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        elif codec.startswith("libvpx"):
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for index in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(shapes_frame(index, size, fps), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def mp4(seconds: float = 3, size: tuple[int, int] = (160, 120), fps: int = 10, codec: str = "mpeg4") -> bytes:
    """An MP4 as a muxer writing to a stream leaves it: ftyp, mdat, then the moov index at the end."""
    return _encode("mp4", codec, seconds, size, fps)


def webm_codec() -> str | None:
    """The VP8/VP9 encoder this PyAV build has, if any."""
    for codec in ("libvpx", "libvpx-vp9"):
        if codec in av.codecs_available:
            return codec
    return None


def webm(seconds: float = 2, size: tuple[int, int] = (160, 120), fps: int = 10) -> bytes:
    codec = webm_codec()
    if codec is None:
        raise RuntimeError("no VP8/VP9 encoder in this PyAV build")
    return _encode("webm", codec, seconds, size, fps)


# --- hostile variants -------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A well-formed PNG header claiming a huge RGB image, with one tiny IDAT: refusable from the header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def png_text_bomb() -> bytes:
    """A small PNG with a zTXt chunk that inflates to 64 MB: a bomb that is not in the pixels."""
    image = png(size=(32, 32))
    ztxt = b"Comment\x00\x00" + zlib.compress(b"\x00" * (64 << 20), 9)
    first_chunk_end = 8 + 8 + 13 + 4  # signature, then IHDR with its length, type and CRC
    return image[:first_chunk_end] + _png_chunk(b"zTXt", ztxt) + image[first_chunk_end:]


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, marker, length) of each header segment up to the start of scan."""
    pos = 2
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        yield pos, marker, length
        if marker == 0xDA:
            return
        pos += 2 + length


def jpeg_bomb_header(width: int = 60_000, height: int = 60_000) -> bytes:
    """A real small JPEG whose SOF segment is patched to claim width x height."""
    data = bytearray(jpeg())
    for pos, marker, _ in _jpeg_segments(bytes(data)):
        if marker in (0xC0, 0xC1, 0xC2):
            data[pos + 5:pos + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no SOF segment in the generated JPEG")


def gif_bomb_header(width: int = 65_535, height: int = 65_535) -> bytes:
    """A real small GIF whose logical screen is patched to width x height."""
    data = bytearray(gif())
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def truncated(data: bytes, fraction: float) -> bytes:
    """The first `fraction` of a file, as an interrupted download leaves it."""
    return data[: int(len(data) * fraction)]


def jpeg_corrupt_scan(seed: int = 7) -> bytes:
    """A JPEG whose entropy-coded scan has random bytes (including bogus markers) in its middle."""
    data = bytearray(jpeg(seed, size=(320, 240)))
    scan_start = next(pos + 2 + length for pos, marker, length in _jpeg_segments(bytes(data)) if marker == 0xDA)
    middle = (scan_start + len(data)) // 2
    rng = np.random.default_rng(seed)
    noise = bytearray(rng.integers(0, 256, 400, dtype=np.uint8).tobytes())
    noise[::50] = b"\xff" * len(noise[::50])  # 0xFF followed by random bytes: invalid markers
    data[middle:middle + len(noise)] = noise
    return bytes(data)


def jpeg_magic_random(size: int = 4096, seed: int = 8) -> bytes:
    """A JPEG/JFIF signature followed by noise."""
    return b"\xff\xd8\xff\xe0" + np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def text_file() -> bytes:
    """Plain text, as when a note is saved with an image's name."""
    return ("This is a plain text file, not a picture.\n" * 20).encode()


def pdf_like() -> bytes:
    """Enough of a PDF to look like one; not an image or a video."""
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def _top_level_boxes(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """(offset, type, size) of an MP4's top-level boxes."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        yield pos, kind, size
        pos += size


def mp4_without_moov(data: bytes) -> bytes:
    """An MP4 with its moov box (the index of every sample) cut out."""
    out = bytearray()
    for pos, kind, size in _top_level_boxes(data):
        if kind != b"moov":
            out += data[pos:pos + size]
    return bytes(out)


def mp4_moov_cut(data: bytes) -> bytes:
    """An MP4 cut in the middle of its moov box (at its end): every sample there, half of the index."""
    for pos, kind, size in _top_level_boxes(data):
        if kind == b"moov":
            return data[: pos + size // 2]
    raise AssertionError("no moov box in the generated MP4")


def mp4_bad_box_size(data: bytes) -> bytes:
    """An MP4 whose edts box claims the wrong size, so the track's codec is lost: no decoder for the stream."""
    out = bytearray(data)
    pos = out.find(b"edts")
    if pos < 4:
        raise AssertionError("no edts box in the generated MP4")
    out[pos - 1] = 146  # was 36: the parser now reads the stsd as garbage
    return bytes(out)


def _visual_sample_entry(data: bytes) -> int:
    """Offset of the first stsd entry's fourcc (its width and height are 28 bytes on)."""
    stsd = data.find(b"stsd")
    if stsd < 0:
        raise AssertionError("no stsd box")
    return stsd + 16  # 'stsd', version+flags, entry count, entry size


def mov_frame_size_bomb(width: int = 6016, height: int = 6016) -> bytes:
    """A tiny uncompressed QuickTime video whose sample description claims width x height.

    Raw video has no size of its own, so FFmpeg trusts the container header: the decoder would
    allocate frames of the claimed size if the header were not checked first.
    """
    out = io.BytesIO()
    with av.open(out, mode="w", format="mov") as container:
        stream = container.add_stream("rawvideo", rate=1)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for index in range(2):
            frame = av.VideoFrame.from_ndarray(shapes_frame(index), format="rgb24").reformat(format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = bytearray(out.getvalue())
    entry = _visual_sample_entry(bytes(data))
    if bytes(data[entry:entry + 4]) != b"raw " or struct.unpack(">HH", data[entry + 28:entry + 32]) != (160, 120):
        raise AssertionError("unexpected sample description layout")
    data[entry + 28:entry + 32] = struct.pack(">HH", width, height)
    return bytes(data)


def _gif_image_descriptors(data: bytes) -> list[int]:
    """Offsets of every image descriptor (0x2C) in a GIF, found by walking its blocks."""
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    found: list[int] = []
    while pos < len(data) and data[pos] != 0x3B:
        if data[pos] == 0x21:  # extension: label, then data sub-blocks
            pos += 2
        elif data[pos] == 0x2C:
            found.append(pos)
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1  # descriptor, palette, LZW size
        else:
            raise AssertionError(f"unexpected GIF block 0x{data[pos]:02x}")
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    return found


def gif_frame_bomb(frame: int = 2, width: int = 40_000, height: int = 40_000) -> bytes:
    """An animated GIF with a small screen whose later frame descriptor claims width x height.

    The header (and so the first frame) is within limits; the canvas only grows when that frame is reached.
    """
    data = bytearray(animated_gif(frames=6))
    pos = _gif_image_descriptors(bytes(data))[frame]
    data[pos + 5:pos + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _audio(container_format: str, codec: str, seconds: float = 1.0, rate: int = 48_000) -> bytes:
    """A sine tone, encoded in memory."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        t = np.arange(int(seconds * rate)) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def ogg_opus() -> bytes:
    """A voice message as Telegram sends them: Opus in Ogg."""
    return _audio("ogg", "libopus")


def m4a() -> bytes:
    """An audio file: AAC in an MP4 container with the M4A brand."""
    return _audio("ipod", "aac")
