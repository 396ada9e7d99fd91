"""Articles: a feed entry is only a pointer; download its page and extract the story's text.

For each new or edited entry (its link is canonical since parsing): skip the download when the
article is already stored (another feed listed it) unless the entry was edited; honour robots.txt;
download the page with the shared fetcher; refuse non-HTML answers; extract in the process pool.
When the page fails or gives less text than the feed itself carries, the feed's text is kept and
the reason recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from newsfold.config import Settings
from newsfold.errors import PageSkipped, StageError
from newsfold.extract import ExtractPool
from newsfold.fetch import HTML_ACCEPT, Fetcher
from newsfold.model import MAX_TEXT_CHARS, Article, Entry, Extracted, FeedState, RunReport
from newsfold.robots import RobotsPolicy
from newsfold.urls import canonicalize_url

HTML_TYPES = ("text/html", "application/xhtml+xml")
PAGES_AHEAD_PER_WORKER = 4


@dataclass(slots=True)
class MadeArticles:
    articles: list[Article] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # entry key -> article URL
    # Articles that kept the feed's text because their page failed or said less, by reason
    # (pages not downloaded by choice, extract.fetch_pages off, are no failure).
    page_failures: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PageOutcome:
    extracted: Extracted | None
    error: str | None = None
    kind: str | None = None


class ArticleMaker:
    def __init__(
        self,
        settings: Settings,
        fetcher: Fetcher,
        pool: ExtractPool,
        robots: RobotsPolicy,
        report: RunReport,
    ) -> None:
        self.settings = settings
        self.fetcher = fetcher
        self.pool = pool
        self.robots = robots
        self.report = report
        # One download per URL per run, however many feeds list it.
        self._pages: dict[str, asyncio.Task[PageOutcome]] = {}
        # Pages between download and extraction: downloads run a little ahead of the workers,
        # and memory holds a few page bodies, not every page the run will see.
        self._in_flight = asyncio.Semaphore(PAGES_AHEAD_PER_WORKER * pool.workers)

    async def make(
        self, feed: FeedState, entries: Sequence[Entry], known: set[str], edited: set[str]
    ) -> MadeArticles:
        made = MadeArticles()
        jobs: list[tuple[Entry, str, asyncio.Task[PageOutcome] | None]] = []
        for entry in entries:
            link = entry.link
            if link is None:
                continue
            if link in known and entry.key not in edited:
                made.links[entry.key] = link
                continue
            jobs.append((entry, link, self._page(link)))
        for entry, link, task in jobs:
            outcome = await task if task else PageOutcome(None, "page download is off", "off")
            article = self._article(feed, entry, link, outcome)
            if article is None:
                continue
            made.links[entry.key] = article.url
            if all(a.url != article.url for a in made.articles):
                made.articles.append(article)
                if article.page_error is not None and outcome.kind != "off":
                    reason = outcome.kind or "short"
                    made.page_failures[reason] = made.page_failures.get(reason, 0) + 1
        return made

    def _page(self, url: str) -> asyncio.Task[PageOutcome] | None:
        if not self.settings.extract.fetch_pages:
            return None
        if url not in self._pages:
            self._pages[url] = asyncio.create_task(self._download_and_extract(url))
        return self._pages[url]

    async def _download_and_extract(self, url: str) -> PageOutcome:
        async with self._in_flight:
            return await self._page_outcome(url)

    async def _page_outcome(self, url: str) -> PageOutcome:
        try:
            if self.settings.fetch.respect_robots and not await self.robots.allowed(url):
                raise PageSkipped(url, "disallowed by robots.txt", "robots")
            result = await self.fetcher.fetch(url, accept=HTML_ACCEPT)
            if result.body is None:
                raise PageSkipped(url, "empty answer", "empty")
            media_type = (result.content_type or "text/html").split(";")[0].strip().lower()
            if media_type not in HTML_TYPES:
                raise PageSkipped(url, f"not an HTML page ({media_type})", "not_html")
            extracted = await self.pool.extract(result.body, result.final_url, result.content_type)
        except StageError as exc:  # the feed's text is kept, with this reason
            return PageOutcome(None, str(exc), exc.kind)
        return PageOutcome(extracted)

    def _article(
        self, feed: FeedState, entry: Entry, link: str, outcome: PageOutcome
    ) -> Article | None:
        page = outcome.extracted
        feed_text = entry.summary or ""
        error = outcome.error
        if page is not None and len(page.text) < len(feed_text):
            error = f"{link}: the page's text is shorter than the feed's"
        use_page = page is not None and error is None
        text = (page.text if use_page and page else feed_text)[:MAX_TEXT_CHARS]
        if not text.strip():
            return None
        if error is not None:
            self.report.articles_from_feed_text += 1
            kind = outcome.kind or "short"
            self.report.pages_skipped[kind] = self.report.pages_skipped.get(kind, 0) + 1
        canonical = canonicalize_url(page.canonical_url) if page and page.canonical_url else None
        # A date in 1970 or 2999 stays on the entry, flagged, never on the article.
        published = entry.published if not entry.date_suspect else None
        return Article(
            url=canonical or link,
            feed_id=feed.id,
            title=entry.title or (page.title if page else None),
            text=text,
            text_source="page" if use_page else "feed",
            published=published or (page.published if page else None),
            author=entry.author or (page.author if page else None),
            site_name=page.site_name if page else None,
            language=page.language if page else None,
            page_error=error,
        )
