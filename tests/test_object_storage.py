"""The storage root on S3: the whole pipeline against an S3-compatible server on 127.0.0.1 (moto's), through
the same code as local disk, with the same results; conditional writes keep the writer and the hash-list
registry safe; a writer killed mid-commit is rolled forward on S3 as on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from processing.errors import BadInputError
from storage.hashbanks import HashBanks
from storage.objectstore import PreconditionFailed, connect_duckdb, open_root, put_object
from storage.store import Store
from tests.conftest import CLI, REPO
from tests.exports import export_doc, message, write_config, write_export
from tests.s3_server import S3Server
from tests.test_demo_pipeline import MAGIC

# Columns that legitimately differ between two runs (when and by which run a row was written).
RUN_COLUMNS = {"ingested_at", "run_id", "computed_at", "first_seen_at", "matched_at", "collected_at",
               "updated_at", "hashed_at"}
COMPARED = ("messages", "media", "channels", "matches", "aggregates/channel_daily", "aggregates/matches_daily",
            "aggregates/forward_edges")


def run_demo(cwd: Path, storage: str, env: dict[str, str]) -> str:
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([*CLI, "--storage", storage, "demo"], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **env})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done.stdout


def dataset(root: str, name: str) -> list[dict]:
    """A dataset's rows as a researcher reads them (DuckDB on the root's URI), without per-run columns."""
    con = connect_duckdb(open_root(root))
    table = con.sql(f"SELECT * FROM read_parquet('{root}/{name}/**/*.parquet', hive_partitioning = false, "
                    "union_by_name = true)").to_arrow_table()
    table = table.drop_columns([c for c in table.column_names if c in RUN_COLUMNS])
    return sorted(table.to_pylist(), key=repr)


@pytest.fixture(scope="module")
def demo_on_s3_and_disk(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server,
                        pg_server) -> dict:
    """`chanwatch demo` twice on an s3:// root (review database on PostgreSQL), once on local disk."""
    base = tmp_path_factory.mktemp("s3demo")
    bucket = s3_server.create_bucket()
    s3_root = f"s3://{bucket}/chanwatch"
    env = {"CHANWATCH_CACHE_DIR": str(base / "cache"), "CHANWATCH_REVIEW_DATABASE_URL": pg_server.create_database()}
    first = run_demo(base / "s3", s3_root, env)
    second = run_demo(base / "s3", s3_root, env)
    local = run_demo(base / "local", str(base / "local" / "data"), {"CHANWATCH_CACHE_DIR": str(base / "cache")})
    return {"base": base, "bucket": bucket, "s3_root": s3_root, "local_root": str(base / "local" / "data"),
            "first": first, "second": second, "local": local}


def test_the_whole_pipeline_on_s3_gives_the_same_datasets_as_on_disk(demo_on_s3_and_disk: dict) -> None:
    run = demo_on_s3_and_disk
    assert "imported 300 messages" in run["first"] and "hash list demo-known: imported v1" in run["first"]
    assert "11 matches found (11 new)" in run["first"]
    for name in COMPARED:
        on_s3, on_disk = dataset(run["s3_root"], name), dataset(run["local_root"], name)
        assert on_s3 and on_s3 == on_disk, name
    report = (run["base"] / "s3" / "var" / "report" / "report.html").read_text()
    assert report.count("<svg") == 6 and "https://t.me/chanwatch_demo/" in report


def test_a_second_run_on_s3_changes_nothing(demo_on_s3_and_disk: dict) -> None:
    second = demo_on_s3_and_disk["second"]
    assert "(0 rows new or changed)" in second and "hash list demo-known: unchanged" in second
    assert "0 matches found (0 new)" in second


def test_the_bucket_holds_no_media_no_staging_and_no_lease_after_the_runs(demo_on_s3_and_disk: dict,
                                                                          s3_server: S3Server) -> None:
    objects = s3_server.objects(demo_on_s3_and_disk["bucket"])
    keys = sorted(objects)
    assert any(k.startswith("chanwatch/_index/hashlists/demo-known/v00001/pdq/") for k in keys)
    assert any(k.startswith("chanwatch/aggregates/channel_daily/month=") for k in keys)
    assert not [k for k in keys if "/_staging/" in k or k.endswith("writer.lease")]
    hits = [(key, kind) for key, data in objects.items() for kind, signatures in MAGIC.items()
            if any(sig in data for sig in signatures)]
    assert not hits


def test_researchers_read_the_s3_root_with_duckdb(demo_on_s3_and_disk: dict) -> None:
    """What docs/research.md shows: register the fsspec filesystem, then query s3:// paths."""
    import s3fs

    con = duckdb.connect()
    con.register_filesystem(s3fs.S3FileSystem())  # endpoint and keys from the AWS environment
    root = demo_on_s3_and_disk["s3_root"]
    [(messages,)] = con.sql(f"SELECT count(*) FROM read_parquet('{root}/messages/**/*.parquet')").fetchall()
    assert messages == 300


