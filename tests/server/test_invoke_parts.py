"""The invocation front's parts on their own: token buckets and the cache on a ManualClock, the
answer mapping, and one contract every job store keeps (memory, a SQLite file of its own, the
runtime's SQLite state file)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus.bus.clock import ManualClock, Stopwatch
from eventbus.config.invoke import CacheSettings, RateLimit
from eventbus.server.invoke import (
    Job,
    JobStore,
    JobStoreError,
    MemoryJobStore,
    Refusal,
    SqliteJobStore,
    StateFileJobStore,
)
from eventbus.server.invoke.answers import response_of
from eventbus.server.invoke.cache import AnswerCache, cache_key
from eventbus.server.invoke.jobs.hub import JobEvents, Lagged
from eventbus.server.invoke.limits import KeyedBuckets, TokenBucket, bucket_key


def test_a_bucket_allows_its_burst_then_one_request_per_refill() -> None:
    clock = ManualClock()
    buckets = KeyedBuckets("r", RateLimit(per_second=2, burst=3), Stopwatch(clock))
    for _ in range(3):
        buckets.check("k")
    with pytest.raises(Refusal) as refused:
        buckets.check("k")
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (429, "RateLimited", 0.5)
    assert refused.value.response().headers["retry-after"] == "1"
    clock.advance(0.5)
    buckets.check("k")
    with pytest.raises(Refusal):
        buckets.check("k")
    buckets.check("another key")


@given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=60), st.integers(1, 5))
def test_a_bucket_never_allows_more_than_its_burst_plus_what_refilled(gaps: list[float], burst: int) -> None:
    now, allowed = 0.0, 0
    bucket = TokenBucket(rate=1.5, capacity=burst, now=0.0)
    for gap in gaps:
        now += gap
        allowed += bucket.take(now) == 0
    assert allowed <= burst + now * 1.5 + 1e-9


def test_bucket_keys_hold_no_secret() -> None:
    assert "top-secret" not in bucket_key("top-secret", "127.0.0.1")
    assert bucket_key(None, "10.0.0.1") == "client:10.0.0.1"


def test_the_cache_expires_on_the_clock_and_keeps_the_most_recent() -> None:
    clock = ManualClock()
    cache = AnswerCache(CacheSettings(ttl=10, max_entries=2), Stopwatch(clock))
    a, b, c = (cache_key("r", body) for body in (b"a", b"b", b"c"))
    assert cache_key("r", b"a") != cache_key("s", b"a")
    cache.put(a, 1)
    cache.put(b, 2)
    assert cache.get(a) is not None  # a is now the most recent
    cache.put(c, 3)
    assert cache.get(b) is None and cache.get(a) is not None and len(cache) == 2
    clock.advance(10)
    assert cache.get(a) is None and cache.get(c) is None


def test_proxy_answers_are_checked() -> None:
    assert response_of({"statusCode": 204, "body": None}).status_code == 204
    encoded = response_of({"statusCode": 200, "body": "aGk=", "isBase64Encoded": True, "headers": {"Content-Type": "text/plain"}})
    assert (encoded.body, encoded.headers["content-type"]) == (b"hi", "text/plain")
    for bad, reason in [
        ({"statusCode": 99}, "statusCode 99 is not an HTTP status"),
        ({"statusCode": 200, "headers": []}, "headers must be a mapping"),
        ({"statusCode": 200, "body": "%%", "isBase64Encoded": True}, "body is not base64"),
    ]:
        with pytest.raises(Refusal) as refused:
            response_of(bad)
        assert (refused.value.status, refused.value.code) == (502, "InvalidProxyAnswer")
        assert reason in refused.value.reason
    with pytest.raises(Refusal) as refused:
        response_of({1, 2})
    assert refused.value.code == "AnswerNotJson"
    # A statusCode that is a bool is not a proxy answer, just a value.
    assert response_of({"statusCode": True}).body == b'{"statusCode":true}'


@pytest.fixture(params=["memory", "sqlite", "state"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    made: JobStore = {
        "memory": MemoryJobStore,
        "sqlite": lambda: SqliteJobStore(tmp_path / "jobs.db"),
        "state": lambda: StateFileJobStore(tmp_path / "state.db"),
    }[request.param]()
    await made.open()
    yield made
    await made.close()


def _job(n: int, route: str = "r") -> Job:
    return Job(id=f"job-{n}", route=route, status="PENDING", request=str(n), created=float(n), updated=float(n))


@pytest.mark.anyio
async def test_claims_take_the_oldest_pending_job_of_the_route_once(store: JobStore) -> None:
    for n, route in [(1, "r"), (2, "other"), (3, "r")]:
        await store.add(_job(n, route))
    assert await store.pending_routes() == {"r", "other"}
    [first] = await store.claim("r", 10.0)
    assert (first.id, first.status, first.attempts, first.updated) == ("job-1", "RUNNING", 1, 10.0)
    [second] = await store.claim("r", 11.0, limit=5)
    assert second.id == "job-3"
    assert await store.claim("r", 12.0) == []
    assert await store.get("job-1") == first


@pytest.mark.anyio
async def test_a_claim_takes_several_oldest_first_and_a_release_puts_them_first_again(store: JobStore) -> None:
    for n in range(1, 6):
        await store.add(_job(n))
    taken = await store.claim("r", 1.0, limit=3)
    assert [j.id for j in taken] == ["job-1", "job-2", "job-3"]
    await store.release(taken[:2], 2.0)
    assert [j.id for j in await store.claim("r", 3.0, limit=10)] == ["job-1", "job-2", "job-4", "job-5"]


@pytest.mark.anyio
async def test_finish_release_recover_and_purge(store: JobStore) -> None:
    for n in range(1, 4):
        await store.add(_job(n))
    one, two, _three = await store.claim("r", 5.0, limit=3)
    done = one.moved(status="SUCCEEDED", result='{"ok":true}', updated=6.0)
    await store.finish(done)
    assert await store.get("job-1") == done
    await store.release([two], 7.0)
    released = await store.get("job-2")
    assert released is not None and (released.status, released.attempts) == ("PENDING", 0)
    assert released.version > two.version
    # Recover is about what a process left behind: a memory store has nothing left behind.
    recovered = await store.recover(max_attempts=1, now=8.0)
    if isinstance(store, SqliteJobStore):
        assert [(j.id, j.status, j.error) for j in recovered] == [("job-3", "FAILED", "Interrupted")]
    assert await store.purge(finished_before=6.5) == 1  # job-1 only: job-3 ended at 8.0, if at all
    assert await store.get("job-1") is None


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [SqliteJobStore, StateFileJobStore])
async def test_a_sqlite_store_keeps_jobs_across_reopening(tmp_path: Path, kind: type[SqliteJobStore]) -> None:
    path = tmp_path / "jobs.db"
    first = kind(path)
    await first.open()
    await first.add(_job(1))
    await first.add(_job(2))
    claimed = await first.claim("r", 3.0)
    await first.close()
    again = kind(path)
    await again.open()
    try:
        recovered = await again.recover(max_attempts=3, now=4.0)
        assert claimed is not None and [(j.id, j.status, j.attempts) for j in recovered] == [("job-1", "PENDING", 1)]
        assert [j.id for j in await again.claim("r", 5.0, limit=2)] == ["job-1", "job-2"]
    finally:
        await again.close()


@pytest.mark.anyio
async def test_jobs_share_the_state_file_with_the_buses_and_one_process_runs_them(tmp_path: Path) -> None:
    from eventbus.bus.logs.sqlite import SqliteEventLog
    from eventbus.bus.logs.sqlite.state_file import StateFile

    path = tmp_path / "state.db"
    jobs = StateFileJobStore(path)
    await jobs.open()
    log = SqliteEventLog(path)
    try:
        await jobs.add(_job(1))
        from eventbus.bus.clock import SystemClock

        await log.open("orders", SystemClock())
        await log.close()
        # The owner of the jobs' lock is a row of the buses table, not a bus anyone lists.
        assert StateFile(path).buses() == ["orders"]
        # A second store on the file (another process's, or this one's) is refused, with the fix.
        with pytest.raises(JobStoreError, match=r"cannot be run here: this process runs them already, and two would run the same jobs twice"):
            StateFileJobStore(path).open_now()
        assert [j.id for j in await jobs.claim("r", 1.0)] == ["job-1"]
    finally:
        await jobs.close()
    again = StateFileJobStore(path)
    again.open_now()
    try:
        assert (await again.get("job-1")) is not None
    finally:
        await again.close()


def test_a_state_file_that_cannot_be_used_is_a_job_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text("not a database, just words\n" * 100)
    with pytest.raises(JobStoreError, match=r"cannot keep jobs in the state file.*not a usable state file"):
        StateFileJobStore(path).open_now()


def test_a_sqlite_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(JobStoreError, match="written by a newer version of eventbus"):
        SqliteJobStore(path).open_now()


@pytest.mark.anyio
async def test_a_follower_that_falls_behind_is_told_and_the_job_is_not_slowed() -> None:
    from eventbus.server.invoke.jobs import hub as hub_module

    events = JobEvents()
    follower = events.follow("j")
    for index in range(hub_module.MAX_BEHIND + 1):
        events.chunk("j", index, "x")
    with pytest.raises(Lagged):
        await follower.next()
    follower.close()
    with anyio.fail_after(5):
        events.chunk("j", 0, "still fine")


@pytest.mark.parametrize(
    ("runtime", "jobs", "default", "expected"),
    [
        # No backend named: the state file `eventbus run` keeps, whatever the command's default.
        ("", "", "memory", ("StateFileJobStore", ".eventbus/front.db")),
        ("", "", "sqlite", ("StateFileJobStore", ".eventbus/front.db")),
        ("backend: {type: sqlite, path: s/state.db}", "", "memory", ("StateFileJobStore", "s/state.db")),
        ("backend: memory", "", "memory", ("MemoryJobStore", None)),
        ("backend: memory", "type: sqlite", "memory", ("SqliteJobStore", ".eventbus/front.jobs.db")),
        ("", "path: j/jobs.db", "memory", ("SqliteJobStore", "j/jobs.db")),
        ("backend: sqlite", "type: memory", "memory", ("MemoryJobStore", None)),
    ],
)
def test_jobs_are_kept_where_the_runtime_keeps_its_state_unless_told(
    tmp_path: Path, runtime: str, jobs: str, default: str, expected: tuple[str, str | None]
) -> None:
    from eventbus.config import Runtime, load_configs
    from eventbus.config.backends import MemoryBackend, SqliteBackend
    from eventbus.server.invoke.front import job_store

    config = tmp_path / "front.yaml"
    config.write_text(
        f"runtime: {{{runtime}}}\ninvoke:\n  jobs: {{{jobs}}}\n  routes:\n    r: {{target: {{log: {{}}}}}}\n"
    )
    [loaded] = load_configs([config])
    made = Runtime([loaded], default_backend=SqliteBackend() if default == "sqlite" else MemoryBackend())
    store = job_store(made, loaded, loaded.model.invoke.jobs)
    kind, path = expected
    assert type(store).__name__ == kind
    if path is not None:
        assert isinstance(store, SqliteJobStore) and store.path == tmp_path / path


def test_a_path_is_for_a_job_store_of_its_own() -> None:
    from pydantic import ValidationError

    from eventbus.config.invoke import JobStoreSettings

    assert JobStoreSettings.model_validate({"path": "jobs.db"}).type == "sqlite"
    assert JobStoreSettings().type == "backend"
    with pytest.raises(ValidationError, match="path is for a job store of its own"):
        JobStoreSettings.model_validate({"type": "memory", "path": "jobs.db"})
