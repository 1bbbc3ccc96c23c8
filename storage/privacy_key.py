"""The key that pseudonymises author names, kept under `<root>/_state/privacy/key` (mode 0600).

Generated once, on first use, when `CHANWATCH_PRIVACY_KEY` is not set. Creation is atomic and never
overwrites: two writers racing both end up with the first key written. The key is never logged.
"""

from __future__ import annotations

import contextlib
import os
import secrets

from processing.errors import BadInputError
from storage.files import fsync_dir
from storage.objectstore import PreconditionFailed, is_local, put_object
from storage.store import Store

KEY_BYTES = 32


def key_path(store: Store):
    return store.state_path("privacy", "key")


def _read(path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise BadInputError(f"{path}: not a chanwatch privacy key (expected {KEY_BYTES * 2} hex digits)")
    return key


def load_or_create_key(store: Store) -> bytes:
    """The storage root's pseudonymisation key, created (0600) if there is none yet."""
    path = key_path(store)
    if path.exists():
        return _read(path)
    if not is_local(path):  # object storage: a create-only PUT, so concurrent first writers agree on one key
        with contextlib.suppress(PreconditionFailed):
            put_object(path, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"), if_absent=True)
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".key.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # no-clobber: a key created meanwhile by another writer wins
            os.link(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)
