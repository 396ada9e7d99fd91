"""The per-host request limit shared by workers: one row per slot of a host (PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, func, or_, select, update

from newsfold.store.base import SqlBase
from newsfold.store.schema import host_slots


class HostSlotsSql(SqlBase):
    def acquire_host_slot(self, host: str, owner: str, limit: int, hold: timedelta) -> int | None:
        """One of `limit` request slots for `host`, held until released or `hold` passes.

        None while every slot is taken. On SQLite one run works at a time and its fetcher's own
        per-host limit is the whole story: always slot 0, without touching the database.
        """
        if self.is_sqlite:
            return 0
        with self._write() as conn:
            slot = self._take_slot(conn, host, owner, limit, hold)
            if slot is None and self._add_slots(conn, host, limit):
                slot = self._take_slot(conn, host, owner, limit, hold)
        return slot

    def _take_slot(
        self, conn: Connection, host: str, owner: str, limit: int, hold: timedelta
    ) -> int | None:
        # The database's clock: slots last seconds, and workers on other machines share them.
        now = func.timezone("UTC", func.clock_timestamp())
        free = (
            select(host_slots.c.slot)
            .where(
                host_slots.c.host == host,
                host_slots.c.slot < limit,
                or_(host_slots.c.expires.is_(None), host_slots.c.expires < now),
            )
            .order_by(host_slots.c.slot)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        taken = conn.execute(
            update(host_slots)
            .where(host_slots.c.host == host, host_slots.c.slot == free)
            .values(owner=owner, expires=now + hold)
            .returning(host_slots.c.slot)
        ).scalar()
        return None if taken is None else int(taken)

    def _add_slots(self, conn: Connection, host: str, limit: int) -> bool:
        """Create the host's slot rows up to `limit`; whether any was missing."""
        rows = [{"host": host, "slot": slot} for slot in range(limit)]
        added = conn.execute(self._dialect_insert(host_slots).on_conflict_do_nothing(), rows)
        return bool(added.rowcount)

    def release_host_slot(self, host: str, slot: int, owner: str) -> None:
        if self.is_sqlite:
            return
        with self._write() as conn:
            conn.execute(
                update(host_slots)
                .where(
                    host_slots.c.host == host,
                    host_slots.c.slot == slot,
                    host_slots.c.owner == owner,
                )
                .values(owner=None, expires=None)
            )
