"""Shared by the end-to-end benchmarks: a corpus server in its own process, newsfold run as users
run it with its wall time, CPU and peak memory, py-spy profiles, and plain-text tables.

The server runs in a separate process, so its CPU never counts against newsfold's process tree;
it reports its own CPU time so a reader can see that it kept up. It listens on several loopback
addresses (127.0.0.1, 127.0.0.2, ...) because newsfold caps requests in flight per host: one
address for everything would measure that cap, not newsfold. That is why it is aiohttp (one
event loop serves every address) rather than tests/server.py, which binds 127.0.0.1 only; per
request both cost about 0.3 ms of server CPU, far below newsfold's own cost per request. Every
answer carries ETag and Last-Modified, honours If-None-Match / If-Modified-Since with a 304 (and
counts those), and is gzip-encoded for clients that accept it, as news sites do. Anything not
listed answers 404, robots.txt included (for newsfold: everything is allowed).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests package: corpus paths and feed media types

from tests.server import CORPUS as CORPUS  # noqa: E402
from tests.server import FEED_TYPES, corpus_files  # noqa: E402

STATS_PATH = "/_bench/stats"
SAMPLE_EVERY = 0.05  # seconds between two looks at a process tree's memory and CPU
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# The corpus server


@dataclass(frozen=True, slots=True)
class Route:
    """One URL's answer: a corpus file (``.gz`` ones are served decompressed) or given bytes."""

    path: str
    source: Path | bytes
    content_type: str
    host: int = 0  # index of the loopback address the URL names


def feed_route(path: str, file: Path, host: int = 0) -> Route:
    return Route(path, file, FEED_TYPES.get(file.suffix, "application/xml"), host)


def corpus_feeds() -> list[Path]:
    return corpus_files("feed")


def corpus_pages() -> list[Path]:
    return [file for file in corpus_files("article") if file.name.endswith(".gz")]


def loopback(index: int) -> str:
    """The index-th loopback address: 127.0.0.1, 127.0.0.2, ... (all of 127/8 is loopback)."""
    return f"127.0.{index // 254}.{index % 254 + 1}"


@dataclass(frozen=True, slots=True)
class ServerStats:
    """What the server answered since it started; subtract two to get one run's share."""

    requests: dict[str, int]  # by first path segment ("feeds", "robots.txt", ...)
    not_modified: dict[str, int]
    cpu_seconds: float

    def __sub__(self, other: ServerStats) -> ServerStats:
        return ServerStats(
            {k: v - other.requests.get(k, 0) for k, v in self.requests.items()},
            {k: v - other.not_modified.get(k, 0) for k, v in self.not_modified.items()},
            self.cpu_seconds - other.cpu_seconds,
        )


class CorpusServer:
    """A child process serving on `hosts` loopback addresses, one port each.

    with CorpusServer(hosts=20) as server:
        server.serve(routes)  # URLs are known before the routes are sent: server.url(route)
    """

    def __init__(self, hosts: int = 1) -> None:
        self.hosts = hosts
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_serve, args=(hosts, child_conn), daemon=True)
        self._bases: list[str] = []

    def __enter__(self) -> CorpusServer:
        self._process.start()
        self._bases = self._receive()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._process.terminate()
        self._process.join()

    def serve(self, routes: Sequence[Route]) -> None:
        """Start answering these routes (on every address); returns once they are served."""
        self._conn.send(list(routes))
        self._receive()

    def _receive(self) -> Any:
        if not self._conn.poll(300):
            raise RuntimeError("the corpus server does not answer")
        return self._conn.recv()

    @property
    def pid(self) -> int:
        return self._process.pid or 0

    def url(self, route: Route) -> str:
        return self._bases[route.host % self.hosts] + route.path

    def stats(self) -> ServerStats:
        with urllib.request.urlopen(self._bases[0] + STATS_PATH) as answer:
            data = json.load(answer)
        return ServerStats(data["requests"], data["not_modified"], data["cpu_seconds"])


