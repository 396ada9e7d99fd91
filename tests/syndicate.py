"""Syndicated copies, templated trap stories and outlet pages: test data for dedup.

Everything here is deterministic for a given seed, so tests, end-to-end runs and benchmarks see
the same texts:

- `syndicate(original, rng, n)`: copies of a wire story as outlets republish it (new headline,
  cut after a few paragraphs, editor's note, dateline and credit line changed, a paragraph
  dropped, numbers corrected, an updated version with new paragraphs, page chrome leaking into
  the text).
- `trap_stories(seed)`: families of templated stories (market wraps, weather, football results,
  earthquake reports, lottery draws, earnings) that share most wording but not their facts.
- `live_series(rng)`: live-update posts ("The Latest: ..."), each a new timestamped item over
  the same running background; `short_posts(rng)`: photo-set posts of a few sentences that
  share a blog's wording, and short briefs republished as they are.
- `outlet_page(doc)`: a text wrapped in one of a few outlet page templates (nav, footer,
  canonical link, og tags, published time), plain HTML without external assets;
  `outlet_feed(outlet, docs)`: an RSS 2.0 feed linking to such pages.
- `labelled_docs(seed)`: the dedup evaluation set built from the corpus (see `labelled_docs`),
  and `score(...)`: adjusted Rand index, pairwise precision/recall/F1, hard-negative and trap
  merges of a clustering of it.
"""

from __future__ import annotations

import html
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import combinations
from math import comb

from newsfold.cluster import Linkage, Placed, regroup
from newsfold.config import DedupSettings
from newsfold.dedup import Fingerprint, band_keys, compare
from newsfold.errors import ExtractError
from newsfold.extract import extract_page
from tests.textmetrics import CORPUS, corpus_pages

BASE_TIME = datetime(2026, 2, 17, 6, 0, tzinfo=UTC)
MIN_WORDS_KEPT = 50  # a truncated copy keeps at least this many words


@dataclass(frozen=True, slots=True)
class Outlet:
    """A publisher: where a copy appears and which page template it uses."""

    name: str
    host: str
    layout: str  # "daily" | "wire" | "magazine" | "portal"
    chrome: tuple[str, ...]  # lines of page furniture that leak into extracted text


OUTLETS: tuple[Outlet, ...] = (
    Outlet("Wire Service", "wire.example", "wire", ("© Wire Service. All rights reserved.",)),
    Outlet(
        "The Daily Ledger",
        "dailyledger.example",
        "daily",
        (
            "Sign up for our newsletter to get the day's top stories in your inbox every morning.",
            "Advertisement",
        ),
    ),
    Outlet(
        "Metro Courier",
        "metrocourier.example",
        "portal",
        (
            "We use cookies to improve your experience on our site. By continuing to browse you "
            "agree to our use of cookies. Accept all cookies",
            "Share this article: Facebook Twitter WhatsApp Email",
        ),
    ),
    Outlet(
        "Northern Times",
        "northerntimes.example",
        "magazine",
        (
            "Support independent journalism. Subscribe today for full access to our reporting.",
            "Read more from Northern Times",
        ),
    ),
    Outlet(
        "Harbour Post",
        "harbourpost.example",
        "daily",
        ("Get breaking news alerts straight to your phone with the Harbour Post app.",),
    ),
    Outlet(
        "Valley Gazette",
        "valleygazette.example",
        "portal",
        ("This content is not available in your region. Manage cookie settings",),
    ),
    Outlet(
        "City Observer",
        "cityobserver.example",
        "magazine",
        ("Listen to this article", "Follow City Observer on social media for more updates."),
    ),
    Outlet("Globe Digest", "globedigest.example", "wire", ("Trending now",)),
)
WIRE = OUTLETS[0]


@dataclass(frozen=True, slots=True)
class Doc:
    """One article of the evaluation set: its text and the story it belongs to."""

    id: str
    story: str  # docs with the same story are copies and should fold
    title: str
    text: str
    outlet: Outlet
    published: datetime
    kind: str  # how it was made: "corpus", "original", "copy:truncate+chrome", "trap:weather", ...
    negatives: str | None = None  # docs sharing this label are hard negatives (same event)

    @property
    def url(self) -> str:
        slug = self.id.removeprefix("articles/").replace(".html.gz", "").replace("/", "-")
        return f"https://{self.outlet.host}/news/{slug}"


# --- syndicated copies ----------------------------------------------------------------------

