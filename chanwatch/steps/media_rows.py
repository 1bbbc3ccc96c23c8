"""Media rows for an import: read each file safely into memory, hash it on both cores, build the row.

Files are read in this process (where the export-folder checks live) and hashed by a pool of worker
processes, a small window at a time, so memory holds only a few files' bytes. A file whose bytes were
hashed before (same SHA-256 and variant) reuses its stored hashes and is not decoded again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from chanwatch.runs import now_micros
from collectors.export.media_files import MediaRead, read_media
from processing.hashing import DecodeLimits, ExactHashes, MediaHashes, exact_hashes, hash_media
from storage.media_index import REUSED_COLUMNS

log = logging.getLogger("chanwatch.import")
WINDOW = 16  # files read ahead and hashed together


class MediaHasher:
    """Turns the media references of normalised messages into `media` rows."""

    def __init__(self, export_dir: Path, max_bytes: int, limits: DecodeLimits, run_id: str, counts: Counter[str],
                 workers: int | None = None) -> None:
        self.export_dir = export_dir
        self.max_bytes = max_bytes
        self.limits = limits
        self.run_id = run_id
        self.counts = counts
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def rows(self, media: list[dict[str, Any]], channel_id: int,
             known: dict[tuple[int, int], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Rows in input order, hashing up to WINDOW files at a time."""
        for start in range(0, len(media), WINDOW):
            window = [self._prepare(m, channel_id, known) for m in media[start:start + WINDOW]]
            pending = [(row, data) for row, data in window if data is not None]
            for (row, _data), hashes in zip(pending, self._hash_all(pending), strict=True):
                row.update(_hash_columns(hashes, row))
            for row, _data in window:
                self._count(row)
                yield row

    def _hash_all(self, pending: list[tuple[dict[str, Any], bytes]]) -> list[MediaHashes]:
        """Perceptual hashes of the pending files; their exact hashes are already in the rows."""
        jobs = [(data, row["media_kind"], ExactHashes(row["md5"], row["sha256"], row["hashed_bytes"]))
                for row, data in pending]
        if len(jobs) < 2 or self.workers < 2:
            return [_hash_in_worker(data, self.limits, kind, exact) for data, kind, exact in jobs]
        pool = self._ensure_pool()
        futures: list[Future[MediaHashes]] = [pool.submit(_hash_in_worker, data, self.limits, kind, exact)
                                              for data, kind, exact in jobs]
        return [f.result() for f in futures]

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process runs DuckDB threads, and forking a threaded process is unsafe
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def _prepare(self, media: dict[str, Any], channel_id: int,
                 known: dict[tuple[int, int], dict[str, Any]]) -> tuple[dict[str, Any], bytes | None]:
        """The row with everything but the perceptual hashes, and the bytes still to hash (or None)."""
        row = _base_row(media, channel_id, self.run_id)
        read, variant = self._read(media)
        if read.data is None:
            row.update(status=read.status, status_reason=read.reason)
            return row, None
        exact = exact_hashes(read.data)
        row.update(hashed_variant=variant, hashed_bytes=exact.size, md5=exact.md5, sha256=exact.sha256)
        stored = known.get((row["message_id"], row["media_index"]))
        if stored and stored["sha256"] == exact.sha256 and stored["hashed_variant"] == variant:
            self.counts["media_reused"] += 1
            row.update({k: stored[k] for k in REUSED_COLUMNS})
            row["duration_s"] = row["duration_s"] if row["duration_s"] is not None else stored["duration_s"]
            return row, None
        return row, read.data

    def _read(self, media: dict[str, Any]) -> tuple[MediaRead, str]:
        """The file, or its thumbnail when only that was exported."""
        path = media["photo"] if media["photo"] is not None else media["file"]
        read = read_media(self.export_dir, path, self.max_bytes)
        if read.data is None and media["thumbnail"]:
            thumb = read_media(self.export_dir, media["thumbnail"], self.max_bytes)
            if thumb.data is not None:
                return thumb, "thumbnail"
        return read, "full"

    def _count(self, row: dict[str, Any]) -> None:
        self.counts[f"media_{row['status']}"] += 1
        if row["status"] != "hashed":
            log.debug("event=import.media_%s message_id=%s reason=%r", row["status"], row["message_id"],
                      row["status_reason"])


def _hash_in_worker(data: bytes, limits: DecodeLimits, labelled_kind: str | None,
                    exact: ExactHashes) -> MediaHashes:
    return hash_media(data, limits, labelled_kind=labelled_kind, exact=exact)


def _base_row(media: dict[str, Any], channel_id: int, run_id: str) -> dict[str, Any]:
    is_photo = media["photo"] is not None
    return {
        "channel_id": channel_id, "message_id": media["message_id"], "media_index": 0, "date": media["date"],
        "media_kind": media["media_kind"], "mime_type": media["mime_type"], "file_name": media["file_name"],
        "file_size": media["photo_file_size"] if is_photo else media["file_size"],
        "width": media["width"], "height": media["height"], "duration_s": media["duration_seconds"],
        "hashed_at": now_micros(), "run_id": run_id,
    }


def _hash_columns(hashes: MediaHashes, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": hashes.status, "status_reason": hashes.reason, "pdq": hashes.pdq, "pdq_quality": hashes.pdq_quality,
        "phash": hashes.phash, "dhash": hashes.dhash, "frames": hashes.frames, "frame_count": hashes.frames_decoded,
        "duration_s": row["duration_s"] if row["duration_s"] is not None else hashes.duration_s,
        "width": row["width"] or hashes.width, "height": row["height"] or hashes.height,
    }
