#!/usr/bin/env python3
"""Benchmark `bulletin feeds` against Hugo and the YAML floor. Run by hand, not by CI.

    python benchmarks/feeds.py [--items 10000,100000] [--corpus DIR] [--make-corpus PATH]
                               [--jobs N] [--repeat 3] [--tmp DIR]

For each size, writes a corpus with make_corpus.py (default: benchmarks/make_corpus.py,
beside this script) unless --corpus names an existing one, then measures:

- hugo:  Hugo (the Debian package, `hugo` on PATH) building the same items' per-topic RSS
         feeds and the all-items feed (no HTML pages), from scratch; skipped without hugo;
- floor: reading every file and parsing its front matter alone with yaml.CSafeLoader;
- cold:  `bulletin feeds` with no cache and no output;
- warm:  the same again, nothing changed;
- one:   the newest item's title edited (spliced in place: see src/bulletin/patch.py);
- added: a new item, the newest (the full build, with the parse and render caches);
and the peak resident memory of each run. Targets: cold <= 1.3x floor, warm <= 10% of
cold, one <= 15% of cold, peak <= 200 MB; against Hugo, cold <= 0.5x, warm <= 0.03x,
one <= 0.05x; 100,000 items <= 10.5x the time of 10,000, peak <= 400 MB. With two sizes,
the last line compares the larger one's cold time and peak memory to the smaller one's.

Where the files go matters on some disks: on this project's ext4 test machines, creating
directories gets slower after each run deletes thousands (10,000 mkdirs: 0.24 s, then 0.67 s,
then 1.10 s), and Hugo makes one directory per item even with no page output, so its time
grows run after run. `--tmp /dev/shm` takes the file system out of the comparison.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-25T12:00"


def front_matter(text: str) -> str:
    end = text.index("\n---", 4)
    return text[4:end]


def floor(files: list[Path]) -> float:
    """Seconds to read every file and parse its front matter with CSafeLoader."""
    start = time.perf_counter()
    for path in files:
        yaml.load(front_matter(path.read_text(encoding="utf-8")), Loader=yaml.CSafeLoader)
    return time.perf_counter() - start


HUGO_CONFIG = """\
baseURL = "https://news.example.org/"
title = "Benchmark"
disableKinds = ["sitemap", "robotsTXT", "404"]
rssLimit = 50
[outputs]
home = ["RSS"]
page = []
section = []
taxonomy = []
term = ["RSS"]
[taxonomies]
category = "categories"
"""


def hugo(content: Path, folder: Path) -> float | None:
    """Seconds for Hugo to build the per-topic RSS feeds of `content` from scratch."""
    if shutil.which("hugo") is None:
        return None
    site = folder / "hugo"
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir()
    (site / "content").symlink_to(content)
    (site / "config.toml").write_text(HUGO_CONFIG)
    start = time.perf_counter()
    subprocess.run(["hugo", "--quiet", "-d", str(site / "public")], cwd=site, check=True)
    elapsed = time.perf_counter() - start
    feeds = len(list((site / "public" / "categories").glob("*/index.xml")))
    assert feeds > 0, "hugo wrote no topic feeds"
    return elapsed


def run(site: Path, jobs: int | None) -> tuple[float, float, str]:
    """Run `bulletin feeds` once: (seconds, peak RSS in MB, its last line of output)."""
    env = dict(os.environ)
    # As installed: Python's bytecode caches in use (pip writes them for an installed
    # package); without them every run compiles bulletin's modules again (~45 ms).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if jobs:
        env["BULLETIN_JOBS"] = str(jobs)
    command = [sys.executable, "-m", "bulletin", "feeds", "--site", str(site), "--now", NOW]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        # wait4 reports the peak RSS of the process and of the workers it waited for.
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode not in (0, 1):
            raise SystemExit(f"bulletin feeds failed ({process.returncode}):\n{err.read().decode()}")
        last = out.read().decode().strip().splitlines()[-1]
    return elapsed, usage.ru_maxrss / 1024, last


def measure(args: argparse.Namespace, items: int, tmp: Path) -> dict[str, float]:
    """Hugo, the floor, cold, warm and one changed on a corpus of `items`: seconds and MB."""
    site = tmp / f"site-{items}"
    content = site / "content"
    if args.corpus:
        shutil.copytree(args.corpus, content)
    else:
        subprocess.run(
            [sys.executable, str(args.make_corpus), str(content), "--items", str(items)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    (site / "bulletin.toml").write_text('title = "Benchmark"\nbase_url = "https://news.example.org/"\n')
    files = sorted(content.rglob("*.md"))
    print(
        f"\n{len(files)} items, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB, "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, jobs={args.jobs or 'auto'}"
    )

    hugos = [hugo(content, tmp) for _ in range(args.repeat)]
    hugo_s = min(h for h in hugos if h is not None) if hugos[0] is not None else None
    if hugo_s is not None:
        print(f"hugo  (per-topic RSS, from scratch):    {hugo_s:6.2f} s")
    floor_s = min(floor(files) for _ in range(args.repeat))
    print(f"floor (CSafeLoader, front matter only): {floor_s:6.2f} s")

    def against_hugo(seconds: float) -> str:
        return f"  {seconds / hugo_s:5.3f}x hugo" if hugo_s is not None else ""

    colds = []
    for _ in range(args.repeat):
        shutil.rmtree(site / ".bulletin", ignore_errors=True)
        shutil.rmtree(site / "feeds", ignore_errors=True)
        colds.append(run(site, args.jobs))
    cold = min(colds)
    print(
        f"cold:  {cold[0]:6.2f} s  {cold[0] / floor_s:5.2f}x floor{against_hugo(cold[0])}  "
        f"{len(files) / cold[0]:7.0f} items/s"
        f"  peak {max(c[1] for c in colds):5.0f} MB   [{cold[2]}]"
    )

    warm = min(run(site, args.jobs) for _ in range(args.repeat))
    print(
        f"warm:  {warm[0]:6.2f} s  {warm[0] / cold[0]:5.1%} of cold{against_hugo(warm[0])}  "
        f"peak {warm[1]:5.0f} MB   [{warm[2]}]"
    )

    newest = max(files, key=lambda f: f.read_text(encoding="utf-8").split("\ndate: ", 1)[1][:13])
    ones = []
    for n in range(args.repeat):
        text = newest.read_text(encoding="utf-8")
        newest.write_text(text.replace("\ntitle: ", f"\ntitle: Edited {n} ", 1), encoding="utf-8")
        ones.append(run(site, args.jobs))
    one = min(ones)
    print(
        f"one:   {one[0]:6.2f} s  {one[0] / cold[0]:5.1%} of cold{against_hugo(one[0])} (newest edited)  "
        f"peak {one[1]:5.0f} MB   [{one[2]}]"
    )
    # An edit that moves an item (here a new one, the newest) is not spliced: the full build.
    added = []
    for n in range(args.repeat):
        text = newest.read_text(encoding="utf-8")
        copy = re.sub(r"(?m)^id: .*$", f"id: added-{n}", text, count=1)
        copy = re.sub(r"(?m)^date: .*$", f"date: '2026-11-2{n}'", copy, count=1)
        copy = re.sub(r"(?m)^lastMod: .*$", f"lastMod: '2026-11-2{n}T12:00:00Z'", copy, count=1)
        newest.with_name(f"added-{n}.md").write_text(copy, encoding="utf-8")
        added.append(run(site, args.jobs))
    new = min(added)
    print(
        f"added: {new[0]:6.2f} s  {new[0] / cold[0]:5.1%} of cold{against_hugo(new[0])} (a new item)  "
        f"peak {new[1]:5.0f} MB   [{new[2]}]"
    )
    shutil.rmtree(site)
    return {"cold": cold[0], "peak": max(c[1] for c in colds + ones + added + [warm])}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--items",
        default="10000,100000",
        help="corpus sizes, comma-separated (default: 10000,100000; the second is compared to the first)",
    )
    parser.add_argument("--corpus", type=Path, help="an existing folder of items (skips make_corpus.py)")
    parser.add_argument("--make-corpus", type=Path, default=REPO / "benchmarks/make_corpus.py")
    parser.add_argument("--jobs", type=int, help="processes for parsing (default: one per CPU)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    parser.add_argument(
        "--tmp",
        type=Path,
        help="where the corpus and outputs go (default: the system's temporary folder); "
        "/dev/shm takes the file system out of the comparison",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.items.split(",")]
    if args.corpus:
        sizes = sizes[:1]

    with tempfile.TemporaryDirectory(prefix="bulletin-bench-", dir=args.tmp) as tmp:
        results = [measure(args, size, Path(tmp)) for size in sizes]
    if len(results) > 1:
        base, big = results[0], results[-1]
        print(
            f"\n{sizes[-1]} against {sizes[0]} items: cold {big['cold'] / base['cold']:.1f}x the time "
            f"(target for 10x the items: <= 10.5x), peak {big['peak']:.0f} MB (target <= 400 MB)"
        )


if __name__ == "__main__":
    main()