_DATELINES = (
    ("PARIS", "Paris, France"),
    ("LONDON", "London, United Kingdom"),
    ("WASHINGTON", "Washington, D.C."),
    ("NAIROBI", "Nairobi, Kenya"),
    ("SYDNEY", "Sydney, Australia"),
    ("BERLIN", "Berlin, Germany"),
)
_AGENCIES = ("AFP", "AP", "Reuters")
_CREDITS = (
    "This story was originally published by {agency}.",
    "Reporting by {agency} staff; editing by the world desk.",
    "Copyright {agency}. All rights reserved.",
    "(With reporting from {agency})",
)
_EDITOR_NOTES = (
    "Editor's note: This story has been updated to include comments from officials.",
    "Editor's note: An earlier version of this article misstated a title. It has been corrected.",
    "This article is republished from a wire service. It has been edited for length and style.",
    "Editor's note: This is a developing story and will be updated as more details emerge.",
)
_HEADLINE_FORMS = (
    "{title}",
    "WATCH: {title}",
    "{title} - report",
    "What we know: {title}",
    "{title} | {outlet}",
    "Update: {title}",
)
_FIRST_NAMES = (
    "Amina", "Carlos", "Elena", "Hiroshi", "Ingrid", "Kwame", "Leila", "Mateo", "Nadia", "Oskar",
    "Priya", "Rafael", "Sofia", "Tomasz", "Yusuf", "Zara", "Jonas", "Mei", "Andre", "Freya",
)  # fmt: skip
_LAST_NAMES = (
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Kowalski", "Fernandes", "Novak",
    "Mensah", "Castillo", "Brennan", "Varga", "Sato", "Delgado", "Petrov", "Aziz", "Holm",
)  # fmt: skip
_BODIES = (
    "Interior Ministry", "Red Cross", "World Health Organization", "national police",
    "regional government", "Finance Ministry", "coast guard", "United Nations", "fire service",
)  # fmt: skip
_RELATED_HEADLINES = (
    "Floods force thousands from their homes in the north",
    "Central Bank of Ruritania holds rates steady for a third month",
    "Opposition leader Marta Quist calls for early elections",
    "Scientists in Geneva unveil a faster particle detector",
    "Five things to watch in the Champions League this week",
    "Teachers in Lagos strike over unpaid wages",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_UPDATE_SENTENCES = (
    "{name}, a spokesperson for the {body}, told reporters on {day} that {n} more people had "
    "been questioned and that a full report would follow within {m} days.",
    "Late on {day}, the {body} said it had received {n} further requests for assistance and "
    "had sent {m} additional teams to the area, according to {name}.",
    "In a statement released on {day}, {name} of the {body} said the figure could rise to {n} "
    "as more information became available from at least {m} districts.",
    "The {body} confirmed on {day} that talks with {name} had resumed after a pause of {m} "
    "hours, and that {n} observers would attend the next session.",
)


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"


def _update_paragraph(rng: random.Random) -> str:
    sentences = rng.sample(_UPDATE_SENTENCES, 2)
    return " ".join(
        s.format(
            name=_name(rng),
            body=rng.choice(_BODIES),
            day=rng.choice(_WEEKDAYS),
            n=rng.randint(3, 480),
            m=rng.randint(2, 36),
        )
        for s in sentences
    )


def paragraphs(text: str) -> list[str]:
    """The non-empty lines of a text: its paragraphs."""
    return [line.strip() for line in text.splitlines() if line.strip()]


# Each transform takes (paragraphs, title, outlet, rng) and returns (paragraphs, title).
Edit = tuple[list[str], str]
Transform = Callable[[list[str], str, Outlet, random.Random], Edit]


def _new_headline(paras: list[str], title: str, outlet: Outlet, rng: random.Random) -> Edit:
    form = rng.choice(_HEADLINE_FORMS)
    words = title.split()
    if len(words) > 6 and rng.random() < 0.5:  # some desks rewrite the headline shorter
        title = " ".join(words[: rng.randint(4, len(words) - 1)])
    return paras, form.format(title=title, outlet=outlet.name)


def _truncate(paras: list[str], title: str, outlet: Outlet, rng: random.Random) -> Edit:
    keep, words = rng.randint(2, 5), 0
    for count, para in enumerate(paras, 1):
        words += len(para.split())
        if count >= keep and words >= MIN_WORDS_KEPT:
            return paras[:count], title
    return paras, title


def _editor_note(paras: list[str], title: str, outlet: Outlet, rng: random.Random) -> Edit:
    note = rng.choice(_EDITOR_NOTES)
    return ([note, *paras] if rng.random() < 0.5 else [*paras, note]), title


def _dateline(paras: list[str], title: str, outlet: Outlet, rng: random.Random) -> Edit:
    wire_form, local_form = rng.choice(_DATELINES)
    if rng.random() < 0.5:
        lead = f"{wire_form} ({rng.choice(_AGENCIES)}) — {paras[0]}"
    else:
        lead = f"{local_form} — {paras[0]}"
    credit = rng.choice(_CREDITS).format(agency=rng.choice(_AGENCIES))
    return [lead, *paras[1:], credit], title


def _drop_paragraph(paras: list[str], title: str, outlet: Outlet, rng: random.Random) -> Edit:
    if len(paras) < 3:
        return paras, title
    drop = rng.randrange(1, len(paras))
    return paras[:drop] + paras[drop + 1 :], title


def _add_paragraphs(paras: list[str], rng: random.Random) -> list[str]:
    """An updated version: one to three new paragraphs on top, second or at the end."""
    new = [_update_paragraph(rng) for _ in range(rng.randint(1, 3))]
    where = rng.choice(("top", "second", "end"))
    if where == "top":
        return [*new, *paras]
    if where == "second":
        return [paras[0], *new, *paras[1:]]
    return [*paras, *new]


_NUMBER = re.compile(r"\b\d+\b")


def _correct(paras: list[str], title: str, outlet: Outlet, rng: random.Random) -> Edit:
    """The corrected version: one or two of the story's numbers changed, the rest as it was.

    The wire corrects a story once, so every copy of one text that carries the correction
    carries the same one (drawn from the text itself, not from `rng`).
    """
    found = [(i, m) for i, para in enumerate(paras) for m in _NUMBER.finditer(para)]
    rng = random.Random("\n".join(paras))
    chosen = rng.sample(found, min(len(found), rng.randint(1, 2)))
    out = list(paras)
    for i, match in sorted(chosen, key=lambda c: (c[0], c[1].start()), reverse=True):
        value = int(match.group()) + rng.randint(1, 9)
        out[i] = out[i][: match.start()] + str(value) + out[i][match.end() :]
    return out, title


def _chrome(paras: list[str], title: str, outlet: Outlet, rng: random.Random) -> Edit:
    related = f"Related: {rng.choice(_RELATED_HEADLINES)}"
    furniture = [*outlet.chrome, related]
    out = list(paras)
    for line in furniture:
        out.insert(rng.randint(1, len(out)), line)
    return out, title


# In the order a copy goes through them: a correction is made to the whole text, the dateline
# lands on the story's first paragraph, an editor's note and page chrome come last.
TRANSFORMS: dict[str, Transform] = {
    "correct": _correct,
    "headline": _new_headline,
    "truncate": _truncate,
    "dateline": _dateline,
    "drop": _drop_paragraph,
    "note": _editor_note,
    "chrome": _chrome,
}


def syndicate(original: Doc, rng: random.Random, copies: int) -> list[Doc]:
    """Republished versions of `original`: sometimes an updated version, then `copies` copies.

    The updated version (two stories in five) adds one to three paragraphs, as a wire service
    does when news breaks further; each copy starts from the original or the updated version and
    applies one to three transforms. Outlets other than the original's are drawn at random;
    each version appears between five minutes and ten hours after the one it was made from.
    """
    outlets = [o for o in OUTLETS if o != original.outlet]
    bases = [original]
    made = []
    if rng.random() < 0.4:
        paras = _add_paragraphs(paragraphs(original.text), rng)
        update = _version(original, "u", paras, original.title, rng.choice(outlets), rng, "update")
        bases.append(update)
        made.append(update)
    names = list(TRANSFORMS)
    for i in range(copies):
        base = rng.choice(bases)
        chosen = sorted(rng.sample(names, rng.randint(1, 3)), key=names.index)
        outlet = rng.choice(outlets)
        paras, title = paragraphs(base.text), base.title
        for name in chosen:
            paras, title = TRANSFORMS[name](paras, title, outlet, rng)
        kind = "copy:" + "+".join(chosen) + ("/update" if base is not original else "")
        made.append(_version(base, f"c{i}", paras, title, outlet, rng, kind))
    return made


def _version(
    base: Doc,
    suffix: str,
    paras: list[str],
    title: str,
    outlet: Outlet,
    rng: random.Random,
    kind: str,
) -> Doc:
    return replace(
        base,
        id=f"{base.id}-{suffix}",
        title=title,
        text="\n\n".join(paras),
        outlet=outlet,
        published=base.published + timedelta(minutes=rng.randint(5, 600)),
        kind=kind,
    )


# --- templated traps -------------------------------------------------------------------------


def _pct(rng: random.Random, low: float = 0.1, high: float = 2.5) -> str:
    return f"{rng.uniform(low, high):.2f}"


def _market_wrap(rng: random.Random) -> tuple[str, str]:
    up = rng.random() < 0.5
    move, gain = ("rose", "gained") if up else ("fell", "lost")
    companies = rng.sample(
        ["Norvex", "Helio Systems", "Brightwell", "Castor Foods", "Quanta Motors", "Lumen Retail",
         "Atlas Mining", "Corvid Pharma", "Pinecrest Bank", "Tidewater Energy"], 3
    )  # fmt: skip
    day, prev = rng.sample(_WEEKDAYS[:5], 2)
    driver = rng.choice(
        ["fresh inflation data", "comments from central bankers", "a slide in oil prices",
         "quarterly results from big technology companies", "jobs figures"]
    )  # fmt: skip
    title = f"Stocks {move} on {day} as investors weigh {driver}"
    text = f"""NEW YORK (Wire) — U.S. stocks {move} on {day} as investors weighed {driver}. The Dow Jones Industrial Average {move} {rng.randint(20, 700)} points, or {_pct(rng)}%, to {rng.randint(33000, 41000):,}.{rng.randint(10, 99)}, the S&P 500 {gain} {_pct(rng)}% to {rng.randint(4300, 5600):,}.{rng.randint(10, 99)} and the Nasdaq Composite {gain} {_pct(rng)}% to {rng.randint(13000, 17500):,}.{rng.randint(10, 99)}.

Volume on U.S. exchanges was {rng.uniform(9, 14):.1f} billion shares, compared with the {rng.uniform(10, 13):.1f} billion average for the full session over the last 20 trading days.

Shares of {companies[0]} moved {_pct(rng, 2, 12)}% after the company reported results for its latest quarter, while {companies[1]} moved {_pct(rng, 1, 8)}% and {companies[2]} moved {_pct(rng, 1, 6)}%.

The yield on the benchmark 10-year Treasury note moved to {_pct(rng, 3.5, 4.9)}% from {_pct(rng, 3.5, 4.9)}% late on {prev}. The dollar index moved {_pct(rng, 0.1, 0.9)}%, and gold moved to ${rng.randint(1900, 2500):,} an ounce.

Advancing issues outnumbered decliners on the NYSE by a {_pct(rng, 1, 3)}-to-1 ratio; on the Nasdaq, a {_pct(rng, 1, 3)}-to-1 ratio favored advancers. The S&P 500 posted {rng.randint(2, 60)} new 52-week highs and {rng.randint(1, 30)} new lows.

The S&P 500 is a market-capitalisation-weighted index of 500 leading publicly traded companies in the United States and is widely regarded as the best single gauge of large-cap U.S. equities. Market data is provided by exchanges and may be delayed by at least 15 minutes.

Investors will be watching closely for further signals on the path of interest rates, corporate earnings and the health of the consumer in the days ahead. Analysts cautioned that trading could remain choppy as markets digest the latest economic data and what it means for the outlook."""  # noqa: E501
    return title, text


def _weather(rng: random.Random) -> tuple[str, str]:
    city = rng.choice(["Leeds", "Bristol", "Glasgow", "Cardiff", "Norwich", "York", "Belfast"])
    day = rng.choice(_WEEKDAYS)
    sky = rng.choice(["sunny spells", "heavy showers", "persistent rain", "thick fog", "snow"])
    high, low = rng.randint(2, 29), rng.randint(-6, 14)
    title = f"{city} weather: {sky} expected on {day} with highs of {high}C"
    text = f"""Forecasters expect {sky} across {city} on {day}, with temperatures reaching a high of {high}C in the afternoon and falling to {low}C overnight.

Winds will blow from the {rng.choice(["north", "south", "east", "west"])} at {rng.randint(5, 60)} km/h, with gusts of up to {rng.randint(40, 110)} km/h possible near the coast. The chance of rain stands at {rng.randint(0, 100)} per cent, and humidity will sit at around {rng.randint(40, 98)} per cent.

The Met Office said a {rng.choice(["yellow", "amber"])} warning would remain in place until {rng.randint(1, 12)}pm. Sunrise is at {rng.randint(5, 8)}:{rng.randint(10, 59)} and sunset at {rng.randint(16, 21)}:{rng.randint(10, 59)}.

Residents are advised to check the latest forecast before travelling, to allow extra time for journeys, and to follow the advice of local authorities. Forecasts are updated several times a day and conditions can change quickly, especially in exposed and upland areas.

The outlook for the rest of the week suggests {rng.choice(["drier", "milder", "colder", "unsettled"])} conditions, with temperatures around {rng.randint(1, 25)}C by the weekend."""  # noqa: E501
    return title, text


_SIDES = ("Rovers", "United", "Athletic")


def _football(rng: random.Random) -> tuple[str, str]:
    towns = ("Kingsbridge", "Ashford", "Millbrook", "Eastleigh", "Redcastle")
    home, away = rng.sample([f"{t} {side}" for t in towns for side in _SIDES], 2)
    hg, ag = rng.randint(0, 5), rng.randint(0, 4)
    scorers = [_name(rng) for _ in range(3)]
    title = f"{home} {hg}-{ag} {away}: match report"
    text = f"""{home} and {away} met in front of {rng.randint(8000, 52000):,} supporters on {rng.choice(_WEEKDAYS)}, and the final score was {home} {hg}, {away} {ag}.

{scorers[0]} opened the scoring in the {rng.randint(3, 40)}th minute, and {scorers[1]} found the net in the {rng.randint(41, 75)}th minute. {scorers[2]} was shown a yellow card in the {rng.randint(20, 89)}th minute.

{home} had {rng.randint(35, 70)} per cent of possession and {rng.randint(4, 22)} shots, {rng.randint(1, 10)} of them on target, while {away} managed {rng.randint(2, 15)} shots.

The result leaves {home} in {rng.randint(1, 20)}th place in the table with {rng.randint(10, 70)} points, while {away} sit in {rng.randint(1, 20)}th place with {rng.randint(10, 70)} points.

Both managers will now turn their attention to the next round of fixtures. Full match statistics, player ratings and highlights are available on our live scores page, which is updated throughout every game of the season.

Tickets for upcoming home matches are available from the club's official website and ticket office. Supporters are reminded that bags may be searched on entry and that the stadium operates a strict no-smoking policy in all areas."""  # noqa: E501
    return title, text


def _quake(rng: random.Random) -> tuple[str, str]:
    place = rng.choice(
        ["Hokkaido, Japan", "Sumatra, Indonesia", "Valparaiso, Chile", "Crete, Greece",
         "Oaxaca, Mexico", "Luzon, Philippines", "Kermadec Islands, New Zealand"]
    )  # fmt: skip
    mag = f"{rng.uniform(4.5, 7.8):.1f}"
    title = f"Magnitude {mag} earthquake strikes near {place}"
    text = f"""A magnitude {mag} earthquake struck near {place} on {rng.choice(_WEEKDAYS)}, the United States Geological Survey said.

The quake hit at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} local time at a depth of {rng.randint(5, 300)} kilometres, about {rng.randint(10, 250)} kilometres from the nearest town, according to the USGS.

There were no immediate reports of damage or casualties. The Pacific Tsunami Warning Center said there was no tsunami threat from the quake.

Earthquakes of this size are common in the region, which lies on the Pacific Ring of Fire, an arc of volcanoes and fault lines around the Pacific Basin where tectonic plates meet and most of the world's earthquakes occur.

Residents who felt the shaking are encouraged to report it to the USGS through its online questionnaire, which helps scientists map the intensity of the quake."""  # noqa: E501
    return title, text


def _lottery(rng: random.Random) -> tuple[str, str]:
    balls = sorted(rng.sample(range(1, 60), 6))
    bonus = rng.randint(1, 59)
    jackpot = rng.randint(2, 40)
    day = rng.choice(["Wednesday", "Saturday"])
    numbers = ", ".join(str(b) for b in balls[:-1]) + f" and {balls[-1]}"
    title = f"Lotto results: winning numbers for {day}'s £{jackpot} million jackpot"
    text = f"""The winning Lotto numbers for {day}'s draw were {numbers}, and the bonus ball was {bonus}.

The jackpot for the draw stood at an estimated £{jackpot} million. Players who match all six main numbers win or share the jackpot, while matching five numbers and the bonus ball wins the second prize.

The draw also produced {rng.randint(0, 4)} jackpot winners and {rng.randint(1, 30)} winners of the second prize, according to the operator.

Players are reminded to check their tickets carefully. Prizes must be claimed within 180 days of the draw date, and tickets must be signed before a claim is made. Please play responsibly: set yourself a limit and stick to it.

The next draw takes place on {rng.choice(["Wednesday", "Saturday"])}, when the jackpot is estimated at £{rng.randint(2, 40)} million."""  # noqa: E501
    return title, text


def _earnings(rng: random.Random) -> tuple[str, str]:
    company = rng.choice(["Norvex", "Helio Systems", "Brightwell", "Castor Foods", "Quanta Motors"])
    quarter = rng.choice(["first", "second", "third", "fourth"])
    year = rng.choice([2024, 2025, 2026])
    revenue = f"{rng.uniform(1, 40):.2f}"
    title = f"{company} reports {quarter}-quarter revenue of ${revenue} billion"
    text = f"""{company} reported {quarter}-quarter revenue of ${revenue} billion on {rng.choice(_WEEKDAYS[:5])}, compared with ${rng.uniform(1, 40):.2f} billion a year earlier, as the company updated investors on its results for fiscal {year}.

Net income came in at ${rng.randint(50, 4000):,} million, or ${rng.uniform(0.1, 5):.2f} per share, against analysts' average estimate of ${rng.uniform(0.1, 5):.2f} per share, according to data compiled by the company.

The company said it expects revenue for the current quarter of between ${rng.uniform(1, 40):.1f} billion and ${rng.uniform(1, 40):.1f} billion. Its shares moved {_pct(rng, 1, 15)}% in extended trading.

Chief executive {_name(rng)} said in a statement that the results reflected continued demand across the company's main markets and disciplined cost control.

This article contains forward-looking statements that involve risks and uncertainties. Actual results may differ materially from those projected. Past performance is not a guarantee of future results."""  # noqa: E501
    return title, text


TRAP_FAMILIES: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "market": _market_wrap,
    "weather": _weather,
    "football": _football,
    "quake": _quake,
    "lottery": _lottery,
    "earnings": _earnings,
}


