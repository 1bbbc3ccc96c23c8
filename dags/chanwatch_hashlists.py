"""Import hash lists dropped into the inbox folder (`[hashlists] inbox`), one folder per list.

A bad file fails the task with FILE:LINE and leaves that list's active version as it was.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from chanwatch import orchestration
from chanwatch.assets import HASHLISTS

with DAG(
    dag_id="chanwatch_hashlists",
    schedule=dt.timedelta(minutes=15),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["chanwatch"],
    doc_md=__doc__,
):

    @task(outlets=[HASHLISTS])
    def import_inbox() -> dict:
        return orchestration.import_hashlist_inbox()

    import_inbox()
