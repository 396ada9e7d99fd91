"""The store's life and health: migrations, integrity checks, runs and stats."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from newsfold.store import Progress, schema
from newsfold.store.base import SqlBase, utc_now
from newsfold.store.feeds import worker_seen
from newsfold.store.schema import articles, feeds, runs, stories, workers

MIGRATION_LOCK = 0x6E657773666F6C64  # "newsfold": workers starting at once migrate one by one
WORKERS_RECENT = timedelta(hours=1)  # `stats` lists the workers seen within this


class AdminSql(SqlBase):
    def migrate(self, progress: Progress = schema.ignore_progress) -> int:
        with self._write() as conn:
            if not self.is_sqlite:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            return schema.migrate(conn, utc_now(), progress)

    def check(self) -> list[str]:
        """Problems found in the store (empty when it is sound): file integrity and invariants."""
        problems: list[str] = []
        with self._read() as conn:
            if self.is_sqlite:
                result = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
                if result != ["ok"]:
                    problems += [f"integrity: {line}" for line in result]
                problems += [
                    f"foreign key: {r[0]} row {r[1]} points to a missing {r[2]}"
                    for r in conn.exec_driver_sql("PRAGMA foreign_key_check")
                ]
            version = schema.current_version(conn)
            if version != schema.LATEST:
                problems.append(f"schema version {version}, expected {schema.LATEST}")
            unfolded = conn.execute(
                select(func.count()).where(articles.c.story_id.is_(None))
            ).scalar()
            if unfolded:
                problems.append(f"{unfolded} articles belong to no story")
            members = select(articles.c.id).where(articles.c.story_id == stories.c.id).exists()
            empty = conn.execute(
                select(func.count())
                .select_from(stories)
                .where(~members, stories.c.merged_into.is_(None))
            ).scalar()
            if empty:
                problems.append(f"{empty} stories have no article")
        return problems

    def record_run(self, worker: str, started: datetime, finished: datetime, report: str) -> None:
        with self._write() as conn:
            conn.execute(
                runs.insert().values(
                    worker=worker, started_at=started, finished_at=finished, report=report
                )
            )
            worker_seen(conn, worker, finished, leased=0)

    def stats(self) -> dict[str, Any]:
        with self._read() as conn:

            def count(query: Any) -> int:
                return int(conn.execute(query).scalar() or 0)

            return {
                "store": self._safe_url(),
                "feeds": count(select(func.count()).select_from(feeds)),
                "feeds_failing": count(select(func.count()).where(feeds.c.status == "error")),
                "articles": count(select(func.count()).select_from(articles)),
                "stories": count(select(func.count()).where(stories.c.merged_into.is_(None))),
                "last_run": conn.execute(select(func.max(runs.c.finished_at))).scalar(),
                "schema_version": schema.current_version(conn),
                "workers": self._recent_workers(conn),
            }

    def _recent_workers(self, conn: Connection) -> list[dict[str, Any]]:
        """Workers seen within WORKERS_RECENT, latest first, with the feeds they lease now."""
        now = utc_now()
        leased_now = (
            select(func.count())
            .where(feeds.c.lease_owner == workers.c.worker, feeds.c.lease_expires >= now)
            .scalar_subquery()
        )
        finished = (
            select(func.max(runs.c.finished_at))
            .where(runs.c.worker == workers.c.worker)
            .scalar_subquery()
        )
        query = (
            select(workers, leased_now.label("leased_now"), finished.label("finished"))
            .where(workers.c.last_seen >= now - WORKERS_RECENT)
            .order_by(workers.c.last_seen.desc(), workers.c.worker)
        )
        return [dict(row._mapping) for row in conn.execute(query)]
