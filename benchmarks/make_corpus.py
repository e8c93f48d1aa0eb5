#!/usr/bin/env python3
"""Write a deterministic corpus of curated items shaped like tests/data/seed.md.

Every file has the seed's layout: a YAML front matter block (same keys,
same quoting styles: plain, single-quoted, folded '>-') and an HTML body.
Topics follow a Zipf-like spread, so a few feeds are large and many small.

    python3 make_corpus.py OUT_DIR --items 10000 [--seed 7] [--start 2019-01-01] [--days 1460]

Writes OUT_DIR/news/<uuid>.md and prints a one-line summary. Only the
standard library is used, so it runs before anything is installed.
"""

import argparse
import datetime as dt
import random
import re
import textwrap
import unicodedata
import uuid
from pathlib import Path

TOPICS = [
    "Gartner: Healthcare",
    "Gartner: Health Analytics",
    "Gartner: Payer Operations",
    "Gartner: Provider IT",
    "Gartner: Life Sciences",
    "Gartner: Clinical Communication",
    "KLAS: Scheduling - Nurse and Staff",
    "KLAS: Revenue Cycle - Claims",
    "KLAS: Patient Engagement",
    "KLAS: EHR - Acute Care",
    "KLAS: EHR - Ambulatory",
    "KLAS: Population Health",
    "KLAS: Patient Access",
    "KLAS: Telehealth Platforms",
    "KLAS: Imaging & PACS",
    "Symplur: Virtual Care",
    "Symplur: Digital Health",
    "Symplur: Patient Advocacy",
    "Symplur: Mental Health",
    "Symplur: Oncology",
    "Symplur: Diabetes",
    "Medigy: AI & Machine Learning",
    "Medigy: Cybersecurity",
    "Medigy: Interoperability / FHIR",
    "Medigy: Remote Patient Monitoring",
    "Medigy: Value-Based Care",
    "Medigy: Pharmacy",
    "Medigy: Health Equity",
    "Medigy: Nursing",
    "Medigy: Clinical Trials",
    "Medigy: Genomics",
    "Medigy: Wearables",
    "Medigy: Price Transparency",
    "Medigy: Home Health",
    "Medigy: Behavioral Health",
    "Medigy: Rural Health",
    "Medigy: Café Talks",
    "Medigy: Über-Care Models",
    "Medigy: Workforce",
    "Medigy: Policy & Regulation",
]
CATEGORY_LABEL = {"Gartner": "Healthcare", "KLAS": "Vendors", "Symplur": "Community", "Medigy": "Innovation"}
BRANDS = [
    "medicalnewstoday.com",
    "beckershospitalreview.com",
    "fiercehealthcare.com",
    "healthcareitnews.com",
    "statnews.com",
    "mobihealthnews.com",
    "modernhealthcare.com",
]
AUTHORS = [
    "Radhika Narayanan",
    "Geoff Gorman",
    "Shahid Shah",
    "María José Ortega",
    "Zoë O'Brien",
    "Chen Wei",
    "Amara Okafor",
    "Lukas Müller",
    "Priya Raman",
    "Tom Baker",
]
WORDS = [
    "patients",
    "clinicians",
    "hospitals",
    "therapy",
    "stem",
    "cell",
    "trial",
    "outcomes",
    "payers",
    "data",
    "interoperability",
    "telehealth",
    "nurses",
    "staffing",
    "burnout",
    "revenue",
    "claims",
    "denial",
    "AI",
    "model",
    "imaging",
    "oncology",
    "diabetes",
    "care",
    "remote",
    "monitoring",
    "policy",
    "equity",
    "rural",
    "pharmacy",
    "genomics",
    "wearables",
    "privacy",
    "security",
    "breach",
    "workflow",
    "adoption",
    "study",
    "results",
    "safety",
    "cost",
]
OFFERINGS = [
    "Emulait Starter Kit",
    "DeepIntent Platform",
    "Medix Healthcare",
    "Spect's enterprise solution",
    "Salvo Health Platform",
    "CareFlow Navigator",
    "Nurse Rota Pro",
    "ClaimSight",
    "TeleVisit Hub",
]


def q(value):
    """Quote a scalar the way the seed does: plain when safe, else single-quoted."""
    if value is None:
        return "null"
    text = str(value)
    if (
        text
        and re.fullmatch(r"[A-Za-z][A-Za-z0-9 .,()/_\-]*", text)
        and not text.endswith(" ")
        and text.lower() not in ("null", "true", "false", "yes", "no", "on", "off")
    ):
        return text
    return "'" + text.replace("'", "''") + "'"


def folded(value, indent):
    pad = " " * indent
    lines = textwrap.wrap(value, 78 - indent) or [""]
    return ">-\n" + "\n".join(pad + line for line in lines)


def slugify(text):
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def sentence(rng, lo, hi):
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize()


def body_html(rng, title):
    paragraphs = []
    for _ in range(max(1, int(rng.lognormvariate(1.8, 0.6)))):
        parts = []
        for _ in range(rng.randint(2, 6)):
            s = sentence(rng, 8, 22)
            if rng.random() < 0.3:
                w = rng.choice(WORDS)
                s += (
                    f' <a href="https://www.{rng.choice(BRANDS)}/articles/{rng.randint(1000, 99999)}">'
                    f"{w}Trusted Source</a>"
                )
            parts.append(s + ".")
        paragraphs.append("<p>" + " ".join(parts) + "</p>")
        if rng.random() < 0.2:
            paragraphs.append("<p><strong>" + sentence(rng, 3, 8) + "?</strong></p>")
        if rng.random() < 0.1:
            items = "".join(f"<li>{sentence(rng, 2, 6)} &amp; more</li>" for _ in range(rng.randint(2, 5)))
            paragraphs.append(f"<ul>{items}</ul>")
    return "<p>" + title + " — what it means for care teams.</p>" + "".join(paragraphs)


