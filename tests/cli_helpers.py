"""Drive the installed `newsfold` console script as a user does: a subprocess, a config, a store.

    ws = Workspace.create(tmp_path, feeds=[url], fetch={"timeout": 3})
    done = ws.run("run", "--all")           # CompletedProcess: returncode, stdout, stderr
    ws.feeds()                              # `feeds list --json`, by feed URL
    ws.export()                             # `export --format jsonl`, parsed
    ws.run_measured("run")                  # also wall time, peak RSS and PSS of its processes
    process = ws.start("run")               # a Popen, to kill or race; finish(process, timeout)
    normalised(ws.export())                 # what two runs must agree on

`Workspace.create(...).audited()` logs every connect() and getaddrinfo() of the
run's processes (`ws.connections()`), to prove an address was never dialled.

Every process gets its own XDG directories and none of the caller's NEWSFOLD_* variables, so the
config file and --db given here are the only settings in force. Processes start in a session of
their own: a test can kill a run together with its worker processes, and nothing outlives it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomlkit

NEWSFOLD = Path(sys.executable).with_name("newsfold")  # the console script of this environment
RUN_TIMEOUT = 120.0  # seconds: far beyond any run in the tests; a hang fails instead of blocking

Stories = frozenset[frozenset[str]]

# Loaded by every Python process of a run when `audit_connections` is on: each connect() and
# getaddrinfo() a newsfold process makes is appended to the file named by the variable.
_AUDIT_HOOK = """\
import os, sys

_LOG = os.environ.get("NEWSFOLD_TESTS_CONNECT_LOG")


def _audit(event, args):
    if event == "socket.connect":
        line = f"connect {args[1]!r}\\n"
    elif event == "socket.getaddrinfo":
        line = f"resolve {args[0]!r}\\n"
    else:
        return
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(line)


if _LOG:
    sys.addaudithook(_audit)
"""


def config_toml(feeds: Iterable[str], sections: Mapping[str, Mapping[str, Any]]) -> str:
    document: dict[str, Any] = dict(sections)
    if urls := [{"url": url} for url in feeds]:
        document["feeds"] = urls
    return tomlkit.dumps(document)


@dataclass
class Workspace:
    """A config file, a SQLite store and a home of their own for `newsfold` processes."""

    root: Path
    audit_connections: bool = False
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        root: Path,
        feeds: Iterable[str] = (),
        **sections: Mapping[str, Any],
    ) -> Workspace:
        """Write the config (`fetch={"timeout": 3}` becomes [fetch] timeout = 3) under `root`."""
        root.mkdir(parents=True, exist_ok=True)
        workspace = cls(root)
        workspace.write_config(feeds, **sections)
        return workspace

    def audited(self) -> Workspace:
        """This workspace, its processes' connect() and getaddrinfo() calls logged."""
        return replace(self, audit_connections=True)

    @property
    def config(self) -> Path:
        return self.root / "newsfold.toml"

    @property
    def db(self) -> Path:
        return self.root / "newsfold.db"

    @property
    def connect_log(self) -> Path:
        return self.root / "connections.log"

    def write_config(self, feeds: Iterable[str] = (), **sections: Mapping[str, Any]) -> None:
        self.config.write_text(config_toml(feeds, sections), encoding="utf-8")

    def command(self, *args: str) -> list[str]:
        return [str(NEWSFOLD), "--config", str(self.config), "--db", str(self.db), *args]

    def process_env(self) -> dict[str, str]:
        # The command sees only the width a test gives it: not that of the terminal (or of the
        # test runner's workers, which set COLUMNS and LINES) the tests were started from.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("NEWSFOLD_") and k not in ("COLUMNS", "LINES")
        }
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
            env[name] = str(self.root / "xdg" / name.lower())
        if self.audit_connections:
            hook_dir = self.root / "audit"
            hook_dir.mkdir(exist_ok=True)
            (hook_dir / "sitecustomize.py").write_text(_AUDIT_HOOK, encoding="utf-8")
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(hook_dir), env.get("PYTHONPATH")])
            )
            env["NEWSFOLD_TESTS_CONNECT_LOG"] = str(self.connect_log)
        return {**env, **self.env}

    def start(self, *args: str, output: Path | None = None) -> subprocess.Popen[str]:
        """Start `newsfold ARGS` without waiting; stdout and stderr are pipes, or the files
        `output`.out and `output`.err."""
        with contextlib.ExitStack() as files:
            out: Any = subprocess.PIPE
            err: Any = subprocess.PIPE
            if output is not None:
                out = files.enter_context(output.with_suffix(".out").open("w"))
                err = files.enter_context(output.with_suffix(".err").open("w"))
            return subprocess.Popen(
                self.command(*args),
                env=self.process_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )

    def run(self, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run `newsfold ARGS` to its end and return what it printed and its exit code."""
        process = self.start(*args)
        return finish(process, timeout)

    def run_measured(self, *args: str, timeout: float = RUN_TIMEOUT) -> Measured:
        """Run `newsfold ARGS`; also its wall time and peak resident memory."""
        output = self.root / "measured"
        started = time.monotonic()
        process = self.start(*args, output=output)
        try:
            peak_process, peak_total = wait_measuring(process, timeout)
        finally:
            kill_session(process)
        seconds = time.monotonic() - started
        done = subprocess.CompletedProcess(
            process.args,
            process.returncode,
            output.with_suffix(".out").read_text(encoding="utf-8"),
            output.with_suffix(".err").read_text(encoding="utf-8"),
        )
        return Measured(done, seconds, peak_process, peak_total)

    def ok(self, *args: str) -> str:
        """Run `newsfold ARGS`, which must exit 0; its stdout."""
        done = self.run(*args)
        assert done.returncode == 0, f"newsfold {' '.join(args)}: {done.stderr}"
        return done.stdout

    def feeds(self) -> dict[str, dict[str, Any]]:
        """`feeds list --json`, each feed's object by its URL."""
        return {feed["url"]: feed for feed in json.loads(self.ok("feeds", "list", "--json"))}

    def export(self) -> list[dict[str, Any]]:
        """`export --format jsonl`: one object per story."""
        return [json.loads(line) for line in self.ok("export", "--format", "jsonl").splitlines()]

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.ok("stats", "--json"))
        return result

    def connections(self) -> list[str]:
        """Every connect/resolve line the audited processes logged ("connect ('10.0.0.1', 80)")."""
        if not self.connect_log.exists():
            return []
        return self.connect_log.read_text(encoding="utf-8").splitlines()


