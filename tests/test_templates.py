"""Templates: a site's templates/ override bulletin's; a broken one is reported, not a traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from bulletin.cli import main

from .conftest import SiteMaker

NOW = ["--now", "2026-11-25T12:00"]
SHIPPED = Path(__file__).parent.parent / "src" / "bulletin" / "templates"
MAIL = {"from": "News <news@example.org>", "address": "1 Road, Town"}


def run(site: SiteMaker, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--site", str(site.root), *NOW], catch_exceptions=False)


def mail_site(site: SiteMaker) -> SiteMaker:
    site.write_config(digest=dict(MAIL))
    site.item("a.md", id="a", title="Alpha", date="2026-11-18", categories=["Gartner: Healthcare"])
    site.item("b.md", id="b", title="Beta", date="2026-11-19", categories=["Medigy: Café Talks"])
    return site


def override(site: SiteMaker, name: str, text: str) -> None:
    folder = site.root / "templates"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_a_syntax_error_names_the_template_and_line(site: SiteMaker) -> None:
    mail_site(site)
    override(
        site,
        "topic.html.j2",
        '{% extends "_feeds_base.html.j2" %}\n{% block body %}\n{% if %}x{% endif %}\n{% endblock %}\n',
    )
    result = run(site, "build")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "templates/topic.html.j2:3: error: Expected an expression, got 'end of statement block'; "
        "fix the template, or remove it from templates/ to use bulletin's own\n"
    )


def test_an_undefined_variable_names_the_template_and_line(site: SiteMaker) -> None:
    mail_site(site)
    item = (SHIPPED / "_digest_item.html.j2").read_text(encoding="utf-8")
    override(site, "_digest_item.html.j2", item.replace("{{ item.title }}", "{{ item.titel }}", 1))
    line = item.split("{{ item.title }}")[0].count("\n") + 1
    result = run(site, "digest", "--week", "2026-W47")
    assert result.exit_code == 2
    assert result.stderr == (
        f"templates/_digest_item.html.j2:{line}: error: 'dict object' has no attribute 'titel'; "
        "fix the template, or remove it from templates/ to use bulletin's own\n"
    )


def test_a_missing_include_names_the_template_that_includes_it(site: SiteMaker) -> None:
    mail_site(site)
    override(site, "feeds.opml.j2", '<?xml version="1.0"?>\n<opml>\n{% include "nowhere.j2" %}\n</opml>\n')
    result = run(site, "feeds")
    assert result.exit_code == 2
    assert result.stderr == (
        "templates/feeds.opml.j2:3: error: template 'nowhere.j2' not found; "
        "fix the template, or remove it from templates/ to use bulletin's own\n"
    )


def test_a_syntax_error_in_an_included_template_names_that_template(site: SiteMaker) -> None:
    mail_site(site)
    override(site, "_digest_item.html.j2", "<p>\n{{ item.title }\n</p>\n")
    result = run(site, "build")
    assert result.exit_code == 2
    assert result.stderr == (
        "templates/_digest_item.html.j2:2: error: unexpected '}'; "
        "fix the template, or remove it from templates/ to use bulletin's own\n"
    )
