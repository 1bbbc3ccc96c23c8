"""Hash banks on the storage root: list versions, their entries, their indexes, and which one is active.

A version's files are written first (entries Parquet, then the index directory), and only then does
the registry (`hashlist_versions/versions.parquet`) name it active, by one atomic replace that is
also a compare-and-swap: the registry is written only if it is still the version that was read
(If-Match on object storage), so two imports racing on one root cannot lose each other's rows.
A reader therefore sees either the old active version or the new one, fully indexed; a crash
part-way leaves files that no registry row names, which the next import of that list overwrites.
Indexes are memory-mapped `.npy` arrays: loading a 10M-entry bank takes milliseconds, and nothing is
rebuilt at lookup time. On object storage a loaded version is first copied to a local cache (named
by the files' ETags, so a rewritten version number is never served stale), since mmap needs a file.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
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
from storage.files import PARQUET_OPTIONS, fsync_dir, write_bytes_atomic, write_parquet_atomic
from storage.objectstore import (
    PreconditionFailed,
    StoragePath,
    is_local,
    local_cache_dir,
    object_tag,
    put_object,
    read_parquet,
    remove_tree,
)
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
        self._registry_tag: str | None = None  # the registry version last read, for the compare-and-swap

    # -- registry --------------------------------------------------------------------------------
    def registry(self) -> pa.Table:
        path = self.store.root / REGISTRY_FILE
        self._registry_tag = object_tag(path)
        return read_parquet(path, schema=HASHLIST_VERSIONS.schema) if self._registry_tag is not None \
            else HASHLIST_VERSIONS.empty_table()

    def write_registry(self, rows: list[dict[str, Any]]) -> None:
        """Replace the registry atomically, only if nobody changed it since `registry()` read it: this
        is the moment a state change takes effect."""
        rows = sorted(rows, key=lambda r: (r["list_name"], r["list_version"]))
        table = pa.Table.from_pylist(rows, schema=HASHLIST_VERSIONS.schema).replace_schema_metadata(
            {"chanwatch.dataset": HASHLIST_VERSIONS.name, "chanwatch.schema_version": str(HASHLIST_VERSIONS.version)})
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, **PARQUET_OPTIONS)
        path = self.store.root / REGISTRY_FILE
        try:
            if self._registry_tag is None:
                self._registry_tag = put_object(path, buffer.getvalue().to_pybytes(), if_absent=True)
            else:
                self._registry_tag = put_object(path, buffer.getvalue().to_pybytes(), if_tag=self._registry_tag)
        except PreconditionFailed:
            raise BadInputError(f"{path}: the hash-list registry changed while this change was being made "
                                "(another import or activation); nothing was activated, run it again") from None

    def active_versions(self) -> list[tuple[str, int]]:
        return [(r["list_name"], r["list_version"]) for r in self.registry().to_pylist()
                if r["state"] == "active" and r["list_enabled"]]

    def next_version(self, name: str) -> int:
        versions = [r["list_version"] for r in self.registry().to_pylist() if r["list_name"] == name]
        return max(versions, default=0) + 1

    # -- version files ---------------------------------------------------------------------------
    def version_dir(self, name: str, version: int) -> StoragePath:
        return self.store.root / INDEX_DIR / name / f"v{version:05d}"

    def write_version(self, name: str, version: int, entries: pa.Table, indexes: dict[str, Any],
                      lookup: dict[str, pa.Table]) -> None:
        """Write a version's entries and indexes durably; it is not live until the registry names it."""
        table = entries.replace_schema_metadata({"chanwatch.dataset": HASHLISTS.name,
                                                 "chanwatch.schema_version": str(HASHLISTS.version)})
        write_parquet_atomic(self.store.root / entries_file(name, version), table)
        final = self.version_dir(name, version)
        if not is_local(final):
            remove_tree(final)  # from a crashed import that never became active
            with tempfile.TemporaryDirectory(prefix="chanwatch-index-") as staging:
                self._write_index_files(Path(staging), indexes, lookup)
                final.fs.put(f"{staging}/", final.path, recursive=True)
            return
        tmp = final.with_name(final.name + ".tmp")
        for leftover in (tmp, final):  # from a crashed import that never became active
            shutil.rmtree(leftover, ignore_errors=True)
        self._write_index_files(tmp, indexes, lookup)
        tmp.rename(final)
        fsync_dir(final.parent)

    @staticmethod
    def _write_index_files(tmp: Path, indexes: dict[str, Any], lookup: dict[str, pa.Table]) -> None:
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

    def _local_copy(self, folder: StoragePath, name: str, version: int) -> Path:
        """The version's index folder on local disk (itself, or a cached copy of an object-store one)."""
        if is_local(folder):
            return folder
        listing = folder.fs.find(folder.path, detail=True)
        if not listing:
            raise BadInputError(f"{name} v{version}: index directory {folder} is missing")
        tags = hashlib.sha256("".join(f"{k}={v.get('ETag')};" for k, v in sorted(listing.items())).encode())
        cached = local_cache_dir(self.store.root) / INDEX_DIR / name / f"v{version:05d}-{tags.hexdigest()[:16]}"
        if not cached.is_dir():
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=cached.name + ".tmp-", dir=cached.parent))
            folder.fs.get(f"{folder.path}/", f"{tmp}/", recursive=True)
            try:
                tmp.rename(cached)
            except OSError:  # another process filled the cache first
                shutil.rmtree(tmp, ignore_errors=True)
            for older in cached.parent.iterdir():  # one list, one live version: drop superseded copies
                if older != cached and ".tmp-" not in older.name:  # (a process still mapping one keeps its inodes)
                    shutil.rmtree(older, ignore_errors=True)
        return cached

    def load(self, name: str, version: int) -> Bank:
        remote = self.version_dir(name, version)
        if is_local(remote) and not remote.is_dir():
            raise BadInputError(f"{name} v{version}: index directory {remote} is missing")
        folder = self._local_copy(remote, name, version)
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
        return read_parquet(self.store.root / entries_file(name, version), columns=columns)


def _from_arrays(kind: str, arrays: dict[str, np.ndarray]) -> BinaryIndex | ExactIndex | VpdqIndex:
    if kind == "exact":
        return ExactIndex.from_arrays(arrays)
    if kind == "vpdq":
        return VpdqIndex.from_arrays(arrays)
    return load_index(kind, arrays)