@dataclass(frozen=True, slots=True)
class _Body:
    plain: bytes
    gzipped: bytes
    etag: str


def _load_bodies(routes: Sequence[Route]) -> dict[str, tuple[_Body, str]]:
    """path -> (body, content type); a file listed under many paths is read and kept once."""
    loaded: dict[Path | bytes, _Body] = {}
    table: dict[str, tuple[_Body, str]] = {}
    for number, route in enumerate(routes):
        body = loaded.get(route.source)
        if body is None:
            body = loaded[route.source] = _body(route.source, number)
        table[route.path] = (body, route.content_type)
    return table


def _body(source: Path | bytes, number: int) -> _Body:
    raw = source.read_bytes() if isinstance(source, Path) else source
    if isinstance(source, Path) and source.suffix == ".gz":
        return _Body(gzip.decompress(raw), raw, f'"{number}"')
    return _Body(raw, gzip.compress(raw, compresslevel=6, mtime=0), f'"{number}"')


def _serve(hosts: int, conn: Any) -> None:
    """The server process: bind every address, send the base URLs, take the routes, serve."""
    import asyncio
    import socket

    from aiohttp import web

    table: dict[str, tuple[_Body, str]] = {}
    last_modified = formatdate(time.time() - 3600, usegmt=True)
    requests: dict[str, int] = {}
    not_modified: dict[str, int] = {}

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": requests,
                "not_modified": not_modified,
                "cpu_seconds": time.process_time(),
            }
        )

    async def answer(request: web.Request) -> web.StreamResponse:
        kind = request.path.strip("/").split("/", 1)[0]
        requests[kind] = requests.get(kind, 0) + 1
        found = table.get(request.raw_path)
        if found is None:
            return web.Response(status=404, text="not found\n")
        body, content_type = found
        headers = {"ETag": body.etag, "Last-Modified": last_modified, "Vary": "Accept-Encoding"}
        if _is_fresh(request.headers, body.etag, last_modified):
            not_modified[kind] = not_modified.get(kind, 0) + 1
            return web.Response(status=304, headers=headers)
        payload = body.plain
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            payload = body.gzipped
        headers["Content-Type"] = content_type
        return web.Response(body=payload, headers=headers)

    async def main() -> None:
        app = web.Application()
        app.router.add_get(STATS_PATH, stats)
        app.router.add_get("/{tail:.*}", answer)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sockets = []
        for index in range(hosts):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((loopback(index), 0))
            sockets.append(sock)
        conn.send([f"http://{loopback(i)}:{s.getsockname()[1]}" for i, s in enumerate(sockets)])
        table.update(_load_bodies(conn.recv()))  # nothing is served before this
        for sock in sockets:
            await web.SockSite(runner, sock, backlog=1024).start()
        conn.send("ready")
        await asyncio.Event().wait()

    asyncio.run(main())


