"""Build the research aggregates, daily.

Same step as `chanwatch aggregate`: `aggregates/channel_daily`, `aggregates/matches_daily` and
`aggregates/forward_edges` under the storage root. Only days whose inputs changed are recomputed, so a
daily run costs the new day; a run with nothing new rewrites no file.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from chanwatch import orchestration

with DAG(
    dag_id="chanwatch_aggregate",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["chanwatch"],
    doc_md=__doc__,
):

    @task(retries=2, retry_delay=dt.timedelta(minutes=5))
    def aggregate() -> dict:
        return orchestration.aggregate()

    aggregate()
