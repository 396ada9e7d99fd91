"""`newsfold export --format atom|html` end to end: corpus stories in a real SQLite store, exported
through the CLI, the Atom feed read back by feedparser, the HTML digest looked at in headless
Chromium at a phone's and a desktop's width, light and dark.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest
from click.testing import CliRunner

from newsfold import output
from newsfold.cli import cli
from newsfold.model import Article, Entry, FeedSource
from newsfold.store import FeedUpdate, Store, open_store
from tests.browser import Browser, BrowserMissing, chromium
from tests.stores import labelled, same_label, sqlite_url

T0 = datetime(2026, 2, 17, 20, 0, tzinfo=UTC)
GROUPS = 12  # the corpus's first same-story groups: several outlets each, one item listed 4 times
HOSTILE_TITLE = "<script>window.pwned = 1</script> Quake & aftershocks <b>live</b>"
LONG_WORD = "Aftershock" * 30  # one unbroken word far wider than a phone
PHONE = (390, 844)
DESKTOP = (1280, 900)
LATE = "https://late.test/quake"


# -- a store filled from the corpus ----------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """One feed item of the corpus, as stored: its outlet is the feed's title."""

    group: str
    feed: str
    outlet: str
    url: str
    title: str
    text: str
    published: datetime | None


def corpus_copies(corpus: Path) -> list[Copy]:
    data = json.loads((corpus / "syndication" / "feed-item-groups.json").read_text("utf-8"))
    return [
        Copy(
            group=group["group"],
            feed=f"https://corpus.test/{member['feed']}",
            outlet=member["feed_title"],
            url=member["link"],
            title=member["title"],
            text=member.get("summary") or "",
            published=when(member["published"]),
        )
        for group in data["groups"][:GROUPS]
        for member in group["members"]
    ]


def when(published: str | None) -> datetime | None:
    """A corpus item's date: RFC 822 in RSS feeds, ISO 8601 in the others."""
    if not published:
        return None
    try:
        return parsedate_to_datetime(published).astimezone(UTC)
    except ValueError:
        return datetime.fromisoformat(published).astimezone(UTC)


def hostile_copies() -> list[Copy]:
    """Markup in titles, a script URL, a word and a URL wider than any phone."""
    feed, when = "https://hostile.test/feed", T0 - timedelta(hours=2)
    return [
        Copy("H", feed, "Hostile <i>Times</i>", "https://hostile.test/quake", HOSTILE_TITLE,
             "Ground shook <b>hard</b> & long. " * 20, when),
        Copy("H", feed, "Scripted", "javascript:window.pwned=2", "<img src=x onerror=pwned=3>",
             "Copy with a script link.", when),
        Copy("H", feed, "Wide", "https://wide.test/" + "a" * 300, LONG_WORD,
             "Copy with a long word.", when),
    ]  # fmt: skip


def save(store: Store, copy: Copy, at: datetime) -> None:
    store.add_feed(FeedSource(copy.feed), at)
    feed_id = next(f.id for f in store.feeds() if f.url == copy.feed)
    entry = Entry(key=copy.url, link=copy.url, title=copy.title, summary=None, published=None)
    article = Article(
        url=copy.url,
        feed_id=feed_id,
        title=copy.title,
        text=copy.text,
        text_source="feed",
        published=copy.published,
        site_name=copy.outlet,
    )
    update = FeedUpdate(feed_id, at, at + timedelta(minutes=30))
    rules = same_label(at, similarity=0.9)  # fold by corpus group
    store.record_feed(update, [entry], [labelled(article, copy.group)], {copy.url: copy.url}, rules)


def fill(db: str, copies: list[Copy], start: datetime = T0) -> dict[str, datetime]:
    """Store the copies a minute apart; returns when each group's story was first seen."""
    store = open_store(db)
    store.migrate()
    first_seen: dict[str, datetime] = {}
    try:
        for n, copy in enumerate(copies):
            at = start + timedelta(minutes=n)
            first_seen.setdefault(copy.group, at)
            save(store, copy, at)
    finally:
        store.close()
    return first_seen


def export(db: str, fmt: str, output: Path | None = None) -> str:
    args = ["--db", db, "export", "--format", fmt]
    result = CliRunner().invoke(cli, [*args, "--output", str(output)] if output else args)
    assert result.exit_code == 0, result.output
    return output.read_text("utf-8") if output else result.output


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return sqlite_url(tmp_path)