def trap_stories(seed: int = 7, per_family: int = 7) -> list[Doc]:
    """`per_family` different stories from each templated family: distinct stories all."""
    rng = random.Random(seed)
    docs = []
    for family, make in TRAP_FAMILIES.items():
        for i in range(per_family):
            title, text = make(rng)
            story = f"trap-{family}-{i}"
            docs.append(
                Doc(
                    id=story,
                    story=story,
                    title=title,
                    text=text,
                    outlet=WIRE,
                    published=BASE_TIME + timedelta(hours=rng.randint(0, 72)),
                    kind=f"trap:{family}",
                )
            )
    return docs


# --- running texts and short posts -----------------------------------------------------------

_LIVE_EVENTS = (
    (
        "wildfire in the Corran Hills",
        "The fire broke out on {day} afternoon in dry scrub above the village of Tellan and was "
        "driven east by gusts of up to {n1} km/h. It has since burned about {n2} hectares of "
        "forest and farmland, according to the Corran fire service.",
        "More than {n3} firefighters, supported by {n4} water-bombing aircraft, are working along "
        "a front of roughly {n5} kilometres. Authorities have ordered the evacuation of {n6} homes "
        "in Tellan, Brissac and the surrounding hamlets, and set up a shelter at the Marrow "
        "sports hall.",
        "The region has had almost no rain for {n7} weeks, and forecasters at the Halden weather "
        "office warned that hot, dry winds would continue until at least the weekend. Officials "
        "have asked residents not to use the hill roads, which are needed for fire engines.",
    ),
    (
        "storm Ysolde",
        "Storm Ysolde made landfall on the Vell coast early on {day} with sustained winds of "
        "{n1} km/h, bringing down trees and power lines across the Estuary and Dunmore "
        "districts. The Vell meteorological office had issued its highest warning {n2} hours "
        "earlier.",
        "About {n3} households were without electricity at the height of the storm, the grid "
        "operator Norlink said, and {n4} ferry crossings to the islands were cancelled. Schools "
        "in {n5} municipalities stayed closed.",
        "Emergency services received more than {n6} calls overnight, mostly about fallen trees "
        "and flooded cellars. The coastguard said {n7} people had been rescued from vehicles "
        "caught by rising water on the Saltmarsh road.",
    ),
    (
        "count in the Arlen regional election",
        "Polls closed at {n1} p.m. on {day} in the Arlen regional election, in which {n2} seats "
        "are contested and turnout was estimated at {n3} per cent by the Arlen electoral "
        "commission. Counting began at once in {n4} centres across the region.",
        "The governing Unity League, led by Premier Oren Balsky, is seeking a third term, while "
        "the opposition Green Compact under Maris Tovey has promised a vote on the future of the "
        "Kesh coal mine. Polls before the vote put the two parties within {n5} points.",
        "Under Arlen's rules a party needs {n6} seats for a majority. Postal votes, about {n7} per "
        "cent of the total, are counted from Monday, so close seats may not be decided for days.",
    ),
    (
        "rescue at the Dunvar mine",
        "A section of the Dunvar copper mine collapsed on {day} morning, trapping {n1} workers "
        "about {n2} metres below ground, the mine's operator Sorrel Metals said. Two other "
        "workers escaped through a ventilation shaft.",
        "Rescue teams from three regions are drilling a shaft of {n3} centimetres across to "
        "reach the chamber where the men are believed to be sheltering. Oxygen and water have "
        "been sent down through a borehole drilled {n4} hours after the collapse.",
        "The Dunvar mine employs about {n5} people and has been in operation since {n6}. "
        "Inspectors from the national mining authority last visited it {n7} months ago, "
        "according to records seen by local reporters.",
    ),
)
_LIVE_ITEMS = (
    "{name}, a spokesperson for the {body}, said at {place} that {n} more people had been "
    "moved to safety and that {m} crews would work through the night.",
    "The {body} said {n} people had been treated for minor injuries, {m} of them in {place}, "
    "and that none was in a serious condition, according to {name}.",
    "Officials in {place} opened a second centre for those forced from their homes, with room "
    "for {n} people; {name} of the {body} said {m} had arrived so far.",
    "{name} of the {body} told reporters in {place} that the next update would come in {m} "
    "hours and that {n} volunteers had registered to help.",
    "Roads into {place} reopened to residents, {name} said, but {n} streets remain closed and "
    "the {body} expects the work to take {m} days.",
)
_PLACES = ("Tellan", "Brissac", "Marrow", "Dunmore", "Kesh", "Saltmarsh", "Halden", "Orvik")
LIVE_SERIES = 4
LIVE_POSTS = (5, 8)  # posts per series


