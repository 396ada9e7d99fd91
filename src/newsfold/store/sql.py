"""SqlStore: the store on SQLAlchemy Core, for SQLite (default) and PostgreSQL.

One class made of one part per table and job, as the store's clients see it:

    base.py      the engine, transactions, errors          feeds.py    feeds, entries, leases
    articles.py  articles, one feed's commit               stories.py  stories and dedup rows
    search.py    the full-text index and its queries
    robots.py    robots.txt answers                        slots.py    per-host slots of workers
    admin.py     migrations, run lock, check, runs, stats  rows.py     rows to the model and back

On PostgreSQL several workers write at once. What keeps their result equal to one worker's:
- feeds are leased one at a time (FOR UPDATE SKIP LOCKED), so no feed is checked twice at once;
- a feed's transaction first locks every dedup key its articles will look up (stories.py), so
  copies of one story saved by two workers are folded one after the other;
- rows two workers may both create (a feed from the config, an article two feeds list, a robots
  answer) are inserted with ON CONFLICT, and a transaction PostgreSQL still aborts as a deadlock
  (story rows updated in opposite orders) is run again from the start.
"""

from __future__ import annotations

from newsfold.store.admin import AdminSql
from newsfold.store.articles import ArticlesSql
from newsfold.store.feeds import FeedsSql
from newsfold.store.robots import RobotsSql
from newsfold.store.search import SearchSql
from newsfold.store.slots import HostSlotsSql
from newsfold.store.stories import StoriesSql


class SqlStore(FeedsSql, ArticlesSql, StoriesSql, SearchSql, RobotsSql, HostSlotsSql, AdminSql):
    """Every part of the store over one engine (see the parts for what each does)."""