def _is_fresh(headers: Mapping[str, str], etag: str, last_modified: str) -> bool:
    """RFC 9110: If-None-Match decides when present, else If-Modified-Since (exact match)."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        return etag in {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return headers.get("If-Modified-Since") == last_modified


# ---------------------------------------------------------------------------------------------
# Measuring a process tree


@dataclass(slots=True)
class TreeUsage:
    """Peak memory and CPU of a process and its descendants, from /proc samples."""

    root_peak_rss: int = 0  # bytes: the root's own high-water mark (VmHWM, exact)
    tree_peak_rss: int = 0  # bytes: the most RSS the whole tree held at one sample
    other_peak_rss: int = 0  # bytes: the largest descendant's RSS at any sample
    root_cpu: float = 0.0  # seconds, user + system
    other_cpu: float = 0.0  # seconds, all descendants (last sample of each)
    descendants: int = 0  # processes seen below the root
    load: float = 0.0  # the machine's 1-minute load average when sampling stopped
    threads: dict[int, float] = field(default_factory=dict)  # thread id -> CPU s, if asked
    root: int = 0
    _cpu: dict[int, float] = field(default_factory=dict)
    _samples: Counter[int] = field(default_factory=Counter)
    _runnable: Counter[int] = field(default_factory=Counter)  # samples in state R, by pid

    def add_sample(self, root: int, tree: Sequence[int]) -> None:
        self.root = root
        total = 0
        for pid in tree:
            fields = _stat_fields(pid)
            if len(fields) < 22 or fields[0] == "Z":
                continue
            rss = int(fields[21]) * PAGE_SIZE
            total += rss
            self._cpu[pid] = _cpu_seconds(fields)
            self._samples[pid] += 1
            self._runnable[pid] += fields[0] == "R"
            if pid != root:
                self.other_peak_rss = max(self.other_peak_rss, rss)
        self.tree_peak_rss = max(self.tree_peak_rss, total)
        self.root_peak_rss = max(self.root_peak_rss, _high_water_mark(root))
        self.root_cpu = self._cpu.get(root, 0.0)
        self.other_cpu = sum(cpu for pid, cpu in self._cpu.items() if pid != root)
        self.descendants = len(self._cpu) - (root in self._cpu)

    def busiest(self, count: int) -> list[tuple[float, float]]:
        """(CPU s, share of its samples runnable) of the `count` descendants with most CPU.

        A worker that is not runnable is waiting for work: extraction never waits on I/O.
        Runnable includes waiting for a CPU, so the share holds on a loaded machine too.
        """
        pids = sorted((p for p in self._cpu if p != self.root), key=self._cpu.__getitem__)
        pids = pids[-count:]
        return [(self._cpu[p], self._runnable[p] / self._samples[p]) for p in reversed(pids)]


class TreeSampler(threading.Thread):
    """Samples the tree under `root` until stopped; `usage` holds the result."""

    def __init__(self, root: int, *, threads: bool = False) -> None:
        super().__init__(daemon=True, name="tree-sampler")
        self.root = root
        self.threads = threads
        self.usage = TreeUsage()
        self._done = threading.Event()

    def run(self) -> None:
        while True:
            tree = [self.root, *self._descendants()]
            self.usage.add_sample(self.root, tree)
            if self.threads:
                self.usage.threads.update(_thread_cpu(tree))
            if self._done.wait(SAMPLE_EVERY):
                return

    def stop(self) -> TreeUsage:
        self._done.set()
        self.join()
        self.usage.load = os.getloadavg()[0]
        return self.usage

    def _descendants(self) -> Iterator[int]:
        children: dict[int, list[int]] = {}
        for pid, parent in _parents():
            children.setdefault(parent, []).append(pid)
        stack = [self.root]
        while stack:
            for child in children.get(stack.pop(), []):
                yield child
                stack.append(child)


def _parents() -> Iterator[tuple[int, int]]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                yield int(entry.name), int(fields[1])


def _stat_fields(pid: int) -> list[str]:
    return _stat_fields_of(f"/proc/{pid}/stat")


def _stat_fields_of(path: str) -> list[str]:
    """A /proc stat file after the command name: state, ppid, ... (empty when it is gone)."""
    try:
        with open(path, encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:
        return []


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _thread_cpu(pids: Sequence[int]) -> Iterator[tuple[int, float]]:
    for pid in pids:
        try:
            tids = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            fields = _stat_fields_of(f"/proc/{pid}/task/{tid}/stat")
            if len(fields) > 12:
                yield tid, _cpu_seconds(fields)


def _high_water_mark(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass(frozen=True, slots=True)
class Measured:
    """One command: its wall time, its tree's usage, what it printed."""

    wall: float
    usage: TreeUsage
    stdout: str
    stderr: str


def newsfold_command() -> list[str]:
    """The console script of the venv this benchmark runs in, as users call it."""
    script = Path(sys.executable).with_name("newsfold")
    return [str(script)] if script.exists() else [shutil.which("newsfold") or "newsfold"]


