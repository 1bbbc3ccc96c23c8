"""Read one channel through a Telethon client: resolve, snapshot, history pages, media into memory.

Every request first takes a token from the account's budget. History is read in pages of
`page_size` (one GetHistory request each), oldest first, so progress can be committed as it goes
and a run stopped anywhere resumes from the highest stored id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from collectors.telegram.pacing import RateBudget
from processing.telegram_records import MediaRef

# Telegram answers at most 100 ids per channels.getMessages (Telethon splits larger lists the same way).
BY_IDS_BATCH = 100


class ChannelReader:
    def __init__(self, client: TelegramClient, requests: RateBudget, downloads: RateBudget, page_size: int) -> None:
        self.client = client
        self.requests = requests
        self.downloads = downloads
        self.page_size = page_size

    async def resolve(self, username: str, known: tuple[int, int] | None = None) -> Any:
        """The channel: by its stored id and access hash once a checkpoint has them, else by username.

        By id is one GetChannels call, and it follows a channel that changed its username; by name is
        ResolveUsername, the call Telegram rate-limits hardest, so a steady-state run makes none. The
        access hash is per account: another account's hash (a channel that moved accounts) is refused
        as invalid, and then the name is resolved. ChannelPrivate is an answer, not a bad hash: it stands.
        """
        if known is not None:
            await self.requests.acquire()
            try:
                return await self.client.get_entity(types.InputPeerChannel(known[0], known[1]))
            except (errors.ChannelInvalidError, errors.PeerIdInvalidError, ValueError):
                pass  # not readable by id with this account's session: ask by name
        await self.requests.acquire()
        return await self.client.get_entity(username)

    async def full_channel(self, channel: Any) -> Any:
        await self.requests.acquire()
        return await self.client(functions.channels.GetFullChannelRequest(channel))

    async def history(self, channel: Any, *, min_id: int = 0, max_id: int = 0,
                      since: dt.datetime | None = None) -> AsyncIterator[Any]:
        """Messages oldest first, one request per page: ids in (min_id, max_id), dates from `since`.

        Messages are yielded one by one, so whatever was read before an error (a FloodWait on the
        next page) can still be committed.
        """
        while True:
            await self.requests.acquire()
            kwargs: dict[str, Any] = {"limit": self.page_size, "reverse": True, "min_id": min_id}
            if max_id:
                kwargs["max_id"] = max_id
            if since is not None and min_id == 0:
                kwargs["offset_date"] = since
            received = 0
            async for message in self.client.iter_messages(channel, **kwargs):
                received += 1
                min_id = max(min_id, message.id)
                if isinstance(message, types.Message | types.MessageService):
                    yield message
            if received < self.page_size:
                return

    async def by_ids(self, channel: Any, ids: Sequence[int]) -> AsyncIterator[tuple[list[int], dict[int, Any]]]:
        """(asked ids, {id: message found}) per batch of at most BY_IDS_BATCH ids, one request each.

        An id missing from the dict is gone: Telegram answers `MessageEmpty` for it (Telethon turns that into
        None) or leaves it out. Batches are yielded one by one, so what was read before an error is kept.
        """
        for start in range(0, len(ids), BY_IDS_BATCH):
            chunk = list(ids[start:start + BY_IDS_BATCH])
            await self.requests.acquire()
            received = await self.client.get_messages(channel, ids=chunk)
            wanted = set(chunk)
            found = {m.id: m for m in received
                     if m is not None and not isinstance(m, types.MessageEmpty) and m.id in wanted}
            yield chunk, found

    async def download(self, message: Any, ref: MediaRef, max_bytes: int) -> tuple[bytes | None, str, str | None]:
        """(bytes, variant, reason): the best variant under the cap, into memory only."""
        for variant, size, thumb in ref.variants:
            if size and size > max_bytes:
                continue
            await self.downloads.acquire()
            if thumb is None:
                data = await self.client.download_media(message, file=bytes)
            else:
                data = await self.client.download_media(message, file=bytes, thumb=thumb)
            if data is None:
                return None, variant, "download returned nothing"
            if len(data) > max_bytes:
                return None, variant, f"downloaded {len(data)} bytes, over the {max_bytes}-byte cap"
            return data, variant, None
        sizes = ", ".join(f"{v} {s}" for v, s, _ in ref.variants) or "none"
        return None, "none", f"every variant is over the {max_bytes}-byte cap ({sizes})"
