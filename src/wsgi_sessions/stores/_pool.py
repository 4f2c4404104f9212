"""A small thread-safe connection pool, safe across ``fork()``.

For drivers that have none worth using (mysqlclient has none; the others'
either raise at once when exhausted or cannot be reset after a fork). It
opens connections lazily, up to ``size`` at a time, and lends each to one
thread at a time; a connection that met an error is closed, never lent again.

Fork safety: a pool notices that it runs in a new process (its pid changed)
and starts empty there. The connections it inherited belong to the parent:
they are never used, and never closed either (closing one in the child would
end it for the parent, as the driver sends QUIT on the shared socket); they
are kept referenced so that no finalizer closes them. Opening lazily means
there is usually nothing to inherit: a pre-fork server's workers each open
their own on their first request.
"""

from __future__ import annotations

import os
import threading
import typing as t
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

__all__ = ["ConnectionPool", "PoolTimeout"]

C = t.TypeVar("C")


class PoolTimeout(Exception):
    """Every connection stayed in use for the whole wait."""


class ConnectionPool(t.Generic[C]):
    """Lend up to ``size`` connections made by ``connect``; wait at most
    ``timeout`` seconds for one to be free."""

    def __init__(
        self,
        connect: Callable[[], C],
        *,
        size: int,
        timeout: float,
        close: Callable[[C], None],
    ) -> None:
        self._connect = connect
        self._close = close
        self.size = size
        self.timeout = timeout
        self._inherited: list[C] = []
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._idle: list[C] = []
        # Counts connections lent out; an idle one holds no slot.
        self._slots = threading.BoundedSemaphore(self.size)

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            # A new process: the parent's connections are neither used nor closed.
            self._inherited.extend(self._idle)
            self._start()

    @contextmanager
    def connection(self) -> Iterator[tuple[C, bool]]:
        """A connection and whether it was reused (made earlier, so possibly
        dead since); closed instead of returned if the block raises."""
        self._check_pid()
        if not self._slots.acquire(timeout=self.timeout):
            raise PoolTimeout(f"no free connection within {self.timeout} s ({self.size} in use)")
        slots, pid = self._slots, self._pid
        try:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            reused = connection is not None
            if connection is None:
                connection = self._connect()
        except BaseException:
            slots.release()
            raise
        try:
            yield connection, reused
        except BaseException:
            self._discard(connection)
            raise
        else:
            if pid == os.getpid():
                with self._lock:
                    self._idle.append(connection)
            else:  # forked while it was lent: the parent's
                self._inherited.append(connection)
        finally:
            slots.release()

    def _discard(self, connection: C) -> None:
        with suppress(Exception):  # thrown away after a fault already
            self._close(connection)

    def clear(self) -> None:
        """Close the idle connections (after a fault that likely killed them
        all, as a database restart does); those lent out close on return."""
        self._check_pid()
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)

    def __len__(self) -> int:
        """How many idle connections the pool holds."""
        return len(self._idle)