def run_measured(argv: Sequence[str], *, check: bool = True) -> Measured:
    """Run a command to its end, sampling its process tree; raises if it fails and `check`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env()
    )
    sampler = TreeSampler(process.pid)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    usage = sampler.stop()
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}... exited {process.returncode}: {stderr[-2000:]}")
    return Measured(wall, usage, stdout, stderr)


def _clean_env() -> dict[str, str]:
    """This environment without NEWSFOLD_* variables: the config file says everything."""
    return {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}


def run_in_process(fn: Callable[..., Any], *args: Any) -> tuple[Any, TreeUsage]:
    """fn(*args) in a fresh spawned process (and whatever it starts), sampled; its result."""
    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    process = context.Process(target=_call_and_send, args=(results, fn, *args))
    process.start()
    sampler = TreeSampler(process.pid or 0)
    sampler.start()
    result = results.get()
    process.join()
    return result, sampler.stop()


def _call_and_send(results: Any, fn: Callable[..., Any], *args: Any) -> None:
    results.put(fn(*args))


# ---------------------------------------------------------------------------------------------
# newsfold's config and store


def write_config(directory: Path, feed_urls: Sequence[str], **sections: dict[str, Any]) -> Path:
    """A config file: loopback allowed, the given section keys, the feeds listed."""
    sections = {**sections, "fetch": {"allow_private_networks": True, **sections.get("fetch", {})}}
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    lines += [f'[[feeds]]\nurl = "{url}"' for url in feed_urls]
    path = directory / "newsfold.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def newsfold_json(config: Path, db: Path, *args: str) -> Any:
    """A newsfold command's --json output (outside any timing)."""
    argv = [*newsfold_command(), "--config", str(config), "--db", str(db), *args, "--json"]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


# ---------------------------------------------------------------------------------------------
# Printing


def mb(size: int) -> str:
    return f"{size / 2**20:.0f} MB"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    sys.stdout.flush()


def machine_line() -> str:
    """What the numbers were measured on: the code's revision, the machine and its load."""
    git = ["git", "-C", str(REPO)]
    revision = subprocess.run([*git, "describe", "--always"], capture_output=True, text=True)
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
    ).stdout.split("\n")
    edits = sum(1 for line in changed if line.strip())
    return (
        f"newsfold {revision.stdout.strip()}"
        + (f" with {edits} uncommitted file(s) in src/" if edits else "")
        + f"; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        + f"load average {os.getloadavg()[0]:.1f} at start"
    )


# ---------------------------------------------------------------------------------------------
# Profiling

PROFILE_RATE = 100  # py-spy samples per second
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def profile_command(argv: Sequence[str], out: Path) -> tuple[float, dict[int, float]]:
    """Run a command under py-spy, every process and thread: (wall s, CPU s by thread id).

    py-spy keeps a sample only for the thread holding its process's GIL (--gil), so a thread's
    samples over the rate are the seconds it ran Python; the CPU seconds, read from /proc,
    also count C code that runs without the GIL (SQLite, zlib, the socket calls). Raw output:
    one line per distinct stack, "process ...;thread (id): name;frame;...;frame count".
    """
    spy = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses"]
    spy += ["--threads", "--gil", "--rate", str(PROFILE_RATE), "--format", "raw"]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*spy, "--output", str(out), "--", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_clean_env(),
    )
    sampler = TreeSampler(process.pid, threads=True)
    sampler.start()
    _, stderr = process.communicate()
    wall = time.perf_counter() - started
    usage = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"py-spy exited {process.returncode}: {stderr[-2000:]!r}")
    return wall, usage.threads


@dataclass(frozen=True, slots=True)
class ThreadKey:
    process: str  # "main", "forkserver", "worker <pid>"
    name: str
    tid: int


