"""Following the store's change log: what other processes write becomes searchable here.

A ``ChangeFollower`` thread waits for a change, then calls ``GalleryStore.sync``. On
PostgreSQL it LISTENs on the channel every write NOTIFYs at commit, so it wakes at once; on
SQLite (no notifications between processes) it polls the change counter, a one-row read.
Either way it also polls every ``poll_s`` as the fallback for a missed notification or a
connection that was lost. It notes whether the database answered (``healthy``), which is what
``/ready`` reports.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from indexer.errors import StoreUnavailable
from indexer.gallery_db import is_postgres_url
from indexer.store import GalleryStore

log = logging.getLogger(__name__)

POLL_S = 0.25
"""The longest a change waits to be noticed without a notification (SQLite, a lost one)."""


class Listener:
    """A connection of its own that LISTENs; reconnects when the server comes back."""

    def __init__(self, url: str, location: str) -> None:
        self.url, self.location = url, location
        self._conn: Any = None  # a psycopg.Connection (psycopg is imported only when used)

    def wait(self, timeout: float) -> None:
        """Return on a notification or after ``timeout``; StoreUnavailable when down."""
        import psycopg

        from indexer.postgres_db import CHANNEL, unavailable

        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
                self._conn.execute(f"LISTEN {CHANNEL}")
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error as exc:
            self.close()
            raise StoreUnavailable(unavailable(self.location, exc)) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ChangeFollower:
    """A daemon thread that keeps ``store`` in step with its database's change log."""

    def __init__(self, store: GalleryStore, poll_s: float = POLL_S) -> None:
        self.store = store
        self.poll_s = poll_s
        self.healthy = True
        self.problem: str | None = None
        self._stop = threading.Event()
        url = store.store_url
        self._listener = Listener(url, store.location) if url and is_postgres_url(url) else None
        self._thread = threading.Thread(target=self._run, name="facefind-follow", daemon=True)

    def start(self) -> ChangeFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._listener is not None:
            self._listener.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._wait()
                if self.store.last_change() != self.store.synced_to:
                    applied = self.store.sync()
                    log.debug("applied %d changes from the store", applied)
                self._healthy()
            except StoreUnavailable as exc:
                self._unhealthy(str(exc))
                self._stop.wait(self.poll_s)
            except Exception as exc:  # never let the thread die: log, retry at the next poll
                log.exception("following the store's changes failed")
                self._unhealthy(f"following the gallery's changes failed: {exc}")
                self._stop.wait(self.poll_s)

    def _wait(self) -> None:
        if self._listener is None:
            self._stop.wait(self.poll_s)
            return
        self._listener.wait(self.poll_s)

    def _healthy(self) -> None:
        if not self.healthy:
            log.info("the gallery database answers again; caught up with its changes")
        self.healthy, self.problem = True, None

    def _unhealthy(self, problem: str) -> None:
        if self.healthy:
            log.warning("%s", problem)
        self.healthy, self.problem = False, problem
