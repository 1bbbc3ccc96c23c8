"""What a file is, from its first bytes: file names and export labels can lie."""

from __future__ import annotations

# The DIB header sizes Pillow's BMP reader knows (BITMAPCOREHEADER .. BITMAPV5HEADER).
BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}


def sniff_kind(data: bytes) -> str | None:
    """`image`, `video` or None (unknown), from magic bytes."""
    head = data[:64]
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")):
        return "image"
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in BMP_HEADER_SIZES:  # "BM" alone is text
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[4:8] == b"ftyp":
        return "image" if head[8:12] in IMAGE_BRANDS else "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM
        return "video"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3") or head[:4] == b"FLV\x01":  # MPEG-PS/ES, FLV
        return "video"
    if head[:4] == b"OggS":
        return "video"
    return None
