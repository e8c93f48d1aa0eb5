#!/usr/bin/env python3
"""Benchmark `bulletin send` against bare smtplib (SPEC §9). Run by hand, not by CI.

    python benchmarks/send.py [--subscribers 10000] [--topic-sets 20] [--make-corpus PATH]

Starts an SMTP sink (aiosmtpd, discarding) in another process on 127.0.0.1, writes a week of
items with make_corpus.py and a subscribers file spread over `topic-sets` distinct topic
sets, then measures:

- bare:     smtplib sending the same number of pre-built messages over one connection;
- bulletin: the whole `bulletin send` run (render per topic set, splice per subscriber,
            the WAL ledger), as a subprocess.

Target: bulletin >= 80% of bare smtplib's messages per second.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-25T12:00"
SINK = """
import sys, time
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--topic-sets", type=int, default=20)
    parser.add_argument("--make-corpus", type=Path, default=REPO.parent / "shared/corpus/make_corpus.py")
    args = parser.parse_args()

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    try:
        with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
            site = Path(tmp) / "site"
            subprocess.run(
                [
                    sys.executable,
                    str(args.make_corpus),
                    str(site / "content"),
                    "--items",
                    "400",
                    "--start",
                    "2026-11-16",
                    "--days",
                    "7",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            config = (
                (REPO / "bulletin.toml")
                .read_text()
                .replace('host = "localhost"', f'host = "127.0.0.1"\nport = {port}')
            )
            (site / "bulletin.toml").write_text(config)
            env = {**os.environ, "BULLETIN_SECRET": "benchmark-secret-0123456789"}
            listing = subprocess.run(
                [sys.executable, "-m", "bulletin", "topics", "--site", str(site), "--now", NOW],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            slugs = [line.split()[-4] for line in listing.splitlines()[1:]]
            sets = [
                ";".join(slugs[(n + k) % len(slugs)] for k in range(1 + n % 3))
                for n in range(args.topic_sets)
            ]
            with (site / "subscribers.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["email", "name", "topics"])
                for n in range(args.subscribers):
                    writer.writerow([f"reader{n}@example.org", f"Reader {n}", sets[n % len(sets)]])

            # Bare smtplib: the messages pre-built (one per topic set, from the dry run's outbox).
            subprocess.run(
                [
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
                    "--dry-run",
                    "-q",
                ],
                check=True,
                env=env,
            )
            outbox = site / ".bulletin" / "outbox" / "new"
            prebuilt = [path.read_bytes() for path in sorted(outbox.iterdir())[: args.topic_sets]]
            shutil.rmtree(site / ".bulletin" / "outbox")
            size = sum(map(len, prebuilt)) / len(prebuilt)
            started = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for n in range(args.subscribers):
                    smtp.sendmail(
                        "digest@news.example.org", [f"reader{n}@example.org"], prebuilt[n % len(prebuilt)]
                    )
            bare = time.perf_counter() - started

            started = time.perf_counter()
            result = subprocess.run(
                [
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
                    "--new-ledger",
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            ours = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(result.stderr)
            print(
                f"{args.subscribers} subscribers, {args.topic_sets} topic sets, "
                f"messages of {size / 1000:.0f} kB"
            )
            print(f"bare smtplib:   {bare:6.2f} s  {args.subscribers / bare:7.0f} messages/s")
            print(
                f"bulletin send:  {ours:6.2f} s  {args.subscribers / ours:7.0f} messages/s  "
                f"({bare / ours:.0%} of bare)  [{result.stdout.strip()}]"
            )
    finally:
        assert sink.stdin is not None
        sink.stdin.close()
        sink.wait(timeout=10)


if __name__ == "__main__":
    main()
