"""The command line: each command parses options, calls the library and reports.

Results go to stdout, diagnostics to stderr. Exit codes: 0 done; 1 done but something was
skipped; 2 usage or configuration error, nothing done; 3 refused or aborted.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__, patch, unchanged
from .config import Config, load_config
from .dates import parse_date
from .errors import (
    BulletinError,
    ConfigError,
    Interrupted,
    RefusedError,
    UsageError,
    forget_sigterm,
    stop_on_sigterm,
    terminated,
)
from .report import Report, counted, printable

if TYPE_CHECKING:  # the reader and the writers load when a command needs them
    from .build import Built
    from .digests.windows import Window
    from .mail.unsubscribe import Left
    from .output import Written
    from .site.reader import Site
    from .site.walk import Walked
    from .subscriptions import Row

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Options:
    """The global options, given before or after the command name."""

    site: Path = Path(".")
    site_given: bool = False  # --site was given (as "." too), not the default
    now: str | None = None
    verbose: int = 0
    quiet: bool = False


class BarProgress:
    """A progress bar on stderr (count and rate), only when stderr is a terminal and not -q."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.started = 0.0
        self.done = 0

    def start(self, label: str, total: int) -> None:
        if self.enabled and total > 1:
            self.started, self.done = time.monotonic(), 0
            self.bar = click.progressbar(
                length=total, label=label, file=sys.stderr, show_pos=True, item_show_func=self._rate
            )
            self.bar.__enter__()

    def _rate(self, _: object) -> str | None:
        elapsed = time.monotonic() - self.started
        return f"{self.done / elapsed:.0f}/s" if elapsed > 0 and self.done else None

    def advance(self, count: int = 1) -> None:
        if self.bar is not None:
            self.done += count
            self.bar.update(count, self)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _set_option(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        options = ctx.find_object(Options)
        if options is None:
            options = ctx.ensure_object(Options)
        if value not in (None, False, 0, ()):
            setattr(options, name, value)
            if name == "site":
                options.site_given = True
        return value

    return callback


def global_options(func: F) -> F:
    """--site, --now, -v, -q, --version: accepted on the group and on every command."""
    for decorator in reversed(
        [
            click.option(
                "--site",
                type=click.Path(file_okay=False, path_type=Path),
                expose_value=False,
                callback=_set_option("site"),
                help="The site folder (default: the current one).",
            ),
            click.option(
                "--now",
                metavar="DATETIME",
                expose_value=False,
                callback=_set_option("now"),
                help="Fix the clock, e.g. 2026-11-25T08:00 (naive = the site's time zone).",
            ),
            click.option(
                "-v",
                "--verbose",
                count=True,
                expose_value=False,
                callback=_set_option("verbose"),
                help="Say more: scheduled items held back, clamped dates, other notes.",
            ),
            click.option(
                "-q",
                "--quiet",
                is_flag=True,
                expose_value=False,
                callback=_set_option("quiet"),
                help="Print only errors (what topics, status and subscribers list still prints).",
            ),
            click.version_option(__version__, "--version", prog_name="bulletin"),
        ]
    ):
        func = decorator(func)
    return func


class Run:
    """One command's run: options, configuration, clock and report, and how it ends."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.report = Report()
        self.config: Config = load_config(options.site)
        self.now = self._now()
        self.progress = BarProgress(enabled=not options.quiet and _terminal(sys.stderr))
        self.unread = False  # stdout's reader has gone
        self.items_in_passing = False  # see diagnose

    def _now(self) -> datetime:
        if self.options.now is None:
            return datetime.now(UTC)
        parsed = parse_date(self.options.now, self.config.timezone)
        if parsed is None:
            raise click.BadParameter(
                f"'{self.options.now}' is not a date; write YYYY-MM-DD or an ISO 8601 date-time",
                param_hint="--now",
            )
        return parsed

    def read(self) -> Site:
        from .site.reader import read_site

        return read_site(self.config, self.report, self.now, self.progress)

    def say(self, message: str) -> None:
        """What the command did, on stdout (unless -q, which keeps a cron job's mail empty)."""
        if not self.options.quiet:
            self.show(message)

    def show(self, message: str) -> None:
        """What the command was run to show (a list, a status), on stdout, under -q too. A
        reader that stops reading (`| head -1`) stops the output, never the work: a send
        must not end half-way because of it."""
        if self.unread:
            return
        try:
            click.echo(message)
        except BrokenPipeError:
            self.unread = True
            _to_devnull(sys.stdout)

    def diagnose(self) -> None:
        """Print the report's problems to stderr: errors always, warnings unless -q. A command
        that reads the items only in passing (`topics`, `status`, `subscribers …`) counts
        their warnings in one line, where `check` and the builds give each."""
        content = f"{self.config.content_dir.name}/"
        passing = 0
        for problem in self.report.sorted():
            if problem.level != "error" and self.items_in_passing and problem.path.startswith(content):
                passing += 1
            elif problem.level == "error" or not self.options.quiet:
                _echo_err(str(problem))
        if passing and not self.options.quiet:
            _echo_err(f"{content}: {counted(passing, 'warning')} about items; bulletin check lists them")
        if self.options.verbose:
            for note in self.report.notes:
                _echo_err(printable(f"note: {note}"))

    def exit_code(self) -> int:
        return 1 if self.report.errors else 0


def _terminal(stream: Any) -> bool:
    """Whether `stream` is a terminal; False when closed (`2>&-` leaves sys.stderr None)."""
    return stream is not None and stream.isatty()


def _echo_err(message: str) -> None:
    """A line on stderr, unless its reader has gone (`2>&1 | head`): the exit code stays the run's."""
    try:
        click.echo(message, err=True)
    except BrokenPipeError:
        _to_devnull(sys.stderr)


def _to_devnull(stream: Any) -> None:
    """Point a stream whose reader has gone at /dev/null, so that no flush at exit fails again."""
    with suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


@contextmanager
def _running(ctx: click.Context) -> Iterator[Run]:
    """Create the run; turn bulletin's exceptions into messages and exit codes, in one place."""
    options = ctx.find_object(Options) or Options()
    run: Run | None = None
    try:
        run = Run(options)
        run.items_in_passing = _top_command(ctx) in _ITEMS_IN_PASSING
        yield run
    except ConfigError as exc:
        if run is not None:
            run.diagnose()
        for problem in exc.problems:
            click.echo(printable(problem), err=True)  # values from bulletin.toml, as written
        ctx.exit(exc.exit_code)
    except BulletinError as exc:
        if run is not None:
            run.diagnose()
        click.echo(_located(str(exc)), err=True)
        ctx.exit(exc.exit_code)
    except OSError as exc:  # a file bulletin needed (a template, a folder to clean up)
        if run is not None:
            run.diagnose()
        click.echo(_os_problem(exc, options.site), err=True)
        ctx.exit(RefusedError.exit_code)
    if run is not None:
        run.diagnose()
        ctx.exit(run.exit_code())


# Commands that read the items only to know the topics: they count item warnings in one line.
_ITEMS_IN_PASSING = frozenset(("topics", "status", "subscribers", "unsubscribe", "bounces"))


def _top_command(ctx: click.Context) -> str | None:
    """The name of the command under `bulletin` that runs (`subscribers` for `subscribers list`)."""
    while ctx.parent is not None and ctx.parent.parent is not None:
        ctx = ctx.parent
    return ctx.info_name if ctx.parent is not None else None


def _located(message: str) -> str:
    """A message that names its file (`path:line: error: …`) as it is; others say who speaks."""
    return message if ": error: " in message.partition("\n")[0] else f"bulletin: {message}"


def _os_problem(exc: OSError, site: Path) -> str:
    """`path: error: reason; fix` for an OSError that nothing below the command line expected."""
    where = "bulletin"
    if exc.filename is not None:
        path, root = Path(os.fsdecode(exc.filename)).absolute(), site.absolute()
        where = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return f"{where}: error: {exc.strerror or exc}; check it, then run the same command again"


class _Commands(click.Group):
    """bulletin's commands: Ctrl-C ends any of them with one line and exit code 130; SIGTERM
    with one line, then as killed by it (128 + 15 to a shell; a service manager sees the
    signal it sent). In `serve`, uvicorn shuts down gracefully first (see web/serve.py)."""

    def invoke(self, ctx: click.Context) -> Any:
        said = ""
        with _sigterm_taken():
            try:
                return super().invoke(ctx)
            except Interrupted as exc:  # with what the command had done by then
                said = f": {exc}"
            except KeyboardInterrupt:
                pass
            # Outside the except block: the interrupted frames (and the parsing processes they
            # hold) are released before the process ends. A bar may have been left mid-line.
            what = "stopped by SIGTERM" if terminated() else "interrupted"
            _echo_err(("\n" if _terminal(sys.stderr) else "") + f"bulletin: {what}{said}")
            if terminated():
                sys.stderr.flush()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            ctx.exit(130)


@contextmanager
def _sigterm_taken() -> Iterator[None]:
    """Inside the block, SIGTERM stops the command as Ctrl-C does, unless a caller ignores
    it or this is not the main thread (tests invoke commands in threads). A process that
    runs several commands (a test, a script importing bulletin) gets its handler back."""
    forget_sigterm()
    main_thread = threading.current_thread() is threading.main_thread()
    if not main_thread or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is stop_on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.pass_context
def main(ctx: click.Context) -> None:
    """Turn a folder of curated news items into feeds and weekly email digests.

    Run the commands in a site folder (one with bulletin.toml and content/), or pass --site.
    """
    ctx.ensure_object(Options)


def run() -> None:
    """The `bulletin` command and `python -m bulletin`: main(), then the process ends at once.

    Python's own exit frees every object one by one: after a build, every item it read
    (20 ms at 10,000 items, an eighth of a rebuild after one edit). Once the command has
    returned, and no other thread runs and no profiler or tracer watches, the exit handlers
    run, the output is flushed, and the process ends without that. Every file bulletin
    writes is complete, closed and renamed into place before its command returns; a
    database is committed and closed."""
    try:
        main()
        code: str | int | None = None
    except SystemExit as exc:
        code = exc.code
    if threading.active_count() > 1 or sys.gettrace() is not None or sys.getprofile() is not None:
        sys.exit(code)  # a thread to wait for; a profiler, a debugger or coverage to write out
    import atexit

    atexit._run_exitfuncs()  # what Python's exit runs first (a process pool's, logging's)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # as sys.exit("message") prints it
        code = 1
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started with the stream closed (`2>&-`)
                stream.flush()
    except OSError:  # a closed pipe: Python's exit says so, as it would have
        sys.exit(code)
    os._exit(code or 0)


def _summary(site: Site) -> str:
    collection = site.collection
    held = []
    if collection.drafts:
        held.append(counted(collection.drafts, "draft"))
    if collection.scheduled:
        held.append(counted(len(collection.scheduled), "scheduled item"))
    extra = f" ({', '.join(held)} held back)" if held else ""
    items, topics = counted(len(site.items), "item"), counted(len(site.topics.by_key), "topic")
    return f"{items} in {topics} from {counted(collection.files, 'file')}{extra}"


def _problems(report: Report) -> str:
    """`1 error, 2 warnings`."""
    return f"{counted(len(report.errors), 'error')}, {counted(len(report.warnings), 'warning')}"


def _written(label: str, written: Written, again: bool = False) -> str:
    """`feeds: 3 written, 461 unchanged`; `again`: as the next run says it, nothing changed."""
    if again:
        return f"{label}: 0 written, {len(written.changed) + written.unchanged} unchanged"
    removed = f", {len(written.removed)} removed" if written.removed else ""
    return f"{label}: {len(written.changed)} written, {written.unchanged} unchanged{removed}"


@main.command()
@global_options
@click.pass_context
def check(ctx: click.Context) -> None:
    """Read every item and report problems; write no output."""
    with _running(ctx) as run:
        site = run.read()
        run.say(f"{_summary(site)}; {_problems(run.report)}")


new_ledger_option = click.option(
    "--new-ledger", is_flag=True, help="Create .bulletin/ledger.sqlite (a new list only)."
)
strict_option = click.option(
    "--strict", is_flag=True, help="Treat any problem, warnings included, as fatal (exit 3); write nothing."
)


@main.command()
@strict_option
@global_options
@click.pass_context
def feeds(ctx: click.Context, strict: bool) -> None:
    """Write the feeds, topic pages, index and OPML.

    RSS, Atom and JSON Feed for every item and per topic, under feeds/.
    """
    with _running(ctx) as run:
        _build_unless_unchanged(run, "feeds", "", strict=strict, digests=False)


@main.command()
@strict_option
@global_options
@click.pass_context
def build(ctx: click.Context, strict: bool) -> None:
    """Check the items, then write the feeds and the recent digests."""
    with _running(ctx) as run:
        from .digests.windows import last_complete_week

        week = last_complete_week(run.now, run.config.timezone).name  # which digests are recent
        _build_unless_unchanged(run, "build", week, strict=strict, digests=True)


def _build_unless_unchanged(run: Run, command: str, context: str, *, strict: bool, digests: bool) -> None:
    """Build, or, when nothing changed since a run that reported nothing, say what it said
    (see unchanged.py); after a run that reports nothing, keep what it depended on."""
    again, walked = unchanged.replay(run.config, command, context, run.now)
    if again is not None:
        run.say(again)
        return
    unchanged.forget(run.config, command)
    if command == "feeds" and _patched(run, walked):
        return
    from .build import build_site

    built = build_site(
        run.config,
        run.report,
        run.now,
        run.progress,
        strict=strict,
        digests=digests,
        walked=walked,
        one_shot=True,
    )
    lines = _built_lines(built, digests)
    if run.report.problems:  # they follow on stderr; the summary says how many
        lines[0] += f"; {_problems(run.report)}"
    run.say("\n".join(lines))
    if not run.report.problems and not run.report.notes:
        outputs = built.feeds.outputs + built.digests_written.outputs
        summary = "\n".join(_built_lines(built, digests, True))
        stamps, latest = built.site.collection.stamps, built.site.latest()
        unchanged.remember(run.config, command, context, summary, outputs, stamps, latest)
        if command == "feeds":
            patch.remember(run.config, built, lines[0])


def _patched(run: Run, walked: Walked | None) -> bool:
    """After a few edits in place, splice them into the feeds and pages (see patch.py); False
    when the full build must run."""
    patched = patch.apply(run.config, run.now, walked)
    if isinstance(patched, str):
        patch.forget(run.config)  # the full build makes a new one
        if patched and run.options.verbose:  # not a note: the next run would build in full too
            _echo_err(printable(f"note: feeds: built in full: {patched}"))
        return False
    if run.options.verbose:
        edited, them = counted(patched.edits, "edited item"), "it" if patched.edits == 1 else "them"
        spliced = f"spliced {edited} into the feeds and pages that show {them}; no other item read"
        unseen = "nothing the feeds show changed (the same bytes, or a draft); nothing else read"
        _echo_err(f"note: feeds: {spliced if patched.edits else unseen}")
    run.say(patched.summary)
    unchanged.remember(run.config, "feeds", "", patched.again, patched.outputs, patched.read, patched.latest)
    return True


def _built_lines(built: Built, digests: bool, again: bool = False) -> list[str]:
    """What a build says; `again`: as the same run says it when nothing changed since."""
    lines = [_summary(built.site), _written("feeds", built.feeds, again)]
    if not digests:
        return lines
    if built.digests is None:
        return [*lines, "digests: skipped; set digest.from and digest.address in bulletin.toml"]
    weeks = ", ".join(r.folder for r in built.digests) or "none with items"
    return [*lines, f"{_written('digests', built.digests_written, again)} (weeks: {weeks})"]


def _window(run: Run, week: str | None, since: str | None, until: str | None) -> Window:
    from .digests.windows import custom, iso_week, last_complete_week

    tz = run.config.timezone
    if week and (since or until):
        raise UsageError("give either --week or --since and --until, not both")
    if bool(since) != bool(until):
        raise UsageError("--since and --until go together (--until is exclusive)")
    if week:
        return iso_week(week, tz)
    if since and until:
        return custom(since, until, tz)
    return last_complete_week(run.now, tz)


def _only(site: Site, topics: str | None) -> list[str] | None:
    if topics is None:
        return None
    from .mail.subscribers import unknown_topics

    slugs = [s.strip() for s in topics.replace(";", ",").split(",") if s.strip()]  # as in a CSV
    known = site.topics.names()
    unknown = [s for s in slugs if s not in known]
    if unknown or not slugs:
        raise UsageError(unknown_topics("--topics", unknown, known))
    return slugs


@main.command()
@click.option("--week", metavar="YYYY-Www", help="An ISO week (default: the last complete week).")
@click.option("--since", metavar="DATE", help="Start of a custom window (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="End of a custom window, exclusive (YYYY-MM-DD).")
@click.option("--topics", metavar="SLUG,...", help="Only these topics (written under emails/custom/).")
@click.option("--partial", is_flag=True, help="Write a week that has not ended (under emails/custom/).")
@global_options
@click.pass_context
def digest(
    ctx: click.Context,
    week: str | None,
    since: str | None,
    until: str | None,
    topics: str | None,
    partial: bool,
) -> None:
    """Write one digest (default: the last complete week).

    A week goes to emails/<week>/ and the archive index; a custom window or topic subset to
    emails/custom/.
    """
    with _running(ctx) as run:
        from .digests.archive import write_window_digest
        from .digests.windows import partial_week

        run.config.require_mail()
        window = partial_week(_window(run, week, since, until), run.now, allowed=partial)
        site = run.read()
        result, written = write_window_digest(site, window, run.report, _only(site, topics))
        if result is None:
            run.say(f"digest {window.label}: no items in this window; nothing written")
            return
        items, sections = (
            counted(result.digest.count, "item"),
            counted(len(result.digest.sections), "section"),
        )
        run.say(
            f"digest {window.label}: {items} in {sections}; {_written('emails/' + result.folder, written)}"
        )


@main.command()
@click.option(
    "--subscribers",
    "subscribers",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A CSV with a header row email,name,topics (default: the ledger's active subscribers).",
)
@click.option("--week", metavar="YYYY-Www", help="The week to send (default: the last complete week).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write every message to .bulletin/outbox/ (a Maildir); send nothing.",
)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), metavar="N", help="At most N messages per second."
)
@click.option("--force", is_flag=True, help="Send a week that ended more than 7 days ago.")
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help="Send one test copy of the all-topics digest, outside the ledger.",
)
@click.option(
    "--connections",
    type=click.IntRange(1, 32),
    default=4,
    show_default=True,
    metavar="N",
    help="SMTP connections to the relay at once.",
)
@click.option(
    "--preview", metavar="ADDRESS", help="Write this subscriber's copy to .bulletin/preview/ (.eml, .html)."
)
@click.option("--new-ledger", is_flag=True, help="Create .bulletin/ledger.sqlite (first send only).")
@click.option("--retry-failed", is_flag=True, help="Also mail addresses suppressed after repeated failures.")
@click.option(
    "--local-links",
    is_flag=True,
    help="Send even though the mail's links point at this machine (a test against a local serve).",
)
@global_options
@click.pass_context
def send(
    ctx: click.Context,
    subscribers: Path | None,
    week: str | None,
    dry_run: bool,
    rate: float | None,
    force: bool,
    to: str | None,
    connections: int,
    preview: str | None,
    new_ledger: bool,
    retry_failed: bool,
    local_links: bool,
) -> None:
    """Mail the week's digest to every subscriber, once.

    Each subscriber gets their topics only; a re-run resumes where a run stopped.
    """
    with _running(ctx) as run:
        from .mail.send import SendOptions, send_digest
        from .tokens import require_secret

        run.config.require_mail(send=True)
        secret = require_secret(os.environ.get("BULLETIN_SECRET"))
        window = _window(run, week, None, None)
        options = SendOptions(
            subscribers=subscribers, window=window, dry_run=dry_run, rate=rate,
            force=force, to=to, new_ledger=new_ledger, retry_failed=retry_failed, preview=preview,
            connections=connections, local_links=local_links,
        )  # fmt: skip
        site = run.read()
        password = os.environ.get("BULLETIN_SMTP_PASSWORD")
        summary = send_digest(site, options, run.report, secret, password, run.progress)
        if dry_run:
            last = f"emptied first ({counted(summary.emptied, 'message')} of the last dry run)"
            run.say(f"outbox: .bulletin/outbox/ {last if summary.emptied else '(empty before this run)'}")
            rows = [
                (a, c, counted(n, "item"), f"{size / 1000:.1f} kB") for a, c, n, size in summary.recipients
            ]
            widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
            for address, chosen, items, size in rows:  # in columns, the numbers to the right
                run.say(
                    f"  {address.ljust(widths[0])}  {chosen.ljust(widths[1])}  "
                    f"{items.rjust(widths[2])}  {size.rjust(widths[3])}"
                )
        for path in summary.previews:
            run.say(str(path))
        run.say(summary.line())
        if summary.aborted:
            raise RefusedError(summary.reason)


@main.command()
@click.argument("who", metavar="ADDRESS|TOKEN")
@click.option("--new-ledger", is_flag=True, help="Create .bulletin/ledger.sqlite if there is none.")
@global_options
@click.pass_context
def unsubscribe(ctx: click.Context, who: str, new_ledger: bool) -> None:
    """Stop mailing an address (or an unsubscribe token's)."""
    with _running(ctx) as run:
        from .mail.unsubscribe import unsubscribe

        secret = os.environ.get("BULLETIN_SECRET")
        run.say(_left(unsubscribe(run.config, who, run.now, secret, new_ledger=new_ledger), "unsubscribed"))


def _left(left: Left, done: str) -> str:
    """What unsubscribing an address did, by what it was before."""
    if left.was in ("active", "pending"):
        return f"{done} {left.address}: send will not mail it again"
    if left.was is not None:
        return f"{left.address} is {left.was} already: send does not mail it"
    if left.suppressed is not None:
        return f"{left.address} is not a subscriber, and is suppressed already ({left.suppressed})"
    return (
        f"{left.address} is not a subscriber; it is suppressed now: send will not mail it, "
        "not even from a --subscribers file"
    )


@main.command()
@global_options
@click.pass_context
def topics(ctx: click.Context) -> None:
    """List topics, slugs, counts and feed URLs."""
    from .build import topic_rows

    with _running(ctx) as run:
        rows = [("TOPIC", "SLUG", "ITEMS", "NEWEST", "FEED")]
        rows += [
            (name, slug, str(count), newest, url) for name, slug, count, newest, url in topic_rows(run.read())
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) if i != 2 else row[i].rjust(widths[i]) for i in range(4)]
            run.show("  ".join([*cells, row[4]]).rstrip())