def live_series(rng: random.Random, series: int = LIVE_SERIES) -> list[Doc]:
    """Live-update posts: each a story of its own, "The Latest" over the same running text.

    A post is a new timestamped item on top of the running background paragraphs every post of
    the series repeats (with a paragraph more in the later posts).
    """
    docs = []
    for s, (event, *background) in enumerate(_LIVE_EVENTS[:series]):
        values = {f"n{i}": rng.randint(3, 900) for i in range(1, 8)}
        running = [p.format(day=rng.choice(_WEEKDAYS), **values) for p in background]
        start = BASE_TIME + timedelta(hours=rng.randint(0, 48))
        posts = rng.randint(*LIVE_POSTS)
        for k in range(posts):
            at = start + timedelta(minutes=35 * k + rng.randint(0, 20))
            item = rng.choice(_LIVE_ITEMS).format(
                name=_name(rng),
                body=rng.choice(_BODIES),
                place=rng.choice(_PLACES),
                n=rng.randint(3, 480),
                m=rng.randint(2, 36),
            )
            clock = f"{at:%I:%M} {'a.m.' if at.hour < 12 else 'p.m.'}"
            extra = [_update_paragraph(rng)] if k >= posts // 2 else []
            story = f"trap-live-{s}-{k}"
            docs.append(
                Doc(
                    id=story,
                    story=story,
                    title=f"The Latest on the {event} ({clock})",
                    text="\n\n".join([f"{clock}: {item}", *running[:2], *extra, *running[2:]]),
                    outlet=WIRE,
                    published=at,
                    kind="trap:live",
                )
            )
    return docs