@pytest.fixture
def stories(db: str, corpus: Path) -> list[dict[str, Any]]:
    """The corpus and hostile stories stored, as `export --format jsonl` lists them."""
    fill(db, [*corpus_copies(corpus), *hostile_copies()])
    return [json.loads(line) for line in export(db, "jsonl").splitlines()]


# -- Atom ------------------------------------------------------------------------------------------


def read_atom(text: str) -> Any:
    parsed = feedparser.parse(text)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def listed_copies(entry: Any) -> list[tuple[str, str, str | None]]:
    """(outlet, title, link) of each copy the entry's content lists."""
    if "content" not in entry:
        return []
    items = lxml.html.fromstring(entry.content[0].value).iter("li")
    return [
        (li.findtext("strong"), li.findtext("a") or li.text_content().split(": ", 1)[1],
         li.find("a").get("href") if li.find("a") is not None else None)
        for li in items
    ]  # fmt: skip


def by_link(parsed: Any) -> dict[str, Any]:
    return {entry.link: entry for entry in parsed.entries}


def test_atom_has_one_entry_per_story_with_its_copies(
    db: str, stories: list[dict[str, Any]]
) -> None:
    """Each story is one well-formed entry: canonical link, summary, every other copy linked."""
    parsed = read_atom(export(db, "atom"))
    assert parsed.feed.title and parsed.feed.id and parsed.feed.updated_parsed
    assert parsed.feed.author == "newsfold" and parsed.feed.generator == "newsfold"
    assert len(parsed.entries) == len(stories) == GROUPS + 1
    entries = by_link(parsed)
    for story in stories:
        entry = entries[story["url"]]
        canonical, *others = story["articles"]
        assert entry.title == story["title"] == canonical["title"]
        assert entry.summary
        related = [link.href for link in entry.links if link.rel == "related"]
        shown = [o for o in others if o["url"].startswith("https://")]
        assert related == [o["url"] for o in shown]
        expected = [(o["outlet"], o["title"], o["url"] if o in shown else None) for o in others]
        assert listed_copies(entry) == expected
    assert len({entry.id for entry in parsed.entries}) == len(parsed.entries)


def test_atom_dates_are_published_and_latest_copy(db: str, corpus: Path) -> None:
    """<published> is when the story's earliest copy was published (first seen when no copy
    says), <updated> its newest copy's time, never before it was first seen."""
    copies = corpus_copies(corpus)
    first_seen = fill(db, copies)
    entries = by_link(read_atom(export(db, "atom")))
    stories = [json.loads(line) for line in export(db, "jsonl").splitlines()]
    undated = 0
    for story in stories:
        group = next(c.group for c in copies if c.url == story["url"])
        entry = entries[story["url"]]
        published = datetime.fromisoformat(entry.published)
        updated = datetime.fromisoformat(entry.updated)
        times = [c.published for c in copies if c.group == group and c.published]
        seen = first_seen[group].replace(microsecond=0)
        assert published == (min(times).replace(microsecond=0) if times else seen)
        assert story["published"] == (output.iso(min(times)) if times else None)
        assert updated == max([seen, *times])
        undated += not times
    assert undated < len(stories)  # the corpus's items mostly carry their dates


def test_atom_entry_ids_survive_a_new_copy(db: str, corpus: Path) -> None:
    """A copy joining a story keeps every entry id, so a reader never shows the story twice."""
    copies = corpus_copies(corpus)
    fill(db, copies)
    before = by_link(read_atom(export(db, "atom")))
    late = Copy(copies[0].group, "https://late.test/feed", "Late Wire", LATE,
                "A late copy", "Late text.", T0 + timedelta(hours=3))  # fmt: skip
    fill(db, [late], start=T0 + timedelta(hours=3))
    after = by_link(read_atom(export(db, "atom")))
    assert {e.id for e in after.values()} == {e.id for e in before.values()}
    grown = next(
        e for e in after.values() if ("Late Wire", "A late copy", LATE) in listed_copies(e)
    )
    assert before[grown.link].id == grown.id
    assert grown.updated > before[grown.link].updated


def test_atom_entry_ids_differ_between_stores(tmp_path: Path, corpus: Path) -> None:
    """Story 1 of one store and story 1 of another are two entries, not one."""
    copies = corpus_copies(corpus)[:3]
    one, two = sqlite_url(tmp_path / "one"), sqlite_url(tmp_path / "two")
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
    fill(one, copies)
    fill(two, copies, start=T0 + timedelta(days=1))
    [first] = read_atom(export(one, "atom")).entries
    [second] = read_atom(export(two, "atom")).entries
    assert first.link == second.link and first.id != second.id


