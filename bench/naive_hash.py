"""The naive media hasher a user would write, as the baseline for bench/bench_hash.py.

One process, one file at a time, full-size decode, each library called the obvious way:

    python bench/naive_hash.py PATH...

Folders are expanded recursively (sorted), as `chanwatch hash` does, so both get the same files.
Prints one JSON line per file: {path, pdq, pdq_quality, phash, dhash, md5, sha256, error}.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pdqhash
from PIL import Image


def expand_paths(args: list[str]) -> list[Path]:
    """Files as given, folders recursively and sorted: the same list `chanwatch hash` hashes."""
    out: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()))
        else:
            out.append(path)
    return out


def naive_hashes(data: bytes) -> dict[str, Any]:
    """Every hash of one image held in memory, by the textbook steps (used in-process by the bench too)."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    bits, quality = pdqhash.compute(np.asarray(img))
    return {
        "pdq": np.packbits(bits.astype(np.uint8)).tobytes().hex(),
        "pdq_quality": int(quality),
        "phash": str(imagehash.phash(img)),
        "dhash": str(imagehash.dhash(img)),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def main(argv: list[str]) -> int:
    """Hash every file; a file that fails gets an `error` line and the rest carry on."""
    for path in expand_paths(argv):
        line: dict[str, Any] = {"path": str(path), "error": None}
        try:
            line.update(naive_hashes(path.read_bytes()))
        except Exception as exc:  # a baseline reports and moves on, like chanwatch
            line["error"] = f"{type(exc).__name__}: {exc}"
        sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