@main.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, metavar="ADDRESS", help="The address to listen on."
)
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), metavar="N", help="The port."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    metavar="N",
    help="Worker processes.",
)
@new_ledger_option
@click.option("--watch", is_flag=True, help="Preview for authors: rebuild on every change, pages reload.")
@global_options
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, new_ledger: bool, watch: bool) -> None:
    """Serve the subscription pages and the published folders.

    Subscribe with double opt-in, manage topics, unsubscribe (one click too). Put it behind
    a reverse proxy for https.
    """
    with _running(ctx) as run:
        from .web.serve import serve as serve_site

        if watch and workers > 1:
            raise UsageError("--watch previews with one worker; leave out --workers")
        serve_site(run.config, host, port, workers, new_ledger=new_ledger, say=run.say, watch=watch)


@main.group(short_help="Import, export, list, show, add or remove subscribers.")
@global_options
def subscribers() -> None:
    """The subscribers kept in the ledger: import, export, list, show, add, remove."""


def _ledger(run: Run, create: bool = False, *, creates: bool = True) -> Any:
    """The site's ledger. `creates`: the command has --new-ledger, which the message for a
    missing ledger suggests; the others name the commands that create one."""
    from .errors import NoLedgerError
    from .ledger import Ledger

    path = run.config.state_dir / "ledger.sqlite"
    if not creates and not path.exists():
        where = path.relative_to(run.config.site) if path.is_relative_to(run.config.site) else path
        raise NoLedgerError(
            f"no ledger at {where} yet, so no subscribers: 'bulletin subscribers add ADDRESS "
            "--new-ledger', 'subscribers import FILE --new-ledger' or 'serve --new-ledger' creates "
            "it (or restore it from a backup)"
        )
    return Ledger.open(path, create=create)


