"""vPDQ matching at bank scale: one Hamming index over every good frame of every listed video.

The rules are vPDQ's (see processing/hashing/vpdq.py for the pairwise version): frames below the
quality floor are dropped and duplicates folded on both sides; a query frame matches a video when
some frame of it is within the frame distance. The query match is the share of the query's frames
that match the video; the compared match is the share of the video's frames that some query frame
matches. The references disagree on which share must reach 80% (the vpdq tool checks the listed
video, python-threatexchange the query), so both thresholds are settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processing.matching.binary_index import BinaryIndex, build_index, load_index, search
from processing.matching.codes import hex_to_codes


@dataclass(frozen=True)
class VpdqRules:
    frame_quality: int = 50
    frame_distance: int = 31
    query_match_percent: float = 80.0
    compared_match_percent: float = 0.0  # 0 = not checked (python-threatexchange's default)


@dataclass(frozen=True)
class VpdqHit:
    entry: int
    query_match_percent: float
    compared_match_percent: float


def good_frame_codes(frames: Sequence[dict] | None, quality: int) -> np.ndarray:
    """Unique PDQ codes of the frames at or above the quality floor."""
    hexes = sorted({f["pdq"].lower() for f in frames or () if f.get("pdq") and (f.get("quality") or 0) >= quality})
    return hex_to_codes(hexes, 32)


class VpdqIndex:
    kind = "vpdq"

    def __init__(self, frames: BinaryIndex, frame_entry: np.ndarray, entry_frames: np.ndarray) -> None:
        self.frames = frames
        self.frame_entry = frame_entry  # entry index of each indexed frame
        self.entry_frames = entry_frames  # good unique frames per entry

    @property
    def size(self) -> int:
        return len(self.entry_frames)

    @classmethod
    def build(cls, videos: Sequence[Sequence[dict]], quality: int) -> VpdqIndex:
        per_video = [good_frame_codes(frames, quality) for frames in videos]
        codes = np.concatenate(per_video) if per_video else np.zeros((0, 32), np.uint8)
        frame_entry = np.repeat(np.arange(len(per_video), dtype=np.int64), [len(c) for c in per_video])
        return cls(build_index(codes), frame_entry, np.array([len(c) for c in per_video], dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"frames_{k}": v for k, v in self.frames.arrays().items()}
        out.update(frame_entry=self.frame_entry, entry_frames=self.entry_frames,
                   frames_kind=np.array([self.frames.kind]))
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> VpdqIndex:
        inner = {k[len("frames_"):]: v for k, v in arrays.items() if k.startswith("frames_") and k != "frames_kind"}
        return cls(load_index(str(arrays["frames_kind"][0]), inner), arrays["frame_entry"], arrays["entry_frames"])

    def match(self, query_frames: Sequence[dict] | None, rules: VpdqRules) -> list[VpdqHit]:
        """Listed videos that the query video matches under `rules`."""
        query = good_frame_codes(query_frames, rules.frame_quality)
        if len(query) == 0 or self.size == 0:
            return []
        q, frame, _ = search(self.frames, query, rules.frame_distance)
        if not len(q):
            return []
        entry = self.frame_entry[frame]
        query_hits = np.unique(entry * len(query) + q) // len(query)  # (entry, query frame) pairs, by entry
        frame_hits = np.unique(frame)
        entries, query_counts = np.unique(query_hits, return_counts=True)
        compared_counts = np.bincount(self.frame_entry[frame_hits], minlength=self.size)[entries]
        hits = []
        for e, qc, cc in zip(entries.tolist(), query_counts.tolist(), compared_counts.tolist(), strict=True):
            query_pct = 100.0 * qc / len(query)
            compared_pct = 100.0 * cc / max(1, int(self.entry_frames[e]))
            if query_pct >= rules.query_match_percent and compared_pct >= rules.compared_match_percent:
                hits.append(VpdqHit(e, round(query_pct, 2), round(compared_pct, 2)))
        return hits