def test_atom_keeps_markup_as_text(db: str, stories: list[dict[str, Any]]) -> None:
    """Titles with tags read back exactly; a script URL is never a link."""
    atom = export(db, "atom")
    entry = by_link(read_atom(atom))["https://hostile.test/quake"]
    assert entry.title == HOSTILE_TITLE
    assert "javascript:" not in atom
    assert "<script>" not in atom


def test_empty_atom_is_a_valid_feed(db: str) -> None:
    """With no stories yet the export is still a valid, empty Atom feed."""
    fill(db, [])
    parsed = read_atom(export(db, "atom"))
    assert parsed.entries == []
    assert parsed.feed.id and parsed.feed.title and parsed.feed.updated_parsed


# -- HTML in a browser -----------------------------------------------------------------------------

LAYOUT = """
const pageY = y => y + window.scrollY;
const style = el => getComputedStyle(el);
const card = el => style(el.closest('.story') || document.body).backgroundColor;
const looks = el => ({color: style(el).color, background: card(el),
                      px: parseFloat(style(el).fontSize)});
const stories = [...document.querySelectorAll('article.story')].map(story => {
  const title = story.querySelector('h2 > *');
  title.scrollIntoView({block: 'center'});
  const line = title.getClientRects()[0];
  const hit = document.elementFromPoint(line.left + line.width / 2, line.top + line.height / 2);
  const box = story.getBoundingClientRect();
  return {
    title: title.textContent, href: title.getAttribute('href'), look: looks(title),
    visible: title.contains(hit) && line.left >= 0 && line.right <= window.innerWidth,
    titleBottom: pageY(title.getBoundingClientRect().bottom),
    top: pageY(box.top), bottom: pageY(box.bottom),
    meta: story.querySelector('.meta').innerText,
    summary: story.querySelector('.summary') && looks(story.querySelector('.summary')),
    copies: [...story.querySelectorAll('ul.copies > li')].map(li => ({
      text: li.innerText, href: li.querySelector('a') && li.querySelector('a').getAttribute('href'),
      top: pageY(li.getBoundingClientRect().top), bottom: pageY(li.getBoundingClientRect().bottom),
      look: looks(li.querySelector('a, .outlet + span') || li)})),
  };
});
window.scrollTo(0, 0);
const main = document.querySelector('main').getBoundingClientRect();
return {stories, innerWidth: window.innerWidth, clientWidth: document.documentElement.clientWidth,
        scrollWidth: document.documentElement.scrollWidth,
        body: looks(document.body), meta: looks(document.querySelector('.updated')),
        main: [main.left, main.right], scripts: document.scripts.length,
        pwned: window.pwned === undefined ? null : window.pwned,
        text: document.body.innerText};
"""

# Draws a PNG on a canvas and returns its mean relative luminance (0 black .. 1 white).
LUMINANCE = """
const [data, done] = arguments;
const image = new Image();
image.onload = () => {
  const canvas = document.createElement('canvas');
  canvas.width = image.width; canvas.height = image.height;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const px = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < px.length; i += 4)
    sum += (0.2126 * px[i] + 0.7152 * px[i + 1] + 0.0722 * px[i + 2]) / 255;
  done(sum / (px.length / 4));
};
image.src = 'data:image/png;base64,' + data;
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    try:
        with chromium(tmp_path_factory.mktemp("chromium")) as running:
            yield running
    except BrowserMissing as exc:
        pytest.fail(str(exc))


@dataclass
class Look:
    """What the page showed: its layout read by script, and a screenshot."""

    layout: dict[str, Any]
    screenshot: bytes
    requests: list[str]


def look(browser: Browser, page: Path, size: tuple[int, int], *, mobile: bool, dark: bool) -> Look:
    browser.emulate(*size, mobile=mobile, dark=dark)
    browser.requests()  # forget what came before
    browser.open(page.as_uri())
    layout = browser.run(LAYOUT)
    shot = browser.screenshot()
    name = f"{'phone' if mobile else 'desktop'}-{'dark' if dark else 'light'}.png"
    (page.parent / name).write_bytes(shot)  # kept beside the page for a human to look at
    return Look(layout, shot, browser.requests())


def luminance(browser: Browser, png: bytes) -> float:
    browser.open("about:blank")
    return float(browser.run_async(LUMINANCE, base64.b64encode(png).decode("ascii")))


def rgb(css: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", css)[:3])


def contrast(look: dict[str, str]) -> float:
    """WCAG contrast ratio of a text colour on its background."""

    def lum(color: tuple[float, ...]) -> float:
        linear = [c / 255 / 12.92 if c <= 10.3 else ((c / 255 + 0.055) / 1.055) ** 2.4
                  for c in color]  # fmt: skip
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((lum(rgb(look["color"])), lum(rgb(look["background"]))), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def digest(db: str, stories: list[dict[str, Any]], tmp_path: Path) -> Path:
    page = tmp_path / "digest" / "index.html"
    page.parent.mkdir()
    export(db, "html", page)
    return page


def assert_stories_shown(layout: dict[str, Any], stories: list[dict[str, Any]]) -> None:
    """Every story's title visible, in export order, with its other copies beneath it."""
    assert [s["title"] for s in layout["stories"]] == [s["title"] for s in stories]
    for shown, story in zip(layout["stories"], stories, strict=True):
        assert shown["visible"], shown["title"]
        assert shown["href"] == (story["url"] if story["url"].startswith("https://") else None)
        assert f"{len({a['outlet'] for a in story['articles']})} outlet" in shown["meta"]
        others = story["articles"][1:]
        assert len(shown["copies"]) == len(others)
        for copy, article in zip(shown["copies"], others, strict=True):
            assert article["outlet"] in copy["text"] and article["title"] in copy["text"]
            assert shown["titleBottom"] <= copy["top"] < copy["bottom"] <= shown["bottom"]