_BLOGS = ("Riverside Lens", "Harbour Sketchbook", "Upland Pictures")
_PHOTO_SUBJECTS = (
    "Frost on the reeds by the old canal lock, just after sunrise.",
    "The harvest market in the square, from the stalls to the last cart home.",
    "Low cloud over the quarry and the wet slate of the cutting.",
    "Swifts over the church tower on the first warm evening of the year.",
    "Boats drawn up on the shingle while the tide is out.",
    "The night shift at the bakery, flour in the lamplight.",
    "Snow on the allotments and a robin on every fork handle.",
    "Kites over the dunes at the spring festival, seen from the pier.",
    "The last ferry of the season leaving the harbour in a gale.",
)
_PHOTO_WORDING = (
    "Another set from this week's walks. Click any picture to see it at full size, and scroll "
    "down for the rest of the set.",
    "Prints of every picture here can be ordered from the studio; get in touch through the "
    "contact page.",
)
_BRIEFS = (
    "Council workers will close the bridge on Mill Lane for {n} days from Monday while the deck "
    "is resurfaced, the council said. Buses will divert via the ring road.",
    "The library on Castle Street reopens on Saturday after a refit costing {n},000 pounds, with "
    "a new children's room and longer evening hours on weekdays.",
    "Police are appealing for witnesses after a van struck a lamp post on Quay Road at about "
    "{m}pm on Tuesday. Nobody was hurt, and the road reopened after {n} minutes.",
)


