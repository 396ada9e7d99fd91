"""Logging set-up: plain lines for people, JSON lines for log shippers; quiet off a TTY."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Between INFO and WARNING, as in syslog: normal but worth a line, such as a run's summary.
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        return json.dumps(data, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is at each record, not as it was at start: while a progress
    bar is shown, rich swaps in a stream that prints the line above the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def summary_wanted(verbosity: int) -> bool:
    """A run's one-line summary: on a terminal, or with -v; off a terminal (cron) a good run
    says nothing."""
    return verbosity > 0 or (verbosity == 0 and sys.stderr.isatty())


def configure(verbosity: int, log_format: str) -> None:
    """verbosity: -1 quiet (errors), 0 normal, 1 verbose, 2 debug."""
    level = {-1: logging.ERROR, 0: NOTICE, 1: logging.INFO}.get(
        max(-1, min(verbosity, 2)), logging.DEBUG
    )
    handler = StderrHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter("newsfold: %(message)s")
    )
    root = logging.getLogger("newsfold")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
