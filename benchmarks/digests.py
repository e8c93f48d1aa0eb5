#!/usr/bin/env python3
"""Benchmark digest rendering. Run by hand, not by CI.

    python benchmarks/digests.py [--items 3000] [--weeks 12] [--make-corpus PATH]

Writes a corpus spread over the last `weeks` weeks with make_corpus.py, then measures each
weekly digest's render + inline time and premailer's share of it, and the time of a
`bulletin build` that changes nothing. Target: <= 0.5 s per digest; none re-rendered.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bulletin.config import load_config
from bulletin.digests import render
from bulletin.digests.archive import weeks_with_items
from bulletin.digests.plan import plan_digest
from bulletin.report import Report
from bulletin.site.reader import read_site

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--make-corpus", type=Path, default=REPO / "benchmarks/make_corpus.py")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
        site = Path(tmp) / "site"
        start = (NOW - timedelta(weeks=args.weeks)).date().isoformat()
        subprocess.run(
            [sys.executable, str(args.make_corpus), str(site / "content"), "--items", str(args.items),
             "--start", start, "--days", str(args.weeks * 7)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        shutil.copy(REPO / "bulletin.toml", site / "bulletin.toml")
        config = load_config(site)
        built = read_site(config, Report(), NOW)
        weeks = weeks_with_items(built.items, built, NOW)[: config.digest.archive_weeks]
        print(f"{len(built.items)} items, {len(weeks)} weeks, section_items={config.digest.section_items}")

        inline = render.inline
        spent = {"inline": 0.0, "runs": 0}

        def timed_inline(html: str) -> str:
            began = time.perf_counter()
            spent["runs"] += 1
            try:
                return inline(html)
            finally:
                spent["inline"] += time.perf_counter() - began

        render.inline = timed_inline  # type: ignore[assignment]
        totals = []
        for week in weeks:
            digest = plan_digest(config, built.topics, week, built.items)
            spent["inline"] = 0.0
            runs = spent["runs"]
            began = time.perf_counter()
            rendered = render.render_digest(config, built.topics, digest, week.name)
            elapsed = time.perf_counter() - began
            totals.append(elapsed)
            print(
                f"{week.name}: {digest.count:4d} items, {rendered.digest.shown:3d} shown, "
                f"{rendered.size:6d} bytes, {spent['runs'] - runs} inline run(s), "
                f"{elapsed * 1000:6.0f} ms, premailer {spent['inline'] / elapsed:4.0%}"
            )
        render.inline = inline  # type: ignore[assignment]
        print(f"per digest: mean {sum(totals) / len(totals) * 1000:.0f} ms, max {max(totals) * 1000:.0f} ms")

        command = [sys.executable, "-m", "bulletin", "build", "--site", str(site), "--now", NOW.isoformat()]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        began = time.perf_counter()
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(f"unchanged build: {time.perf_counter() - began:.2f} s  [{out.strip().splitlines()[-1]}]")


if __name__ == "__main__":
    main()
