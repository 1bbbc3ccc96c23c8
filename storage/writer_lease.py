"""One writer per object-store root: a lease object taken by a create-only PUT.

Local roots use flock (storage.store), which the kernel drops when a writer dies. S3 has no locks,
so the writer creates `_state/writer.lease` with If-None-Match: a second writer's PUT fails with
WriterBusy (the store waits and tries again, up to its wait limit). The lease carries an expiry
that a heartbeat thread pushes out every quarter of its life (each renewal is an If-Match PUT on
the ETag we hold), so a killed worker blocks the root for at most LEASE_SECONDS; the next writer
then replaces the expired lease with If-Match on the ETag it read, which only one of several
waiting writers can win. A writer whose lease was taken over (it stalled past the expiry) learns
so at its next commit and stops before writing more.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import orjson

from processing.errors import BadInputError
from storage.objectstore import PreconditionFailed, StoragePath, delete_object, object_tag, put_object

LEASE_SECONDS = float(os.environ.get("CHANWATCH_LEASE_SECONDS", 120))


class WriterBusy(BadInputError):
    """Another writer holds the storage root (a flock locally, a live lease on S3)."""


@dataclass
class WriterLease:
    path: StoragePath
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    tag: str | None = None
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return orjson.dumps({"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                             "expires": time.time() + LEASE_SECONDS})

    def acquire(self, root_name: str, *, heartbeat: bool = True) -> None:
        try:
            self.tag = put_object(self.path, self._body(), if_absent=True)
        except PreconditionFailed:
            held_tag = object_tag(self.path)
            try:
                held = orjson.loads(self.path.read_bytes())
            except (FileNotFoundError, orjson.JSONDecodeError):
                held = {"expires": 0}
            if held.get("expires", 0) > time.time():
                until = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(held["expires"]))
                raise WriterBusy(f"{root_name}: another chanwatch writer is running on this storage root "
                                    f"(lease held by {held.get('host')} pid {held.get('pid')} until {until}, "
                                    "renewed while it runs)") from None
            try:  # expired: take it over, unless someone else just did
                if held_tag:
                    self.tag = put_object(self.path, self._body(), if_tag=held_tag)
                else:
                    self.tag = put_object(self.path, self._body(), if_absent=True)
            except PreconditionFailed:
                raise WriterBusy(f"{root_name}: another chanwatch writer took over the expired lease "
                                 "a moment ago") from None
        if heartbeat:
            self._thread = threading.Thread(target=self._beat, name="chanwatch-lease", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(max(LEASE_SECONDS / 4, 0.05)):
            try:
                self.renew()
            except BadInputError:
                return  # `lost` is set; the writer stops at its next commit
            except OSError:
                continue  # a transient network error: try again at the next beat, well before expiry

    def renew(self) -> None:
        """Push the expiry out; fails loudly if the lease was taken over meanwhile (we were presumed dead)."""
        with self._lock:
            if self.lost:
                raise BadInputError(f"{self.path}: this writer's lease expired and another writer took the "
                                    "storage root; stopping before writing more")
            if self.tag is None:
                return
            try:
                self.tag = put_object(self.path, self._body(), if_tag=self.tag)
            except PreconditionFailed:
                self.lost = True
                raise BadInputError(f"{self.path}: this writer's lease expired and another writer took the "
                                    "storage root; stopping before writing more") from None

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            if self.tag is not None and not self.lost:
                with contextlib.suppress(PreconditionFailed):  # taken over after expiry: no longer ours
                    delete_object(self.path, if_tag=self.tag)
            self.tag = None