# --- conditional writes ------------------------------------------------------------------------------

def test_a_second_writer_is_refused_and_an_expired_lease_is_taken_over(s3_bucket: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store, other = Store(f"s3://{s3_bucket}/root"), Store(f"s3://{s3_bucket}/root")
    with store.writer_lock(), pytest.raises(BadInputError, match="another chanwatch writer is running"), \
            other.writer_lock(wait=0):
        pass
    with other.writer_lock():  # released on exit: the next writer gets it
        pass
    import storage.writer_lease as lease

    monkeypatch.setattr(lease, "LEASE_SECONDS", -1.0)  # a writer that died: its lease has expired
    dead = lease.WriterLease(store.state_path("writer.lease"))
    dead.acquire(store.uri, heartbeat=False)
    with other.writer_lock():
        pass
    with pytest.raises(BadInputError, match="another writer took the storage root"):
        dead.renew()  # the presumed-dead writer notices before it writes more


def test_hash_list_activation_is_a_compare_and_swap(s3_bucket: str) -> None:
    store = Store(f"s3://{s3_bucket}/root")
    row = {"list_name": "a", "list_version": 1, "state": "active", "list_enabled": True}
    first, second = HashBanks(store), HashBanks(store)
    assert first.registry().num_rows == 0 and second.registry().num_rows == 0
    first.write_registry([row])
    with pytest.raises(BadInputError, match="registry changed while this change was being made"):
        second.write_registry([{**row, "list_name": "b"}])  # read before `first` wrote: refused, not lost
    assert [r["list_name"] for r in HashBanks(store).registry().to_pylist()] == ["a"]
    second.registry()
    second.write_registry([row, {**row, "list_name": "b"}])  # after a fresh read it goes through
    assert [r["list_name"] for r in HashBanks(store).registry().to_pylist()] == ["a", "b"]


def test_create_only_puts_do_not_clobber(s3_bucket: str, tmp_path: Path) -> None:
    for root in (open_root(f"s3://{s3_bucket}/root"), open_root(str(tmp_path))):
        path = root / "_state" / "privacy" / "key"
        put_object(path, b"first", if_absent=True)
        with pytest.raises(PreconditionFailed):
            put_object(path, b"second", if_absent=True)
        assert path.read_bytes() == b"first"


# --- crash recovery --------------------------------------------------------------------------------

def test_a_writer_killed_mid_commit_on_s3_is_rolled_forward(tmp_path: Path, s3_bucket: str) -> None:
    root = f"s3://{s3_bucket}/root"
    docs = [message(i, text=f"message {i}", seconds=i * 86_400 * 7) for i in range(1, 401)]  # ~8 month files
    export = write_export(tmp_path / "export", export_doc(docs))
    config = write_config(tmp_path / "chanwatch.toml", root)  # type: ignore[arg-type]
    # A killed writer cannot release its lease: keep it short here, so the re-run may take it over.
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHANWATCH_FAULT_INJECT": "commit:2", "CHANWATCH_LEASE_SECONDS": "2"}
    killed = subprocess.run([*CLI, "--config", str(config), "import-export", str(export)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    store = Store(root)
    assert (store.root / "_staging").exists()  # the journaled commit was cut off half way
    env.pop("CHANWATCH_FAULT_INJECT")
    refused = subprocess.run([*CLI, "--config", str(config), "import-export", str(export)], cwd=tmp_path,
                             env={**env, "CHANWATCH_WRITER_WAIT_SECONDS": "0"}, capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode != 0 and "another chanwatch writer is running" in refused.stderr
    # By default a writer waits: this one takes over once the dead writer's lease has expired.
    done = subprocess.run([*CLI, "--config", str(config), "import-export", str(export)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = dataset(root, "messages")
    assert sorted(r["message_id"] for r in rows) == list(range(1, 401))
    assert not (store.root / "_staging").exists()


# --- configuration errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("uri", "words"), [("gs://bucket/x", "scheme 'gs' is not supported"),
                                             ("s3:///x", "name a bucket")])
def test_unsupported_roots_are_refused_clearly(uri: str, words: str) -> None:
    with pytest.raises(BadInputError, match=words):
        Store(uri)


def test_an_s3_root_needs_a_review_database_server(s3_bucket: str) -> None:
    from chanwatch.settings import load_settings
    from chanwatch.steps.review_db import review_url

    settings = load_settings(None, storage=f"s3://{s3_bucket}/root", environ={})
    with pytest.raises(BadInputError, match="CHANWATCH_REVIEW_DATABASE_URL"):
        review_url(settings)


def test_parquet_written_to_s3_is_whole(s3_bucket: str) -> None:
    from storage.files import write_parquet_atomic

    path = open_root(f"s3://{s3_bucket}/root") / "x" / "part.parquet"
    write_parquet_atomic(path, pa.table({"a": list(range(1000))}))
    with path.open("rb") as handle:
        assert pq.read_table(handle)["a"].to_pylist() == list(range(1000))


# --- live collection ---------------------------------------------------------------------------------

def test_live_collection_on_s3_resumes_from_its_checkpoints_like_on_disk(tmp_path: Path, s3_bucket: str) -> None:
    """The collector with the fake Telegram: a FloodWait cuts the first run; the next resumes from the
    checkpoint on S3 and the result equals the same two runs on disk."""
    from tests.telegram_fake import demo_world
    from tests.test_collect import run

    results = {}
    for label, root in (("s3", f"s3://{s3_bucket}/root"), ("disk", str(tmp_path / "data"))):
        world = demo_world()
        world.flood_on("iter_messages", after_calls=15, seconds=900)
        first, _ = run(root, world, commit_every=5)  # type: ignore[arg-type]
        assert first.channels[0].status == "flood_wait", label
        second, _ = run(root, world)  # type: ignore[arg-type]
        assert second.channels[0].status == "ok", label
        results[label] = (dataset(root, "messages"), dataset(root, "media"))
    assert results["s3"][0] and results["s3"] == results["disk"]


def test_a_new_list_version_on_s3_is_served_and_replaces_the_cached_index(tmp_path: Path, s3_bucket: str) -> None:
    """Lookups load the index from the local cache; a new version gets a fresh copy and the old one goes."""
    root = f"s3://{s3_bucket}/root"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHANWATCH_CACHE_DIR": str(tmp_path / "cache")}
    first, second = "a" * 64, "f" * 64

    def cli(*args: str) -> str:
        done = subprocess.run([*CLI, "--storage", root, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    for version, digest in ((1, first), (2, second)):
        (tmp_path / "list.txt").write_text(f"{digest}\n")
        cli("hashlist", "import", str(tmp_path / "list.txt"), "--name", "known", "--category", "test",
            "--signal", "pdq")
        found = json.loads(cli("lookup", f"pdq:{digest}").splitlines()[0])
        assert (found["list_version"], found["distance"]) == (version, 0), found
        cached = sorted(p.name for p in (tmp_path / "cache").rglob("v0000*") if p.is_dir())
        assert len(cached) == 1 and cached[0].startswith(f"v{version:05d}-"), cached


# --- Airflow -----------------------------------------------------------------------------------------

def test_the_airflow_dags_run_on_an_s3_root(tmp_path: Path, s3_server: S3Server, pg_server) -> None:
    """Scaling out is configuration: the same DAGs (collect, hash lists, match with the review sync,
    aggregate), run by dag.test(), with `[storage] root = "s3://..."` and the review database on PostgreSQL."""
    from tests.test_airflow import BIN, CONFIG, LOGICAL_DATE, airflow_env, runner

    bucket = s3_server.create_bucket()
    (tmp_path / "airflow").mkdir()
    config = CONFIG.format(root=tmp_path).replace(f'root = "{tmp_path}/data"', f'root = "s3://{bucket}/data"')
    (tmp_path / "chanwatch.toml").write_text(config)
    review_db = pg_server.create_database()
    env = {**airflow_env(tmp_path), **s3_server.env(), "CHANWATCH_CACHE_DIR": str(tmp_path / "cache"),
           "CHANWATCH_REVIEW_DATABASE_URL": review_db}
    for command in (["db", "migrate"], ["pools", "import", str(REPO / "ops/pools.json")]):
        done = subprocess.run([str(BIN / "airflow"), *command], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    assert runner(env, "test", "chanwatch_collect", LOGICAL_DATE)["state"] == "success"
    root = f"s3://{bucket}/data"
    photo = next(r for r in dataset(root, "media") if r["message_id"] == 6 and r["channel_id"] == 1888000001)
    inbox = tmp_path / "inbox" / "demo-known"
    inbox.mkdir(parents=True)
    (inbox / "list.txt").write_text(f"md5 {photo['md5']}\n")
    for dag_id in ("chanwatch_hashlists", "chanwatch_match", "chanwatch_aggregate"):
        assert runner(env, "test", dag_id, LOGICAL_DATE)["state"] == "success", dag_id
    assert [(m["message_id"], m["list_name"]) for m in dataset(root, "matches")] == [(6, "demo-known")]
    assert len(dataset(root, "messages")) == 41 and dataset(root, "aggregates/channel_daily")
    assert not (tmp_path / "data").exists()  # nothing fell back to a local root
    import sqlalchemy

    engine = sqlalchemy.create_engine(review_db)
    with engine.connect() as con:  # the match DAG's sync_review task filled the queue on PostgreSQL
        assert con.execute(sqlalchemy.text("SELECT count(*) FROM items")).scalar_one() == 1
    engine.dispose()
