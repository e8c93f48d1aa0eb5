#!/usr/bin/env python3
"""Benchmark `bulletin send` against bare smtplib. Run by hand, not by CI.

    python benchmarks/send.py [--subscribers 100000] [--topics-per 1-6] [--connections 4]
                              [--fixed-sets N] [--rounds 3]

Starts an SMTP sink (aiosmtpd, discarding) in another process on 127.0.0.1, writes a week of
items with make_corpus.py (40 topics), and subscribers who each tick 1 to 6 topics at random
(seeded), as real readers do: almost every subscriber has a topic set of their own.
`--fixed-sets N` instead spreads them over N sets, the easy case. Then it measures:

- bare:     smtplib sending as many pre-built messages (a dry run's, for the first 500
            subscribers, reused in turn) over the same number of connections, one thread each;
- bulletin: the whole `bulletin send` run (rendering, splicing, the WAL ledger), as a
            subprocess, with its peak memory.

Each is run --rounds times (a fresh ledger each time); the best round counts.
Target: bulletin >= 80% of bare smtplib's messages per second, peak memory <= 300 MB, and
rendering that does not grow with the number of topic sets.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-25T12:00"
SINK = """
import sys
from aiosmtpd.controller import Controller
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=None)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_site(folder: Path, port: int, make_corpus: Path) -> tuple[Path, dict[str, str]]:
    site = folder / "site"
    corpus = [
        sys.executable,
        str(make_corpus),
        str(site / "content"),
        "--items",
        "400",
        "--start",
        "2026-11-16",
        "--days",
        "7",
    ]
    subprocess.run(corpus, check=True, stdout=subprocess.DEVNULL)
    config = (
        (REPO / "bulletin.toml")
        .read_text()
        .replace('host = "localhost"', f'host = "127.0.0.1"\nport = {port}')
    )
    (site / "bulletin.toml").write_text(config)
    env = {**os.environ, "BULLETIN_SECRET": "benchmark-secret-0123456789"}
    return site, env


def write_subscribers(site: Path, env: dict[str, str], count: int, low: int, high: int, fixed: int) -> int:
    """The subscribers file; the number of distinct topic sets in it."""
    listing = subprocess.run(
        [sys.executable, "-m", "bulletin", "topics", "--site", str(site), "--now", NOW],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    slugs = [line.split()[-4] for line in listing.splitlines()[1:]]
    chooser = random.Random(47)
    pool = (
        [frozenset(chooser.sample(slugs, chooser.randint(low, high))) for _ in range(fixed)] if fixed else []
    )
    chosen = [
        pool[n % len(pool)] if pool else frozenset(chooser.sample(slugs, chooser.randint(low, high)))
        for n in range(count)
    ]
    with (site / "subscribers.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "topics"])
        for n, topics in enumerate(chosen):
            writer.writerow([f"reader{n}@example.org", f"Reader {n}", ";".join(sorted(topics))])
    return len(set(chosen))


def bare(port: int, messages: list[bytes], count: int, connections: int) -> float:
    """Seconds for smtplib to send `count` pre-built messages over `connections` connections."""

    def worker(number: int) -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for n in range(number, count, connections):
                smtp.sendmail(
                    "digest@news.example.org", [f"reader{n}@example.org"], messages[n % len(messages)]
                )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--topics-per", default="1-6", help="how many topics each subscriber ticks, LOW-HIGH")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--fixed-sets", type=int, default=0, help="spread subscribers over N sets instead")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--make-corpus", type=Path, default=REPO / "benchmarks/make_corpus.py")
    args = parser.parse_args()
    low, high = (int(n) for n in args.topics_per.split("-"))
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    try:
        with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
            site, env = make_site(Path(tmp), port, args.make_corpus)
            sets = write_subscribers(site, env, args.subscribers, low, high, args.fixed_sets)
            command = [
                sys.executable,
                "-m",
                "bulletin",
                "send",
                "--site",
                str(site),
                "--now",
                NOW,
                "--subscribers",
                str(site / "subscribers.csv"),
            ]
            # Bare smtplib: pre-built messages, from a dry run's outbox for the first 500.
            sample = site / "sample.csv"
            with (site / "subscribers.csv").open() as rows:
                sample.write_text("".join(line for _, line in zip(range(501), rows, strict=False)))
            subprocess.run([*command[:-1], str(sample), "--dry-run", "-q"], check=True, env=env)
            outbox = sorted((site / ".bulletin" / "outbox" / "new").iterdir())
            prebuilt = [path.read_bytes() for path in outbox]
            shutil.rmtree(site / ".bulletin" / "outbox")
            size = sum(map(len, prebuilt)) / len(prebuilt)
            bare_seconds = min(
                bare(port, prebuilt, args.subscribers, args.connections) for _ in range(args.rounds)
            )
            rounds = []
            for _ in range(args.rounds):
                for state in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"):
                    (site / ".bulletin" / state).unlink(missing_ok=True)
                started = time.perf_counter()
                result = subprocess.run(
                    [*command, "--new-ledger", "--connections", str(args.connections)],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                rounds.append(time.perf_counter() - started)
                if result.returncode != 0:
                    raise SystemExit(result.stderr)
            ours = min(rounds)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    finally:
        sink.kill()
    print(
        f"{args.subscribers} subscribers, {sets} distinct topic sets ({low}-{high} of 40 topics each), "
        f"messages of {size / 1000:.0f} kB, {args.connections} connection(s)"
    )
    print(f"bare smtplib:   {bare_seconds:6.2f} s  {args.subscribers / bare_seconds:7.0f} messages/s")
    print(
        f"bulletin send:  {ours:6.2f} s  {args.subscribers / ours:7.0f} messages/s  "
        f"({bare_seconds / ours:.0%} of bare), peak memory of the largest child {peak:.0f} MB"
    )
    print(f"  rounds: bare best {bare_seconds:.2f} s; bulletin {', '.join(f'{r:.2f}' for r in rounds)} s")
    print(f"  [{result.stdout.strip()}]")


if __name__ == "__main__":
    main()
