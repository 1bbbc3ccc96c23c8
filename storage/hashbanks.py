"""Hash banks on the storage root: list versions, their entries, their indexes, and which one is active.

A version's files are written first (entries Parquet, then the index directory, renamed into place
in one step), and only then does the registry (`hashlist_versions/versions.parquet`) name it active,
by an atomic replace. A reader therefore sees either the old active version or the new one, fully
indexed; a crash part-way leaves files that no registry row names, which the next import of that
list overwrites. Indexes are memory-mapped `.npy` arrays: loading a 10M-entry bank takes
milliseconds, and nothing is rebuilt at lookup time.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from processing.errors import BadInputError
from processing.matching.binary_index import BinaryIndex, load_index
from processing.matching.exact_index import ExactIndex
from processing.matching.vpdq_index import VpdqIndex
from storage.files import fsync_dir, write_bytes_atomic, write_parquet_atomic
from storage.schemas import HASHLIST_VERSIONS, HASHLISTS
from storage.store import Store

LIST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
INDEX_DIR = "_index/hashlists"
REGISTRY_FILE = f"{HASHLIST_VERSIONS.name}/versions.parquet"
LOOKUP_COLUMNS = ("entry_id", "category", "hash")


def check_list_name(name: str) -> str:
    if not LIST_NAME_RE.match(name):
        raise BadInputError(f"list name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def entries_file(name: str, version: int) -> str:
    return f"{HASHLISTS.name}/list={name}/v{version:05d}.parquet"


@dataclass
class Bank:
    """One loaded list version: an index and the entries' lookup columns per signal type."""

    name: str
    version: int
    indexes: dict[str, Any]  # signal -> BinaryIndex | ExactIndex | VpdqIndex
    entries: dict[str, pa.Table]  # signal -> entry_id, category, hash (aligned with index positions)

    def entry(self, signal: str, position: int) -> dict[str, Any]:
        row = self.entries[signal].slice(position, 1).to_pylist()[0]
        row["entry_id"] = row["entry_id"] or row["hash"]
        return row


class HashBanks:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- registry --------------------------------------------------------------------------------
    def registry(self) -> pa.Table:
        path = self.store.root / REGISTRY_FILE
        return pq.read_table(path, schema=HASHLIST_VERSIONS.schema) if path.exists() \
            else HASHLIST_VERSIONS.empty_table()

    def write_registry(self, rows: list[dict[str, Any]]) -> None:
        """Replace the registry in one atomic rename: this is the moment a state change takes effect."""
        rows = sorted(rows, key=lambda r: (r["list_name"], r["list_version"]))
        table = pa.Table.from_pylist(rows, schema=HASHLIST_VERSIONS.schema).replace_schema_metadata(
            {"chanwatch.dataset": HASHLIST_VERSIONS.name, "chanwatch.schema_version": str(HASHLIST_VERSIONS.version)})
        write_parquet_atomic(self.store.root / REGISTRY_FILE, table)

    def active_versions(self) -> list[tuple[str, int]]:
        return [(r["list_name"], r["list_version"]) for r in self.registry().to_pylist()
                if r["state"] == "active" and r["list_enabled"]]

    def next_version(self, name: str) -> int:
        versions = [r["list_version"] for r in self.registry().to_pylist() if r["list_name"] == name]
        return max(versions, default=0) + 1

    # -- version files ---------------------------------------------------------------------------
    def version_dir(self, name: str, version: int) -> Path:
        return self.store.root / INDEX_DIR / name / f"v{version:05d}"

    def write_version(self, name: str, version: int, entries: pa.Table, indexes: dict[str, Any],
                      lookup: dict[str, pa.Table]) -> None:
        """Write a version's entries and indexes durably; it is not live until the registry names it."""
        table = entries.replace_schema_metadata({"chanwatch.dataset": HASHLISTS.name,
                                                 "chanwatch.schema_version": str(HASHLISTS.version)})
        write_parquet_atomic(self.store.root / entries_file(name, version), table)
        final = self.version_dir(name, version)
        tmp = final.with_name(final.name + ".tmp")
        for leftover in (tmp, final):  # from a crashed import that never became active
            shutil.rmtree(leftover, ignore_errors=True)
        for signal, index in indexes.items():
            folder = tmp / signal
            folder.mkdir(parents=True)
            for key, array in index.arrays().items():
                with open(folder / f"{key}.npy", "wb") as handle:
                    np.save(handle, np.asarray(array))
                    handle.flush()
            feather.write_feather(lookup[signal], folder / "entries.arrow", compression="uncompressed")
            write_bytes_atomic(folder / "index.json", orjson.dumps({"kind": index.kind, "size": index.size}))
            fsync_dir(folder)
        tmp.rename(final)
        fsync_dir(final.parent)

    def load(self, name: str, version: int) -> Bank:
        folder = self.version_dir(name, version)
        if not folder.is_dir():
            raise BadInputError(f"{name} v{version}: index directory {folder} is missing")
        indexes, entries = {}, {}
        for signal_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            meta = orjson.loads((signal_dir / "index.json").read_bytes())
            arrays = {p.stem: np.load(p, mmap_mode="r", allow_pickle=False) for p in signal_dir.glob("*.npy")}
            indexes[signal_dir.name] = _from_arrays(meta["kind"], arrays)
            entries[signal_dir.name] = feather.read_table(signal_dir / "entries.arrow", memory_map=True)
        return Bank(name, version, indexes, entries)

    def load_active(self) -> list[Bank]:
        return [self.load(name, version) for name, version in self.active_versions()]

    def entries(self, name: str, version: int, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.store.root / entries_file(name, version), columns=columns)


def _from_arrays(kind: str, arrays: dict[str, np.ndarray]) -> BinaryIndex | ExactIndex | VpdqIndex:
    if kind == "exact":
        return ExactIndex.from_arrays(arrays)
    if kind == "vpdq":
        return VpdqIndex.from_arrays(arrays)
    return load_index(kind, arrays)