@dataclass(frozen=True)
class Measured:
    done: subprocess.CompletedProcess[str]
    seconds: float
    peak_rss: int  # bytes: the largest resident set of the run or any worker it waited for
    peak_total_pss: int  # bytes: the most its processes held together (PSS), sampled every 50 ms


def finish(process: subprocess.Popen[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Wait for `process`; past `timeout` its whole session is killed and the test fails."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(process)
        stdout, stderr = process.communicate()
        raise AssertionError(f"newsfold did not finish within {timeout} s: {stderr}") from None
    finally:
        kill_session(process)  # workers a killed run left behind, if any
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def wait_measuring(process: subprocess.Popen[str], timeout: float) -> tuple[int, int]:
    """Reap `process` with wait4: the peak RSS of its largest process (itself or a worker it
    reaped, from the kernel) and the peak PSS of all its processes together (sampled), in bytes."""
    deadline = time.monotonic() + timeout
    peak_total = 0
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return int(usage.ru_maxrss) * 1024, peak_total
        peak_total = max(peak_total, sum(map(proportional_bytes, live_processes(process.pid))))
        time.sleep(0.05)
    kill_session(process)
    raise AssertionError(f"newsfold did not finish within {timeout} s")


def live_processes(group: int) -> list[int]:
    """The processes of process group `group` that have not exited (zombies are not counted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def proportional_bytes(pid: int) -> int:
    """The process's proportional set size: its resident pages, each page shared with the fork
    server or another worker counted in parts, so the sum over processes is the memory used."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # gone meanwhile
        return 0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def kill_session(process: subprocess.Popen[str]) -> None:
    """SIGKILL every process left in the session `process` leads (it and its workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]")


def run_in_terminal(ws: Workspace, *args: str, columns: int = 80) -> tuple[int, str]:
    """Run `newsfold ARGS` with stdout and stderr on a pseudo-terminal `columns` wide (its
    window size, as a terminal emulator sets it; no COLUMNS variable); exit code and output,
    colours taken out."""
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**ws.process_env(), "TERM": "xterm"}
    env.pop("COLUMNS", None)
    process = subprocess.Popen(
        ws.command(*args),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=sub,
        stderr=sub,
        start_new_session=True,
        text=True,
    )
    os.close(sub)
    chunks: list[bytes] = []
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: every process holding the terminal has gone
                break
            if not data:
                break
            chunks.append(data)
        code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        kill_session(process)
        os.close(main)
    # A terminal's line ends are CRLF; each redraw of a progress bar starts at a carriage return:
    # one line per frame.
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return code, text.replace("\r\n", "\n").replace("\r", "\n")


def stderr_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return done.stderr.splitlines()


def line_about(done: subprocess.CompletedProcess[str], url: str) -> list[str]:
    """The stderr lines of a run that report a failure of `url`."""
    return [line for line in stderr_lines(done) if line.startswith(f"newsfold: {url}: ")]


def normalised(export: Iterable[Mapping[str, Any]]) -> tuple[Stories, frozenset[str], int]:
    """What two runs must agree on: each story's member URLs, the article URLs, and the number
    of article rows (a URL stored twice counts twice)."""
    stories = frozenset(frozenset(a["url"] for a in story["articles"]) for story in export)
    urls = [a["url"] for story in export for a in story["articles"]]
    return stories, frozenset(urls), len(urls)
