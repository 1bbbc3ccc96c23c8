"""Storage roots on local disk or on object storage (S3 and S3-compatible servers), behind one path API.

A local root is a `pathlib.Path`; an `s3://bucket/prefix` root is a universal_pathlib `UPath` over
s3fs. Both have the pathlib API, so code that joins, globs, reads and writes paths runs unchanged on
either. The few operations whose meaning differs go through this module:

- Replace: local files are written to a temporary name, fsynced and renamed; an S3 PUT is already
  atomic (a reader sees the old object or the new one, never a part), so it is written in place.
- Rename: S3 has none. Moves are copy + delete, used only where a journal makes them safe to redo.
- Create-only and compare-and-swap writes (`put_object` with If-None-Match / If-Match): the writer
  lease, the privacy key and the hash-list registry use them, so two writers cannot both win.
- File identity for the aggregates' change detection: size/mtime/inode locally, size/ETag remotely.
- DuckDB reads object-store files through the same fsspec filesystem (`connect_duckdb`).

Credentials and the endpoint come from the standard AWS environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL) or the instance role; never from chanwatch.toml.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from processing.errors import BadInputError

SCHEMES = ("s3",)
StoragePath: TypeAlias = Path | UPath


class PreconditionFailed(Exception):
    """A conditional write lost: the object exists (create-only) or changed since it was read."""


def open_root(uri: str) -> StoragePath:
    """The storage root for a URI: a local directory, `file://...`, or `s3://bucket/prefix`."""
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if "://" not in uri:
        return Path(uri)
    scheme, rest = uri.split("://", 1)
    if scheme not in SCHEMES:
        raise BadInputError(f"storage root {uri!r}: scheme {scheme!r} is not supported; use a local "
                            f"directory or one of {', '.join(s + '://' for s in SCHEMES)}")
    if not rest.split("/", 1)[0]:
        raise BadInputError(f"storage root {uri!r}: name a bucket, as in s3://bucket/prefix")
    # No listing cache: other processes (Airflow tasks, the review app) write to the same prefix.
    return UPath(uri.rstrip("/"), use_listings_cache=False)


def is_local(path: StoragePath) -> bool:
    return isinstance(path, Path)


def _bucket_key(path: UPath) -> tuple[str, str]:
    bucket, key, _ = path.fs.split_path(path.path)
    return bucket, key


def _s3_call(path: UPath, method: str, **kwargs: Any) -> dict[str, Any]:
    from fsspec.asyn import sync

    fs = path.fs
    bucket, key = _bucket_key(path)
    try:
        return sync(fs.loop, fs._call_s3, method, Bucket=bucket, Key=key, **kwargs)
    except FileExistsError:  # s3fs's translation of 412 PreconditionFailed
        raise PreconditionFailed(str(path)) from None
    except FileNotFoundError:  # If-Match on an object that is gone: the version we hold no longer exists
        if "IfMatch" in kwargs and method == "put_object":
            raise PreconditionFailed(str(path)) from None
        raise
    except OSError as exc:  # 409 ConditionalRequestConflict: a concurrent conditional write won
        if "ConditionalRequestConflict" in repr(exc.__cause__) or "ConditionalRequestConflict" in str(exc):
            raise PreconditionFailed(str(path)) from None
        raise
    finally:
        fs.invalidate_cache(path.path)


# --- reading ---------------------------------------------------------------------------------------

def read_parquet(path: StoragePath, **kwargs: Any) -> pa.Table:
    if is_local(path):
        return pq.read_table(path, **kwargs)
    return pq.read_table(path.path, filesystem=path.fs, **kwargs)


def read_parquet_schema(path: StoragePath) -> pa.Schema:
    if is_local(path):
        return pq.read_schema(path)
    with path.open("rb") as handle:
        return pq.read_schema(handle)


def parquet_metadata(path: StoragePath) -> pq.FileMetaData:
    """The footer only (row groups, statistics): one ranged read on object storage."""
    if is_local(path):
        return pq.ParquetFile(path).metadata
    with path.open("rb") as handle:
        return pq.ParquetFile(handle).metadata


def parquet_rows(path: StoragePath) -> int:
    return parquet_metadata(path).num_rows


def relative_key(path: StoragePath, root: StoragePath) -> str:
    """`path` relative to `root`, as a posix string (the staging and journal key)."""
    return str(path)[len(str(root)) + 1:] if not is_local(path) else path.relative_to(root).as_posix()


def object_tag(path: StoragePath) -> str | None:
    """A token that changes whenever the file's content is replaced (None when it is missing)."""
    if is_local(path):
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"
    try:
        return str(path.fs.info(path.path)["ETag"])
    except FileNotFoundError:
        return None