def short_posts(rng: random.Random) -> list[Doc]:
    """Texts of a few sentences: distinct photo sets posted by one blog (each its own story)
    and short news briefs, some republished unchanged under a new headline (one story)."""
    docs = []
    subjects = rng.sample(_PHOTO_SUBJECTS, len(_PHOTO_SUBJECTS))
    for b, blog in enumerate(_BLOGS):
        outlet = OUTLETS[1 + b]
        for part in range(1, 4):
            caption = subjects[(b * 3 + part - 1) % len(subjects)]
            story = f"trap-photo-{b}-{part}"
            docs.append(
                Doc(
                    id=story,
                    story=story,
                    title=f"{blog}: photo set {part}",
                    text="\n\n".join([caption, *_PHOTO_WORDING]),
                    outlet=outlet,
                    published=BASE_TIME + timedelta(hours=rng.randint(0, 72)),
                    kind="trap:photo",
                )
            )
    for i, brief in enumerate(_BRIEFS):
        text = brief.format(n=rng.randint(2, 40), m=rng.randint(1, 11))
        first = rng.choice(OUTLETS)
        original = Doc(
            id=f"brief-{i}",
            story=f"brief-{i}",
            title=" ".join(text.split()[:8]),
            text=text,
            outlet=first,
            published=BASE_TIME + timedelta(hours=rng.randint(0, 72)),
            kind="brief",
        )
        docs.append(original)
        for c in range(rng.randint(1, 2)):
            outlet = rng.choice([o for o in OUTLETS if o != first])
            edit = rng.choice(("headline", "dateline"))
            paras, title = TRANSFORMS[edit]([text], original.title, outlet, rng)
            docs.append(_version(original, f"c{c}", paras, title, outlet, rng, f"copy:{edit}"))
    return docs


# --- outlet pages ----------------------------------------------------------------------------

_NAV = ("World", "Business", "Politics", "Science", "Sport", "Culture", "Opinion")
_FOOTER = ("About", "Privacy", "Contact")


def outlet_page(doc: Doc) -> str:
    """`doc` as its outlet would serve it: a full HTML page in the outlet's layout."""
    esc = html.escape
    body = "\n".join(f"<p>{esc(p)}</p>" for p in paragraphs(doc.text))
    nav = "".join(f'<li><a href="/{s.lower()}">{s}</a></li>' for s in _NAV)
    related = "".join(
        f'<li><a href="/news/r{i}">{esc(h)}</a></li>' for i, h in enumerate(_RELATED_HEADLINES[:4])
    )
    head = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(doc.title)} | {esc(doc.outlet.name)}</title>