def zipf_topic(rng):
    weights = [1.0 / (rank + 1) for rank in range(len(TOPICS))]
    return rng.choices(TOPICS, weights=weights)[0]


def item(rng, n, start, days):
    topics = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        t = zipf_topic(rng)
        if t not in topics:
            topics.append(t)
    day = start + dt.timedelta(days=rng.randrange(days))
    modified = dt.datetime.combine(
        day, dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60), rng.randrange(1000000))
    )
    title = sentence(rng, 4, 11)
    if rng.random() < 0.15:
        title += ": Explanation & safety"
    if rng.random() < 0.05:
        title = "“" + title + "” — what’s next"
    brand = rng.choice(BRANDS)
    href = f"https://www.{brand}/articles/{slugify(title)[:60]}-{n}"
    desc_full = sentence(rng, 25, 45) + "."
    desc = desc_full[: rng.randint(90, 200)]  # the seed's description is cut mid-sentence
    og = desc_full
    ident = 100000 + n  # clear of the seed's id 11904
    name = str(uuid.UUID(int=rng.getrandbits(128), version=5))
    slug = f"{brand.split('.')[0]}-{slugify(title)}"
    author = rng.choice(AUTHORS)
    topic_lines = "\n".join(f"  - {q(t)}" for t in topics)
    slug_lines = "\n".join(f"  - {q(t.lower())}" for t in topics)
    url_lines = "\n".join(f"  - topic/{slugify(t)}" for t in topics)
    label_lines = "\n".join(f"  - {CATEGORY_LABEL[t.split(':')[0]]}" for t in topics)
    offerings = []
    for _k in range(rng.randint(0, 5)):
        label = rng.choice(OFFERINGS)
        offerings.append(
            f"  - label: {q(label)}\n    permalink: /offering/{slugify(label)}\n    categories:\n"
            + "\n".join(f"      - {q(t)}" for t in topics[:2])
            + f"\n    offeringId: {16000 + rng.randrange(2000)}"
        )
    offerings_block = ("relatedOfferings:\n" + "\n".join(offerings)) if offerings else "relatedOfferings: []"
    front = f"""---
aliases: /news/{slugify(title)}
archetype: curated-content
author:
  - {q(author)}
basePath: /news/
breadcrumbLinks:
  - /
  - /news/
  - ''
breadcrumbs:
  - Home
  - News
  - {q(title)}
categories:
{topic_lines}
categorySlug:
{slug_lines}
categoryUrl:
{url_lines}
categoryLabel:
{label_lines}
contentCategories: netspective-medigy-news-curated-content
institution: null
offering: null
layOut: single
date: '{day.isoformat()}'
description: {folded(desc, 2)}
favIconImage: null
featuredImage:
  alt: {q(title)}
  format: JPEG
  href: {name}-featuredImage.jpeg
  size:
    - {rng.randint(300, 900)}
    - {rng.randint(300, 900)}
  valid: true
  workPackage: {ident}
  wpAttachment:
    fileName: Curated_Featured_Image.jpg
    link: /api/v3/attachments/{20000 + n}/content
featuredPdf: null
htmlMetaData:
  author: In collaboration with CorroHealth
  description: {folded(sentence(rng, 10, 20) + ".", 4)}
  generator: null
  viewport: 'width=device-width, initial-scale=1'
  ogdescription: {folded(og, 4)}
  ogtitle: {q(title)}
  keywords: '{rng.choice(WORDS)}, {rng.choice(WORDS)}'
id: {ident}
identifier: News
lastMod: '{modified.isoformat()}Z'
link:
  brand: {brand}
  href: '{href}'
  original: '{href}'
href: '{href}'
original: '{href}'
mastHead: NEWS
mdName: {name}.md
openGraphMetaData:
  ogdescription: {folded(og, 4)}
  ogtitle: {q(title)}
  ogurl: null
  ogimage: null
openProjectCustomFields:
  cleanUrl: '{href}'
  medigyTopics:
{chr(10).join("    - " + q(t) for t in topics)}
  sourceUrl: '{href}'
openProjectWorkPackageType: Curated Content
searchCategory: News
slug: >-
  {slug}
source: open-project-curations
status: ''
sub: brief
tags:
  - News
title: {q(title)}
via: ' '
insights_description: null
insights_name: null
viaLink: null
{offerings_block}
twitterMetaData:
  twittercard: null
  twitterdescription: {folded(og, 4)}
  twittertitle: {q(title)}
  twitterimage: >-
    https://www.{brand}/assets/images/og-image.png
  twitterurl: null
---
"""
    return name, front + body_html(rng, title) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2019-01-01")
    ap.add_argument("--days", type=int, default=1460)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    start = dt.date.fromisoformat(args.start)
    folder = args.out / "news"
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for n in range(args.items):
        name, text = item(rng, n, start, args.days)
        data = text.encode("utf-8")
        (folder / f"{name}.md").write_bytes(data)
        total += len(data)
    print(f"{args.items} items, {total / 1e6:.1f} MB, in {folder}")


if __name__ == "__main__":
    main()
