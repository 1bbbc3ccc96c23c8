"""Which Telegram account reads which channel: rendezvous (highest-random-weight) hashing.

Every (account, channel) pair gets a pseudo-random weight from a stable hash; a channel's accounts, best
first, are the accounts by falling weight. The channel goes to the first of them that is available. So the
assignment is the same on every machine and every run; adding an account moves only the channels it now
wins (about 1/N of them), removing one moves only its own channels, and when an account is out (banned,
flood-waited) each of its channels goes to that channel's next account, spreading them over the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence


def _weight(account: str, channel: str) -> int:
    digest = hashlib.blake2b(f"{account}\0{channel}".encode(), digest_size=8, person=b"chanwatch").digest()
    return int.from_bytes(digest, "big")


def account_order(channel: str, accounts: Sequence[str]) -> list[str]:
    """The accounts for a channel (username, case-insensitive), best first."""
    key = channel.lstrip("@").lower()
    return sorted(accounts, key=lambda account: (-_weight(account, key), account))


def choose_account(channel: str, accounts: Sequence[str], available: Collection[str] | None = None,
                   prefer: str | None = None) -> str:
    """The account that reads `channel`: `prefer` if it is available, else the first available account in the
    channel's order. When none is available the channel stays with its first account (nothing is dropped:
    the run then reports that account's trouble for it), with `prefer` if given."""
    if not accounts:
        raise ValueError("no accounts to assign channels to")
    usable = set(accounts) if available is None else set(available) & set(accounts)
    if prefer is not None and prefer in usable:
        return prefer
    order = account_order(channel, accounts)
    fallback = prefer if prefer in accounts else order[0]
    return next((account for account in order if account in usable), fallback)


def assign(channels: Iterable[str], accounts: Sequence[str],
           available: Collection[str] | None = None) -> dict[str, list[str]]:
    """{account: its channels, in the given order} for every account (possibly with no channels)."""
    plan: dict[str, list[str]] = {account: [] for account in accounts}
    for channel in channels:
        plan[choose_account(channel, accounts, available)].append(channel)
    return plan