<link rel="canonical" href="{esc(doc.url)}">
<meta property="og:title" content="{esc(doc.title)}">
<meta property="og:url" content="{esc(doc.url)}">
<meta property="og:site_name" content="{esc(doc.outlet.name)}">
<meta property="og:type" content="article">
<meta property="article:published_time" content="{doc.published.isoformat()}">
</head>"""
    time_tag = f'<time datetime="{doc.published.isoformat()}">{doc.published:%d %B %Y %H:%M}</time>'
    article = f"<article><h1>{esc(doc.title)}</h1>{time_tag}\n{body}\n</article>"
    links = "".join(f"<li><a href='/{page.lower()}'>{page}</a></li>" for page in _FOOTER)
    footer = f"<footer><p>&copy; 2026 {esc(doc.outlet.name)}</p><ul>{links}</ul></footer>"
    layouts = {
        "wire": f"<body><header><b>{esc(doc.outlet.name)}</b></header><main>{article}</main>"
        f"{footer}</body>",
        "daily": f"<body><header><h2>{esc(doc.outlet.name)}</h2><nav><ul>{nav}</ul></nav></header>"
        f"<main>{article}</main><aside><h3>Most read</h3><ol>{related}</ol></aside>{footer}</body>",
        "magazine": f"<body><nav><ul>{nav}</ul></nav><div class='layout'><main>{article}"
        f"<section class='newsletter'><h3>Newsletter</h3><p>{esc(doc.outlet.chrome[0])}</p>"
        f"<form><input type='email'><button>Sign up</button></form></section></main>"
        f"<aside><h3>Related</h3><ul>{related}</ul></aside></div>{footer}</body>",
        "portal": f"<body><div id='cookie-banner'><p>We use cookies.</p><button>Accept</button>"
        f"</div><header><nav><ul>{nav}</ul></nav></header><div class='content'>{article}"
        f"<div class='share'>Share: Facebook Twitter Email</div></div><div class='more'>"
        f"<h3>More stories</h3><ul>{related}</ul></div>{footer}</body>",
    }
    return f"{head}\n{layouts[doc.outlet.layout]}\n</html>\n"


def outlet_feed(outlet: Outlet, docs: Sequence[Doc]) -> str:
    """An RSS 2.0 feed of `outlet` listing `docs` (newest first) with links to their pages."""
    esc = html.escape
    items = "".join(
        f"<item><title>{esc(d.title)}</title><link>{esc(d.url)}</link>"
        f'<guid isPermaLink="true">{esc(d.url)}</guid>'
        f"<pubDate>{format_datetime(d.published, usegmt=True)}</pubDate>"
        f"<description>{esc(paragraphs(d.text)[0] if d.text.strip() else '')}</description>"
        "</item>\n"
        for d in sorted(docs, key=lambda d: d.published, reverse=True)
    )
    channel = f"<title>{esc(outlet.name)}</title><link>https://{outlet.host}/</link>"
    rss = f'<rss version="2.0"><channel>{channel}\n{items}</channel></rss>\n'
    return '<?xml version="1.0" encoding="utf-8"?>\n' + rss


# --- the evaluation set ----------------------------------------------------------------------

RUNNING_SEED = 7919  # offsets the seed of the running texts and short posts
GROUPS_FILE = CORPUS / "syndication" / "article-groups.json"
MIN_WORDS_TO_SYNDICATE = 150


def corpus_texts() -> dict[str, str]:
    """The text of every corpus article page by its corpus path: the truth, else the text the
    extraction stage gets from the page ("" when it gets none)."""
    texts = {}
    for page in corpus_pages():
        key = str(page.path.relative_to(CORPUS))
        texts[key] = page.truth if page.truth else _extracted(page.body(), page.url)
    return texts


def _extracted(body: bytes, url: str) -> str:
    try:
        return extract_page(body, url=url, content_type=None).text
    except ExtractError:
        return ""


def labelled_docs(
    seed: int = 1, originals: int = 100, texts: dict[str, str] | None = None
) -> list[Doc]:
    """The dedup evaluation set, labelled with the story each doc belongs to.

    - corpus groups `near_identical_text` and `same_article_other_capture`: one story each;
    - corpus groups `same_event`: a story per page, marked as hard negatives of each other;
    - `originals` other corpus articles of at least 150 words, each with 2 to 4 syndicated copies
      (in one story of five the wire original itself is left out, so copies must find each other);
    - templated traps, a third of them with one or two syndicated copies;
    - every other corpus article as a story of its own;
    - live-update series, a third of their posts with one or two syndicated copies, and short
      posts (`live_series`, `short_posts`), drawn from a random generator of their own so that
      the docs above stay what they were.
    """
    rng = random.Random(seed)
    texts = corpus_texts() if texts is None else texts
    docs = _group_docs(texts, rng)
    grouped = {d.id for d in docs}
    rest = sorted(k for k in texts if k not in grouped and texts[k].strip())
    eligible = [k for k in rest if _long_enough(texts[k])]
    chosen = set(rng.sample(eligible, min(originals, len(eligible))))
    for key in rest:
        original = _corpus_doc(
            key, texts[key], key, rng, "corpus" if key not in chosen else "original"
        )
        if key not in chosen:
            docs.append(original)
            continue
        copies = syndicate(original, rng, rng.randint(2, 4))
        docs.extend(copies if rng.random() < 0.2 else [original, *copies])
    for trap in trap_stories(seed):
        docs.append(trap)
        if rng.random() < 1 / 3:
            docs.extend(syndicate(trap, rng, rng.randint(1, 2)))
    running = random.Random(seed + RUNNING_SEED)
    for post in live_series(running):
        docs.append(post)
        if running.random() < 1 / 3:
            docs.extend(syndicate(post, running, running.randint(1, 2)))
    return docs + short_posts(running)


def _long_enough(text: str) -> bool:
    return len(text.split()) >= MIN_WORDS_TO_SYNDICATE and len(paragraphs(text)) >= 4


def _group_docs(texts: dict[str, str], rng: random.Random) -> list[Doc]:
    groups = json.loads(GROUPS_FILE.read_text(encoding="utf-8"))["groups"]
    docs = []
    for group in groups:
        same_event = group["label"] == "same_event"
        for member in group["members"]:
            key = member["path"]
            story = key if same_event else group["group"]
            doc = _corpus_doc(key, texts[key], story, rng, f"group:{group['label']}")
            docs.append(replace(doc, negatives=group["group"] if same_event else None))
    return docs


def _corpus_doc(key: str, text: str, story: str, rng: random.Random, kind: str) -> Doc:
    first = paragraphs(text)[0] if text.strip() else key
    return Doc(
        id=key,
        story=story,
        title=" ".join(first.split()[:12]),
        text=text,
        outlet=WIRE if kind == "original" else rng.choice(OUTLETS),
        published=BASE_TIME + timedelta(minutes=rng.randint(0, 3 * 24 * 60)),
        kind=kind,
    )


# --- scoring ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Score:
    """How a clustering of the evaluation set compares with its labels."""

    docs: int
    stories: int
    clusters: int
    ari: float
    precision: float
    recall: float
    f1: float
    hard_negative_merges: int  # pairs of same-event docs put in one cluster
    trap_merges: int  # pairs of docs from different trap stories put in one cluster


def score(docs: Sequence[Doc], clusters: Sequence[object]) -> Score:
    """Pairwise precision/recall/F1 and adjusted Rand index of `clusters` (one label per doc)."""
    truth = [d.story for d in docs]
    both = Counter(zip(truth, clusters, strict=True))
    same_both = sum(comb(n, 2) for n in both.values())
    same_truth = sum(comb(n, 2) for n in Counter(truth).values())
    same_pred = sum(comb(n, 2) for n in Counter(clusters).values())
    precision = same_both / same_pred if same_pred else 1.0
    recall = same_both / same_truth if same_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    expected = same_truth * same_pred / comb(len(docs), 2)
    top = (same_truth + same_pred) / 2
    ari = (same_both - expected) / (top - expected) if top != expected else 1.0
    return Score(
        docs=len(docs),
        stories=len(set(truth)),
        clusters=len(set(clusters)),
        ari=ari,
        precision=precision,
        recall=recall,
        f1=f1,
        hard_negative_merges=_merged_pairs(docs, clusters, lambda d: d.negatives),
        trap_merges=_merged_pairs(
            docs, clusters, lambda d: "trap" if d.story.startswith("trap-") else None
        ),
    )


def edit_recall(docs: Sequence[Doc], clusters: Sequence[object]) -> dict[str, tuple[int, int]]:
    """Per edit a copy went through ("truncate", "update", ...): (same-story pairs with a doc
    so edited put in one cluster, such pairs)."""
    counts: dict[str, list[int]] = {}
    indexed = list(zip(docs, clusters, strict=True))
    for (a, cluster_a), (b, cluster_b) in combinations(indexed, 2):
        if a.story == b.story:
            for edit in _edits(a) | _edits(b):
                joined, total = counts.setdefault(edit, [0, 0])
                counts[edit] = [joined + (cluster_a == cluster_b), total + 1]
    return {edit: (joined, total) for edit, (joined, total) in sorted(counts.items())}


def _edits(doc: Doc) -> set[str]:
    if doc.kind == "update":
        return {"update"}
    if not doc.kind.startswith("copy:"):
        return set()
    made, _, base = doc.kind.removeprefix("copy:").partition("/")
    return set(made.split("+")) | ({base} if base else set())


def _merged_pairs(
    docs: Sequence[Doc], clusters: Sequence[object], family: Callable[[Doc], str | None]
) -> int:
    """Pairs of docs of one family but different stories that share a cluster."""
    by_cluster: dict[object, list[Doc]] = {}
    for doc, cluster in zip(docs, clusters, strict=True):
        if family(doc) is not None:
            by_cluster.setdefault(cluster, []).append(doc)
    return sum(
        1
        for members in by_cluster.values()
        for a, b in combinations(members, 2)
        if family(a) == family(b) and a.story != b.story
    )


@dataclass(frozen=True, slots=True)
class Folding:
    """The outcome of `fold`: each doc's story, and how many candidate pairs were verified."""

    stories: list[int]  # for each doc, a label of its story
    compared: int


