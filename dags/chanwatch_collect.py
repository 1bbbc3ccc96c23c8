"""Collect the allowlisted public channels from Telegram: one mapped task per channel, every interval.

Thin on purpose: the work is `chanwatch.orchestration.collect_channel`, the same step as
`chanwatch collect`. A long FloodWait is retried after exactly the wait Telegram asked for.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, DeltaDataIntervalTimetable, task

from chanwatch import orchestration
from chanwatch.assets import COLLECTED
from chanwatch.settings import load_settings

with DAG(
    dag_id="chanwatch_collect",
    schedule=DeltaDataIntervalTimetable(dt.timedelta(minutes=load_settings().airflow.collect_every_minutes)),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["chanwatch"],
    doc_md=__doc__,
):

    @task
    def channels() -> list[str]:
        return orchestration.allowlisted_channels()

    @task(pool="telegram_api", retries=8, retry_delay=dt.timedelta(minutes=2),
          retry_policy=orchestration.FloodWaitRetryPolicy(), map_index_template="{{ task.op_kwargs['username'] }}")
    def collect_channel(username: str) -> dict:
        return orchestration.collect_channel(username)

    @task(outlets=[COLLECTED], trigger_rule="all_done")
    def collected(results: list[dict | None]) -> dict:
        """Emit the Asset that schedules matching, once every channel has had its turn."""
        return {"channels": len(results)}

    collected(collect_channel.expand(username=channels()))
