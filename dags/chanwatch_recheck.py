"""Re-check daily whether referred items are still online.

The step arrives with the review issue; until then the task logs that and succeeds.
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

    @task
    def recheck() -> dict:
        return orchestration.not_built_yet("recheck", "review")

    recheck()