def list_with_identity(base: StoragePath, suffix: str) -> list[tuple[str, int, int, int]]:
    """(path as `str()` spells it, size, mtime_ns, identity) of every file ending in `suffix` under
    `base`, from one listing: no file is opened. Locally the identity is the inode; on
    object storage it is derived from the ETag, which changes with every PUT."""
    found: list[tuple[str, int, int, int]] = []
    if is_local(base):
        stack = [str(base)] if base.is_dir() else []
        while stack:  # os.scandir: the stat comes with the listing, unlike Path.rglob + Path.stat
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.name.endswith(suffix) and not entry.name.startswith("."):
                        stat = entry.stat(follow_symlinks=False)
                        found.append((entry.path, stat.st_size, stat.st_mtime_ns, stat.st_ino))
        return found
    for name, info in base.fs.find(base.path, detail=True).items():
        leaf = name.rsplit("/", 1)[-1]
        if leaf.endswith(suffix) and not leaf.startswith("."):
            etag = str(info.get("ETag", "")).encode()
            identity = int.from_bytes(hashlib.blake2b(etag, digest_size=7).digest(), "big")
            modified = info.get("LastModified")
            mtime_ns = int(modified.timestamp() * 1e9) if modified is not None else 0
            found.append((f"{base.protocol}://{name}", int(info["size"]), mtime_ns, identity))
    return found


# --- writing ---------------------------------------------------------------------------------------

def put_object(path: StoragePath, data: bytes, *, if_absent: bool = False, if_tag: str | None = None) -> str:
    """Write a whole object, optionally only if it does not exist yet or still has tag `if_tag`;
    returns the new object's tag (as `object_tag` gives it).

    Remote: one conditional PUT. Local: the caller holds the writer lock (or, for create-only, a
    hard link refuses to clobber), so checks here are for the same contract, not for races.
    """
    if is_local(path):
        from storage.files import fsync_dir, write_bytes_atomic

        if if_tag is not None and object_tag(path) != if_tag:
            raise PreconditionFailed(str(path))
        if not if_absent:
            write_bytes_atomic(path, data)
            return str(object_tag(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise PreconditionFailed(str(path)) from None
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        return str(object_tag(path))
    kwargs: dict[str, Any] = {}
    if if_absent:
        kwargs["IfNoneMatch"] = "*"
    if if_tag is not None:
        kwargs["IfMatch"] = if_tag
    return str(_s3_call(path, "put_object", Body=data, **kwargs)["ETag"])


def delete_object(path: StoragePath, *, if_tag: str | None = None) -> None:
    if is_local(path):
        path.unlink(missing_ok=True)
        return
    with contextlib.suppress(FileNotFoundError):
        _s3_call(path, "delete_object", **({"IfMatch": if_tag} if if_tag else {}))


def move(src: StoragePath, dst: StoragePath) -> None:
    """Put `src` at `dst`: a durable rename locally; a server-side copy then a delete on object storage
    (not atomic across the two, so callers keep a journal that makes a repeat safe)."""
    if is_local(src):
        from storage.files import move_durably

        move_durably(src, dst)
        return
    src.fs.copy(src.path, dst.path)
    src.fs.rm(src.path)


def remove_tree(path: StoragePath) -> None:
    if is_local(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError):
        path.fs.rm(path.path, recursive=True)


# --- DuckDB ----------------------------------------------------------------------------------------

def connect_duckdb(root: StoragePath | None = None, config: dict[str, Any] | None = None
                   ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read the root's files by the strings `str(path)` gives."""
    con = duckdb.connect(config=config or {})
    if root is not None and not is_local(root):
        con.register_filesystem(root.fs)
    return con


def local_cache_dir(root: StoragePath) -> Path:
    """Where immutable files from an object-store root are kept on this machine (hash-list indexes,
    which are memory-mapped): $CHANWATCH_CACHE_DIR or ~/.cache/chanwatch, one folder per root."""
    base = Path(os.environ.get("CHANWATCH_CACHE_DIR") or Path.home() / ".cache" / "chanwatch")
    return base / hashlib.sha256(str(root).encode()).hexdigest()[:16]