def _expire_pending(run: Run, ledger: Any) -> None:
    """Forget the requests whose confirmation links have expired: they are nobody's list."""
    from .subscriptions import Subscriptions

    Subscriptions(ledger).expire_pending(run.now, run.config.confirm_hours)


@subscribers.command("import", short_help="Add a CSV's subscribers as active; who left or bounced stays so.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@new_ledger_option
@global_options
@click.pass_context
def subscribers_import(ctx: click.Context, file: Path, new_ledger: bool) -> None:
    """Add a CSV's subscribers as active (addresses that left or bounced stay so)."""
    with _running(ctx) as run:
        from .mail.subscribers import import_subscribers, read_subscribers

        rows = read_subscribers(file, run.read().topics.names(), run.report)  # before the ledger opens
        with _ledger(run, new_ledger) as ledger:
            counts = import_subscribers(rows, ledger, run.now)
        details = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nobody"
        run.say(f"imported {sum(counts.values())} from {file}: {details}")


@subscribers.command("export")
@global_options
@click.pass_context
def subscribers_export(ctx: click.Context) -> None:
    """Write every subscriber, with status and consent, as CSV to stdout."""
    with _running(ctx) as run:
        from .mail.subscribers import export_subscribers

        with _ledger(run, creates=False) as ledger:
            _expire_pending(run, ledger)
            try:
                export_subscribers(ledger, sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:  # `| head`: the reader took what it wanted
                _to_devnull(sys.stdout)


@subscribers.command("list")
@click.option("--topic", metavar="SLUG", help="Only subscribers who get this topic.")
@click.option(
    "--status",
    type=click.Choice(["pending", "active", "unsubscribed", "bounced", "complained"]),
    help="Only subscribers with this status.",
)
@global_options
@click.pass_context
def subscribers_list(ctx: click.Context, topic: str | None, status: str | None) -> None:
    """List subscribers: address, status, topics, name."""
    with _running(ctx) as run:
        from .subscriptions import Subscriptions

        with _ledger(run, creates=False) as ledger:
            _expire_pending(run, ledger)
            rows = Subscriptions(ledger).rows(status, topic)
        if topic is not None:
            from .mail.subscribers import rows_for_topic

            rows = rows_for_topic(run.config, run.now, topic, rows, run.report)
        table = [("EMAIL", "STATUS", "TOPICS", "NAME")]
        for r in rows:  # escaped: a name holding terminal controls must not drive the terminal
            topics = ";".join(sorted(r.topics)) if r.topics else "*"
            table.append((printable(r.email), r.status, printable(topics), printable(r.name)))
        widths = [max(len(row[i]) for row in table) for i in range(3)]
        for row in table:
            run.show("  ".join([*(row[i].ljust(widths[i]) for i in range(3)), row[3]]).rstrip())


@subscribers.command("add")
@click.argument("address")
@click.option("--name", default="", help="The name for the greeting.")
@click.option("--topics", metavar="A;B", help="Topic slugs separated by ';' (default: every topic).")
@new_ledger_option
@global_options
@click.pass_context
def subscribers_add(
    ctx: click.Context, address: str, name: str, topics: str | None, new_ledger: bool
) -> None:
    """Add one subscriber as active (you vouch for their consent)."""
    with _running(ctx) as run:
        from .mail.subscribers import check_address, parse_topics
        from .subscriptions import Subscriptions, clean_name

        email = check_address(address)
        chosen = parse_topics(topics, run.read().topics.names())
        with _ledger(run, new_ledger) as ledger:
            store = Subscriptions(ledger)
            before = store.get(email)
            status = store.add(email, clean_name(name), chosen, run.now, "cli")
        if status == "unsubscribed":
            raise RefusedError(f"{email} is {status}; it stays so (they can subscribe again on the web)")
        if status != "active":
            raise RefusedError(f"{email} is {status}; it stays so: bulletin never mails it again")
        run.say(_added(email, before, clean_name(name), chosen))


def _added(email: str, before: Row | None, name: str, topics: frozenset[str] | None) -> str:
    """What `subscribers add` did: added the address, or what it changed of a subscriber's."""
    if before is None:
        return f"added {email}: active"

    def listed(chosen: frozenset[str] | None) -> tuple[str, bool]:
        return ("every topic", True) if chosen is None else (", ".join(sorted(chosen)), len(chosen) == 1)

    changed = []
    if before.status != "active":
        changed.append(f"active (was {before.status})")
    if before.topics != topics:
        (now, _), (was, one) = listed(topics), listed(before.topics)
        changed.append(f"topics {now} ({'was' if one else 'were'} {was})")
    if before.name != name:
        changed.append(f"name '{name}' (was '{before.name}')")
    if not changed:
        return f"{email} is a subscriber already: nothing changed"
    return printable(f"updated {email}: {'; '.join(changed)}")


@subscribers.command("remove", short_help="Unsubscribe one address, until it subscribes again.")
@click.argument("address")
@global_options
@click.pass_context
def subscribers_remove(ctx: click.Context, address: str) -> None:
    """Unsubscribe one address: it is never mailed again unless it subscribes again."""
    with _running(ctx) as run:
        from .mail.subscribers import check_address
        from .mail.unsubscribe import Left
        from .subscriptions import Subscriptions

        email = check_address(address, stored=True)
        with _ledger(run, creates=False) as ledger:
            store = Subscriptions(ledger)
            found, suppressed = store.get(email), ledger.suppression(email)
            store.leave(email, run.now, reason="removed by the operator")
        run.say(_left(Left(email, None if found is None else found.status, suppressed), "removed"))


@subscribers.command("show", short_help="One address: status, history and reasons, reports, sends.")
@click.argument("address")
@global_options
@click.pass_context
def subscribers_show(ctx: click.Context, address: str) -> None:
    """What the ledger holds about one address: status, topics, consent, every change and
    its reason, bounce and complaint reports, and whether the last sends mailed it."""
    with _running(ctx) as run:
        from .addresses import normalise_address
        from .mail.status import subscriber_lines
        from .mail.subscribers import check_address

        email = normalise_address(check_address(address, stored=True))
        with _ledger(run, creates=False) as ledger:
            lines = subscriber_lines(ledger, email)
        for line in lines:  # names, consent text and diagnostics come from outside: escaped
            run.show(printable(line))


@main.command(short_help="Read bounce and complaint reports; prune the list.")
@click.argument("source", default="-", metavar="[MAILDIR|MBOX|FILE.eml|-]")
@global_options
@click.pass_context
def bounces(ctx: click.Context, source: str) -> None:
    """Read bounce and complaint reports (default: one from standard input).

    They come from a Maildir, an mbox file, one saved message, or standard input (-).

    Permanent failures and complaints stop mail to an address at once, transient failures
    in three separate weeks too. Reports that match nobody are kept aside.
    """
    with _running(ctx) as run:
        from .mail.bounces import read_bounces

        secret = os.environ.get("BULLETIN_SECRET") or ""
        if run.config.digest.bounce_address:
            from .tokens import require_secret

            secret = require_secret(secret)  # VERP tags are signed with it
        with _ledger(run, creates=False) as ledger:
            summary = read_bounces(run.config, source, ledger, secret, run.report, run.now, sys.stdin.buffer)
        run.say(summary.line())


@main.command(short_help="Subscribers per status and topic, sends, bounces.")
@global_options
@click.pass_context
def status(ctx: click.Context) -> None:
    """Subscribers per status and topic, the last sends, bounces and complaints."""
    with _running(ctx) as run:
        from .mail.status import collect_status

        topics = [(topic.name, topic.slug) for topic in run.read().topics.sorted()]
        with _ledger(run, creates=False) as ledger:
            _expire_pending(run, ledger)
            report = collect_status(ledger, topics)
        for line in report.lines():
            run.show(line)


@main.command(short_help="Start a new site: bulletin.toml, two items, more.")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path), metavar="[DIR]")
@global_options
@click.pass_context
def init(ctx: click.Context, folder: Path | None) -> None:
    """Start a new site in DIR (default: --site, else the current folder): a commented
    bulletin.toml, two items, subscribers.csv, .gitignore."""
    from .init import init_site

    options = ctx.find_object(Options) or Options()
    if folder is None:
        folder = options.site
    elif options.site_given and options.site != folder:
        raise click.UsageError(f"two folders given, {folder} and --site {options.site}; give one")
    try:
        written = init_site(folder, datetime.now(UTC))
    except BulletinError as exc:
        click.echo(f"bulletin: {exc}", err=True)
        ctx.exit(exc.exit_code)
    except OSError as exc:  # a parent that is a file, a read-only or deleted folder
        where = os.fsdecode(exc.filename) if exc.filename is not None else str(folder)
        why = exc.strerror or str(exc)
        _echo_err(f"bulletin: {where}: error: cannot create the site there: {why}; choose another folder")
        ctx.exit(3)
    from .init import hidden_slugs

    hidden = hidden_slugs(folder)
    if hidden is not None:
        _echo_err(f"note: {hidden}")
    if not options.quiet:
        click.echo(f"A new site in {folder}: {', '.join(written)}")
        if "content/first-item.md" not in written:
            click.echo("content/ holds items already: no starter items were added beside them")
        # A path through '..' is where the system put it, which a shell's cd (which undoes
        # links by text) may not find: the hint names it whole.
        shown = folder.resolve() if ".." in folder.parts else folder
        click.echo(_NEXT_STEPS.format(cd="" if folder == Path(".") else f"\n  cd {shown}"))


_NEXT_STEPS = """Next:{cd}
  bulletin build                   feeds/ and emails/ from content/
  export BULLETIN_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
                                   signs the links in every mail: keep it
  bulletin send --dry-run --subscribers subscribers.csv
                                   every message into .bulletin/outbox/, nothing sent
  bulletin serve --new-ledger      the subscribe pages on http://127.0.0.1:8000/
Before a real send, change the values marked CHANGE in bulletin.toml."""
