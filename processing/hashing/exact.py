"""Hashes of media bytes, computed in memory. Pure functions: no I/O, nothing written.

This module holds the exact hashes; the perceptual ones (PDQ, pHash, dHash, vPDQ) join them here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ExactHashes:
    md5: str
    sha256: str
    size: int


def exact_hashes(data: bytes) -> ExactHashes:
    """MD5 and SHA-256 over the original bytes, as hash lists from hotlines expect."""
    return ExactHashes(hashlib.md5(data, usedforsecurity=False).hexdigest(),
                       hashlib.sha256(data).hexdigest(), len(data))
