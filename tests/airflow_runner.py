"""Airflow helpers for the tests, run as a separate process so Airflow reads the test's own AIRFLOW_HOME.

    python -m tests.airflow_runner dagbag              -> JSON: DAGs, schedules, pools, parse times
    python -m tests.airflow_runner test DAG_ID [ISO]   -> JSON: dag.test() run state and task instances
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1] / "dags"


def dagbag() -> dict:
    from airflow.dag_processing.dagbag import DagBag

    parse_s = {}
    for path in sorted(DAGS.glob("*.py")):
        start = time.perf_counter()
        DagBag(dag_folder=str(path))
        parse_s[path.name] = round(time.perf_counter() - start, 3)
    bag = DagBag(dag_folder=str(DAGS))
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {"timetable": type(dag.timetable).__name__, "summary": repr(dag.timetable),
                        "max_active_runs": dag.max_active_runs, "catchup": dag.catchup,
                        "tasks": {t.task_id: {"pool": t.pool, "retries": t.retries} for t in dag.tasks}}
    return {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags, "parse_s": parse_s}


def run_test(dag_id: str, logical_date: str | None) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS)).get_dag(dag_id)
    kwargs = {"logical_date": dt.datetime.fromisoformat(logical_date)} if logical_date else {}
    run = dag.test(**kwargs)
    tis = [{"task_id": ti.task_id, "map_index": ti.map_index, "state": str(ti.state), "try_number": ti.try_number,
            "start": ti.start_date.isoformat() if ti.start_date else None,
            "end": ti.end_date.isoformat() if ti.end_date else None} for ti in run.get_task_instances()]
    return {"state": str(run.state), "run_id": run.run_id, "task_instances": tis}


if __name__ == "__main__":
    command = sys.argv[1]
    result = dagbag() if command == "dagbag" else run_test(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    print("RESULT " + json.dumps(result))