def test_digest_on_a_phone(browser: Browser, digest: Path, stories: list[dict[str, Any]]) -> None:
    """At 390 px the page fits the screen, every title shows, copies sit under their story."""
    seen = look(browser, digest, PHONE, mobile=True, dark=False)
    layout = seen.layout
    assert layout["innerWidth"] == PHONE[0]  # the viewport meta took effect
    assert layout["scrollWidth"] <= layout["innerWidth"]  # no sideways scrolling
    assert layout["body"]["px"] >= 16 and layout["meta"]["px"] >= 14
    assert all(s["look"]["px"] >= 18 for s in layout["stories"])
    assert_stories_shown(layout, stories)
    assert luminance(browser, seen.screenshot) > 0.7


def test_digest_on_a_desktop(browser: Browser, digest: Path, stories: list[dict[str, Any]]) -> None:
    """At 1280 px the stories sit in one centred column of readable width."""
    seen = look(browser, digest, DESKTOP, mobile=False, dark=False)
    layout = seen.layout
    left, right = layout["main"]
    assert right - left <= 800 and abs(left - (layout["clientWidth"] - right)) <= 1
    assert layout["scrollWidth"] <= layout["innerWidth"]
    assert_stories_shown(layout, stories)


def test_digest_follows_dark_mode(browser: Browser, digest: Path) -> None:
    """With a dark colour scheme the page turns dark and its text keeps its contrast."""
    dark = look(browser, digest, PHONE, mobile=True, dark=True)
    assert luminance(browser, dark.screenshot) < 0.2
    light = look(browser, digest, PHONE, mobile=True, dark=False)
    for seen in (light.layout, dark.layout):
        texts = [seen["body"], seen["meta"]]
        for story in seen["stories"]:
            texts += [story["look"], *(c["look"] for c in story["copies"])]
            texts += [story["summary"]] if story["summary"] else []
        assert min(contrast(t) for t in texts) >= 4.5


def test_digest_shows_markup_as_text(browser: Browser, digest: Path) -> None:
    """A title with <script> in it is shown as text and nothing on the page runs."""
    layout = look(browser, digest, PHONE, mobile=True, dark=False).layout
    assert layout["scripts"] == 0 and layout["pwned"] is None
    assert HOSTILE_TITLE in layout["text"]
    hostile = next(s for s in layout["stories"] if s["title"] == HOSTILE_TITLE)
    assert "Hostile <i>Times</i>" in layout["text"]
    assert all(not (c["href"] or "").startswith("javascript:") for c in hostile["copies"])


def test_digest_makes_no_network_request(browser: Browser, digest: Path) -> None:
    """Opening the page loads the file itself and nothing else."""
    seen = look(browser, digest, DESKTOP, mobile=False, dark=False)
    assert seen.requests == [digest.as_uri()]


def test_empty_digest_says_nothing_yet(browser: Browser, db: str, tmp_path: Path) -> None:
    """With no stories the page says so, and still fits a phone."""
    fill(db, [])
    page = tmp_path / "empty.html"
    export(db, "html", page)
    layout = look(browser, page, PHONE, mobile=True, dark=False).layout
    assert layout["stories"] == []
    assert "Nothing yet" in layout["text"]
    assert layout["scrollWidth"] <= layout["innerWidth"]
