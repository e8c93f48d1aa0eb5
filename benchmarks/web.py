#!/usr/bin/env python3
"""Benchmark one-click unsubscribes against `bulletin serve --workers 2`. By hand.

    python benchmarks/web.py [--subscribers 20000] [--connections 16] [--seconds 20]

Builds the example site in a temporary folder with `--subscribers` active subscribers in
its ledger, starts `bulletin serve --workers 2` and an SMTP sink (aiosmtpd, in another
process) on 127.0.0.1, then, at once:

- POSTs `List-Unsubscribe=One-Click` for distinct subscribers over `--connections`
  keep-alive connections (an asyncio client speaking HTTP/1.1) for `--seconds`;
- runs `bulletin send` for the example week to the sink.

Reports requests per second, latency percentiles and errors; then checks that every address
that got a 200 is unsubscribed in the ledger, that no response was an error (no "database
is locked"), and that every message the sink accepted is recorded in the ledger.
Targets: >= 500 requests/s, p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-25T12:00"
SECRET = "benchmark-secret-0123456789"
SINK = """
import sys
from aiosmtpd.controller import Controller
class Sink:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Sink.count += len(envelope.rcpt_tos)
        return "250 OK"
controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=None)
controller.start()
print("ready", flush=True)
sys.stdin.readline()
print(Sink.count, flush=True)
controller.stop()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_site(folder: Path, subscribers: int, smtp_port: int, web_port: int) -> tuple[Path, list[str]]:
    """The example site with its digests built and `subscribers` active subscribers."""
    from bulletin.config import load_config
    from bulletin.ledger import Ledger
    from bulletin.tokens import make_token

    site = folder / "site"
    shutil.copytree(REPO / "content", site / "content")
    config = (
        (REPO / "bulletin.toml")
        .read_text()
        .replace('host = "localhost"', f'host = "127.0.0.1"\nport = {smtp_port}')
    )
    config += f'\n[web]\nurl = "http://127.0.0.1:{web_port}/"\n'
    (site / "bulletin.toml").write_text(config)
    list_id = load_config(site).digest.list_id
    now = datetime.now(UTC).isoformat()
    addresses = [f"reader{n}@example.org" for n in range(subscribers)]
    with Ledger.open(site / ".bulletin" / "ledger.sqlite", create=True) as ledger:
        ledger.db.execute("BEGIN")
        ledger.db.executemany(
            "INSERT INTO subscribers"
            " (address, email, name, topics, status, source, created, confirmed, changed)"
            " VALUES (?, ?, '', NULL, 'active', 'import', ?, ?, ?)",
            [(a, a, now, now, now) for a in addresses],
        )
        ledger.db.execute("COMMIT")
    return site, [make_token(a, SECRET, list_id) for a in addresses]


async def hammer(
    port: int, tokens: list[str], connections: int, seconds: float
) -> tuple[list[float], dict[int, int], list[str]]:
    """POST one-click unsubscribes for `seconds`; latencies, status counts, addresses done."""
    queue = list(reversed(tokens))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    done: list[str] = []
    deadline = time.perf_counter() + seconds
    body = b"List-Unsubscribe=One-Click"

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue and time.perf_counter() < deadline:
            token = queue.pop()
            request = (
                f"POST /unsubscribe/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            status = int(head.split(b" ", 2)[1])
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                done.append(token)
        writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, statuses, done


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-send", action="store_true", help="Leave out the concurrent send.")
    args = parser.parse_args()
    smtp_port, web_port = free_port(), free_port()
    env = {**os.environ, "BULLETIN_SECRET": SECRET}
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
        site, tokens = make_site(Path(tmp), args.subscribers, smtp_port, web_port)
        bulletin = [sys.executable, "-m", "bulletin"]
        subprocess.run([*bulletin, "build", "-q", "--site", str(site), "--now", NOW], check=True, env=env)
        sink = subprocess.Popen(
            [sys.executable, "-c", SINK, str(smtp_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        server = subprocess.Popen(
            [
                *bulletin,
                "serve",
                "--site",
                str(site),
                "--port",
                str(web_port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
            _wait_for(web_port)
            week = "--week=2026-W47" if not args.no_send else "--week=2020-W01"  # a week without items
            send = subprocess.Popen(
                [*bulletin, "send", "--local-links", "--site", str(site), "--now", NOW, week, "--force"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            began = time.perf_counter()
            latencies, statuses, done = asyncio.run(hammer(web_port, tokens, args.connections, args.seconds))
            elapsed = time.perf_counter() - began
            out, err = send.communicate()
            assert sink.stdin is not None
            sink.stdin.write("report\n")
            sink.stdin.flush()
            accepted = int(sink.stdout.readline())
        finally:
            server.terminate()
            server.wait(10)
            sink.kill()
        _report(site, tokens, latencies, statuses, done, elapsed, out, err, send.returncode, accepted)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("bulletin serve did not start")


def _report(
    site: Path,
    tokens: list[str],
    latencies: list[float],
    statuses: dict[int, int],
    done: list[str],
    elapsed: float,
    out: str,
    err: str,
    send_code: int,
    accepted: int,
) -> None:
    from bulletin.tokens import verify_unsubscribe_token

    latencies.sort()
    count = len(latencies)
    p = lambda q: latencies[min(count - 1, int(q * count))] * 1000  # noqa: E731
    print(f"one-click POSTs: {count} in {elapsed:.1f} s = {count / elapsed:.0f}/s; statuses {statuses}")
    print(
        f"latency ms: median {statistics.median(latencies) * 1000:.1f}, p90 {p(0.90):.1f}, "
        f"p99 {p(0.99):.1f}, max {latencies[-1] * 1000:.1f}"
    )
    db = sqlite3.connect(site / ".bulletin" / "ledger.sqlite")
    unsubscribed = {
        row[0] for row in db.execute("SELECT address FROM subscribers WHERE status = 'unsubscribed'")
    }
    suppressed = {row[0] for row in db.execute("SELECT address FROM suppressed")}
    wanted = {verify_unsubscribe_token(t, SECRET, "health-innovation-weekly.news.example.org") for t in done}
    missing = wanted - (unsubscribed & suppressed)
    print(f"every 200 recorded: {not missing} ({len(wanted)} answered 200, {len(missing)} missing)")
    recorded = db.execute("SELECT COUNT(*) FROM sent").fetchone()[0]
    print(
        f"concurrent send: exit {send_code}, {out.strip()}; "
        f"sink accepted {accepted}, ledger recorded {recorded}"
    )
    if "locked" in err or "locked" in out:
        print("database is locked appeared:", err)


if __name__ == "__main__":
    main()
