"""Signal types (hash algorithms) that chanwatch computes and matches, named as python-threatexchange names them.

Lists from Hasher-Matcher-Actioner and hotlines use aliases (`video_md5`, `photo_md5`) and carry hash
types chanwatch cannot compute (PhotoDNA, SHA-1, NetClean): those are recognised, ignored and counted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SignalType:
    name: str
    hex_len: int  # 0 for vpdq, whose signal is a set of frames
    compare: str  # hamming, exact or vpdq


SIGNALS: dict[str, SignalType] = {s.name: s for s in (
    SignalType("pdq", 64, "hamming"),
    SignalType("phash", 16, "hamming"),
    SignalType("dhash", 16, "hamming"),
    SignalType("md5", 32, "exact"),
    SignalType("sha256", 64, "exact"),
    SignalType("vpdq", 0, "vpdq"),
)}

# An MD5 matches any media file, image or video, so the typed variants fold into `md5`.
ALIASES = {"video_md5": "md5", "photo_md5": "md5", "image_md5": "md5", "file_md5": "md5",
           "sha-256": "sha256", "sha_256": "sha256", "video_vpdq": "vpdq", "pdq_hash": "pdq"}

# Hash types that lists carry but chanwatch cannot compute: ignored and counted, not errors.
UNSUPPORTED = frozenset({"photodna", "pdna", "sha1", "sha-1", "netclean", "tmk", "video_tmk_pdqf", "tlsh",
                         "url", "url_md5", "raw_text", "trend_query", "ssdeep", "crc32"})

HAMMING = tuple(s.name for s in SIGNALS.values() if s.compare == "hamming")
EXACT = tuple(s.name for s in SIGNALS.values() if s.compare == "exact")


def canonical_signal(raw: str) -> str | None:
    """The canonical name of a signal type, None when it is a known but unsupported type.

    Raises KeyError for a name nobody uses, which the list parser reports with its line.
    """
    name = raw.strip().lower()
    name = ALIASES.get(name, name)
    if name in SIGNALS:
        return name
    if name in UNSUPPORTED:
        return None
    raise KeyError(raw)
