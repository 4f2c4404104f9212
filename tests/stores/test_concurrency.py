"""The four concurrency guarantees of the store contract, with real threads.

Each thread uses one of two store handles in turn; for SQLite and Redis those
are separate connections (a thread-local SQLite connection, a Redis pool
connection per thread), as separate processes would have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from wsgi_sessions.stores import Store

KEY = "{conc0001}session"
THREADS = 8
ROUNDS = 30


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(index)`` in ``count`` threads released together; re-raise errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def test_changes_to_different_keys_all_survive(store: Store, other_store: Store) -> None:
    store.create(KEY, {"base": "0"}, 60)

    def work(index: int) -> None:
        handle = store if index % 2 else other_store
        for round_ in range(ROUNDS):
            assert handle.apply(KEY, {f"t{index}-{round_}": str(round_)}, [])

    run_threads(THREADS, work)
    fields = store.load(KEY)
    assert fields is not None
    expected = {f"t{i}-{r}": str(r) for i in range(THREADS) for r in range(ROUNDS)}
    assert fields == {"base": "0", **expected}


def test_the_same_key_last_writer_wins_whole(store: Store, other_store: Store) -> None:
    store.create(KEY, {"x": "start"}, 60)
    # Large values: a torn write would show as a mix of two threads' characters.
    values = {i: chr(ord("a") + i) * 20_000 for i in range(THREADS)}

    def work(index: int) -> None:
        handle = store if index % 2 else other_store
        for _ in range(ROUNDS):
            assert handle.apply(KEY, {"x": values[index], "y": values[index]}, [])
            seen = handle.load(KEY)
            assert seen is not None
            assert seen["x"] in values.values()

    run_threads(THREADS, work)
    fields = store.load(KEY)
    assert fields is not None
    assert fields["x"] in values.values()
    # One apply wrote both keys at once: they come from the same writer.
    assert fields["x"] == fields["y"]


def test_a_deleted_session_is_not_resurrected_by_writes_in_flight(
    store: Store, other_store: Store
) -> None:
    store.create(KEY, {"user": "alice"}, 60)
    deleted = threading.Event()
    refused_after_delete = []

    def work(index: int) -> None:
        if index == 0:
            assert other_store.delete(KEY)
            deleted.set()
            return
        handle = store if index % 2 else other_store
        while True:
            was_deleted = deleted.is_set()
            applied = handle.apply(KEY, {f"w{index}": "1"}, [])
            if was_deleted:
                assert not applied
            if not applied:
                refused_after_delete.append(index)
                return

    run_threads(THREADS, work)
    assert sorted(refused_after_delete) == list(range(1, THREADS))
    assert store.load(KEY) is None
    assert other_store.load(KEY) is None


def test_writes_in_flight_during_rename_are_not_lost(store: Store, other_store: Store) -> None:
    store.create(KEY, {"user": "alice"}, 60)
    new_key = "{conc0001}renamed"
    applied: dict[int, int] = {}
    opened_at = time.time()  # every writer read the session id before the rename

    def work(index: int) -> None:
        if index == 0:
            assert store.rename(KEY, new_key)
            return
        handle = store if index % 2 else other_store
        count = 0
        for round_ in range(ROUNDS):
            # Requests that started before the rename still hold the old key.
            assert handle.apply(KEY, {f"w{index}-{round_}": "1"}, [], opened_at=opened_at)
            count += 1
        applied[index] = count

    run_threads(THREADS, work)
    assert store.load(KEY) is None  # the old id is dead
    fields = other_store.load(new_key)
    assert fields is not None
    expected = {f"w{i}-{r}": "1" for i in range(1, THREADS) for r in range(ROUNDS)}
    assert fields == {"user": "alice", **expected}
    assert sum(applied.values()) == (THREADS - 1) * ROUNDS
