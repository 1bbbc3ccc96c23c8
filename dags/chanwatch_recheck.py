"""Re-check daily whether referred items are still online (same step as `chanwatch recheck`).

Removals get `removed_at`; items still online past the re-notification interval get a recorded
re-notice. The task shares the `telegram_api` pool with collection.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from chanwatch import orchestration

with DAG(
    dag_id="chanwatch_recheck",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["chanwatch"],
    doc_md=__doc__,
):

    @task(pool="telegram_api", retries=3, retry_delay=dt.timedelta(minutes=10))
    def recheck() -> dict:
        return orchestration.recheck_referred()

    recheck()