def fold(
    docs: Sequence[Doc],
    fingerprints: Sequence[Fingerprint],
    settings: DedupSettings,
    linkage: Linkage = "average",
) -> Folding:
    """Cluster `docs` as the pipeline does: in order of publication, each doc looks up its LSH
    candidates among the docs before it and verifies them; the connected groups of those that
    fold join the doc's group, which `regroup` clusters afresh (merging and moving stories).
    """
    order = sorted(range(len(docs)), key=lambda i: (docs[i].published, docs[i].id))
    index: dict[int, list[int]] = {}
    story_of = [-1] * len(docs)
    group_of = list(range(len(docs)))
    groups: dict[int, list[int]] = {}
    stories = itertools.count()
    compared = 0
    for i in order:
        keys = band_keys(fingerprints[i], settings)
        candidates = sorted({j for key in keys for j in index.get(key, ())})
        compared += len(candidates)
        linked = sorted(
            {
                group_of[j]
                for j in candidates
                if compare(fingerprints[i], fingerprints[j], settings).folds
            }
        )
        members = [i, *(m for g in linked for m in groups.pop(g))]
        groups[i] = members
        for m in members:
            group_of[m] = i
        placed = [Placed(m, story_of[m] if m != i else None, fingerprints[m]) for m in members]
        for group in regroup(placed, settings, linkage):
            story = next(stories) if group.story is None else group.story
            for m in group.members:
                story_of[m] = story
        for key in keys:
            index.setdefault(key, []).append(i)
    return Folding(story_of, compared)
