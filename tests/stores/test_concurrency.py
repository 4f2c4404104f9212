"""The four concurrency guarantees of the store contract, with real threads.

Each thread uses one of two store handles in turn; for SQLite and Redis those
are separate connections (a thread-local SQLite connection, a Redis pool
connection per thread), as separate processes would have.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping

from wsgi_sessions.stores import Store
from wsgi_sessions.stores.base import Ended

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
    assert isinstance(fields, Mapping)
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
            assert isinstance(seen, Mapping)
            assert seen["x"] in values.values()

    run_threads(THREADS, work)
    fields = store.load(KEY)
    assert isinstance(fields, Mapping)
    assert fields["x"] in values.values()
    # One apply wrote both keys at once: they come from the same writer.
    assert fields["x"] == fields["y"]


def test_an_ended_session_is_not_resurrected_by_writes_in_flight(
    store: Store, other_store: Store
) -> None:
    store.create(KEY, {"user": "alice"}, 60)
    ended = threading.Event()
    refused_after_end = []

    def work(index: int) -> None:
        if index == 0:
            assert other_store.end(KEY)
            ended.set()
            return
        handle = store if index % 2 else other_store
        while True:
            was_ended = ended.is_set()
            applied = handle.apply(KEY, {f"w{index}": "1"}, [])
            if was_ended:
                assert isinstance(applied, Ended)
            if not applied:
                refused_after_end.append(index)
                return

    run_threads(THREADS, work)
    assert sorted(refused_after_end) == list(range(1, THREADS))
    assert isinstance(store.load(KEY), Ended)
    assert isinstance(other_store.load(KEY), Ended)


def test_writes_racing_a_rename_land_before_it_or_nowhere(store: Store, other_store: Store) -> None:
    # Writes with the old key that lose the race to a regenerate are dropped,
    # never forwarded into the renamed session; those that won moved with it.
    store.create(KEY, {"user": "alice"}, 60)
    new_key = "{conc0001}renamed"
    landed: set[str] = set()
    dropped: set[str] = set()

    def work(index: int) -> None:
        if index == 0:
            time.sleep(0.005)
            assert store.rename(KEY, new_key) is True
            return
        handle = store if index % 2 else other_store
        for round_ in range(ROUNDS):
            name = f"w{index}-{round_}"
            result = handle.apply(KEY, {name: "1"}, [])
            if result is True:
                landed.add(name)
            else:
                assert isinstance(result, Ended)
                dropped.add(name)

    run_threads(THREADS, work)
    assert isinstance(store.load(KEY), Ended)  # the old id is dead
    fields = other_store.load(new_key)
    assert isinstance(fields, Mapping)
    assert fields == {"user": "alice", **dict.fromkeys(landed, "1")}
    assert len(landed) + len(dropped) == (THREADS - 1) * ROUNDS


def test_a_logout_racing_logins_ends_every_successor(store: Store, other_store: Store) -> None:
    # One end() of the first id against a chain of renames in another thread:
    # whichever wins each step, no live record is left.
    for attempt in range(10):
        first = f"{{conc0001}}race{attempt}"
        store.create(first, {"user": "alice"}, 60)
        keys = [first] + [f"{{conc0001}}race{attempt}-{i}" for i in range(5)]

        def work(index: int, keys: list[str] = keys) -> None:
            if index == 0:
                assert other_store.end(keys[0]) in (True, False)
                return
            for old, new in itertools.pairwise(keys):
                if store.rename(old, new) is not True:
                    return

        run_threads(2, work)
        for key in keys:
            assert not isinstance(store.load(key), Mapping), (attempt, key)
