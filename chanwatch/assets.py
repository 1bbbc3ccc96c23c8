"""Airflow Assets that link the DAGs: collection emits COLLECTED, which schedules matching."""

from __future__ import annotations

from airflow.sdk import Asset

COLLECTED = Asset(name="chanwatch_collected", uri="chanwatch://datasets/messages")
HASHLISTS = Asset(name="chanwatch_hashlists", uri="chanwatch://datasets/hashlists")
