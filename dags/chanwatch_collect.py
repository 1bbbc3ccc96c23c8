"""Collect the allowlisted public channels from Telegram: one mapped task per channel, every interval.

Thin on purpose: the work is `chanwatch.orchestration.collect_channel`, the same step as
`chanwatch collect`. A long FloodWait is retried after exactly the wait Telegram asked for.
With several Telegram accounts (`[telegram] accounts`), each account has its own mapped task
(`collect_channel_<account>`) in its own pool (`telegram_api_<account>`), over the channels
assigned to it when the run starts (chanwatch.accounts).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, DeltaDataIntervalTimetable, task

from chanwatch import accounts, orchestration
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
    per_account = []
    for account in orchestration.configured_accounts():

        @task(task_id=accounts.channels_task_id(account))
        def channels(account: str = account) -> list[str]:
            return orchestration.assigned_channels(account)

        @task(task_id=accounts.collect_task_id(account), pool=accounts.pool_name(account), retries=8,
              retry_delay=dt.timedelta(minutes=2), retry_policy=orchestration.FloodWaitRetryPolicy(),
              map_index_template="{{ task.op_kwargs['username'] }}")
        def collect_channel(username: str, account: str = account) -> dict:
            return orchestration.collect_channel(username, account)

        per_account.append(collect_channel.partial(account=account).expand(username=channels(account)))

    @task(outlets=[COLLECTED], trigger_rule="all_done")
    def collected(*results: list[dict | None]) -> dict:
        """Emit the Asset that schedules matching, once every channel has had its turn."""
        return {"channels": sum(len(r or []) for r in results)}

    collected(*per_account)