@dataclass(slots=True)
class Profile:
    """GIL-holding samples of one profiled run, by thread and by frame."""

    threads: Counter[ThreadKey] = field(default_factory=Counter)
    leaves: Counter[tuple[ThreadKey, str]] = field(default_factory=Counter)
    inclusive: Counter[tuple[ThreadKey, str]] = field(default_factory=Counter)

    def seconds(self, samples: int) -> float:
        return samples / PROFILE_RATE


def read_profile(path: Path) -> Profile:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    stacks = [
        (_split_stack(stack.split(";")), int(count))
        for stack, _, count in (line.rpartition(" ") for line in lines)
    ]
    # py-spy names a thread only once Python has: early samples of MainThread come unnamed.
    names = {thread.tid: thread.name for (thread, _), _ in stacks if thread.name != "(unnamed)"}
    profile = Profile()
    for (thread, frames), samples in stacks:
        thread = dataclasses.replace(thread, name=names.get(thread.tid, thread.name))
        profile.threads[thread] += samples
        if frames:
            profile.leaves[thread, frames[-1]] += samples
        for frame in set(frames):
            profile.inclusive[thread, frame] += samples
    return profile


_THREAD = re.compile(r"^thread \((?P<tid>\d+)\)(?:: (?P<name>.*))?$")


def _split_stack(parts: list[str]) -> tuple[ThreadKey, list[str]]:
    """The thread and its frames; nested processes are named by their depth."""
    chain = [p for p in parts if p.startswith("process ")]
    last = chain[-1] if chain else "process 0:?"
    pid = int(last.removeprefix("process ").split(":", 1)[0])
    depth = len(chain)
    process = "main" if depth <= 1 else "forkserver" if depth == 2 else f"worker {pid}"
    if "resource_tracker" in last:
        process = "resource_tracker"
    rest = parts[parts.index(last) + 1 :] if chain else parts
    match = _THREAD.match(rest[0]) if rest else None
    if match is None:
        return ThreadKey(process, "-", pid), [_short_frame(f) for f in rest]
    tid = int(match["tid"])
    return ThreadKey(process, match["name"] or "(unnamed)", tid), [
        _short_frame(f) for f in rest[1:]
    ]


def _short_frame(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    file = match["file"].split("site-packages/")[-1].split("/src/")[-1]
    return f"{match['function']} ({file.removeprefix(str(REPO) + '/')})"


def print_profile(
    title: str, profile: Profile, wall: float, cpu: dict[int, float], top: int = 10
) -> None:
    """Each busy thread's CPU and GIL time, then its newsfold functions and leaf frames."""
    busy = [
        (thread, samples)
        for thread, samples in profile.threads.most_common()
        if max(profile.seconds(samples), cpu.get(thread.tid, 0.0)) >= 0.05 * wall
    ]
    print_table(
        f"{title}: threads busy 5 % of the time or more ({wall:.1f} s wall under py-spy)",
        ("process", "thread", "CPU s", "CPU of wall", "GIL held s"),
        [
            (
                thread.process,
                thread.name,
                f"{cpu.get(thread.tid, 0.0):.1f}",
                f"{cpu.get(thread.tid, 0.0) / wall:.0%}",
                f"{profile.seconds(samples):.1f}",
            )
            for thread, samples in busy
        ],
    )
    for thread, samples in busy:
        own = [
            (frame, n)
            for (t, frame), n in profile.inclusive.most_common()
            if t == thread and "newsfold/" in frame
        ][:top]
        leaves = [(frame, n) for (t, frame), n in profile.leaves.most_common() if t == thread]
        thread_cpu = cpu.get(thread.tid, 0.0)
        rows = [
            (kind, frame, f"{n / samples:.0%}", f"{thread_cpu * n / samples:.2f}")
            for kind, frames in (("in", own), ("leaf", leaves[:top]))
            for frame, n in frames
        ]
        print_table(
            f"{thread.process} / {thread.name}: share of its GIL-holding samples in newsfold's "
            "functions (inclusive), then by leaf frame; CPU s = share x the thread's CPU",
            ("", "frame", "share", "~CPU s"),
            rows,
        )
