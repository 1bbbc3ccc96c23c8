"""Match new media against the active hash lists, whenever collection or a list import lands.

Same step as `chanwatch match`: unmatched media is searched, and a new list version retro-hunts
everything collected so far. New matches then go into the analysts' review queue.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from chanwatch import orchestration
from chanwatch.assets import COLLECTED, HASHLISTS

with DAG(
    dag_id="chanwatch_match",
    schedule=(COLLECTED | HASHLISTS),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["chanwatch"],
    doc_md=__doc__,
):

    @task(retries=2, retry_delay=dt.timedelta(minutes=1))
    def match() -> dict:
        return orchestration.match_new()

    @task(retries=2, retry_delay=dt.timedelta(minutes=1))
    def sync_review() -> dict:
        return orchestration.sync_review_queue()

    match() >> sync_review()
