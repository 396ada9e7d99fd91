"""robots.txt answers, kept between runs for every worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from newsfold.store.base import SqlBase
from newsfold.store.schema import robots


class RobotsSql(SqlBase):
    def get_robots(self, host: str) -> tuple[str | None, datetime, int] | None:
        with self._read() as conn:
            row = conn.execute(select(robots).where(robots.c.host == host)).first()
        return None if row is None else (row.body, row.expires, row.status)

    def put_robots(self, host: str, body: str | None, status: int, expires: datetime) -> None:
        values = {"body": body, "status": status, "expires": expires}
        with self._write() as conn:
            answer = self._dialect_insert(robots).values(host=host, **values)
            conn.execute(answer.on_conflict_do_update(index_elements=["host"], set_=values))
