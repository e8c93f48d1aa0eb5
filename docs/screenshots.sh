#!/usr/bin/env bash
# Regenerate docs/digest-*.png and docs/page-*.png: the example site's newest digest (2026-W47) in headless
# Chromium (Debian's `chromium` package: apt-get install chromium) at a desktop width, at
# the 600 px the layout is designed for, and at a phone's 375 px.
#
# The example site's featured images are not online, so the copy that is photographed
# shows a grey placeholder of the same size in their place.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/bulletin build --now 2026-11-25T12:00 -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python - "$work/digest.html" <<'PY'
import re, sys, urllib.parse
html = open("emails/2026-W47/digest.html", encoding="utf-8").read()
def placeholder(match):
    width, height = match.group(2), match.group(3)
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
           f"<rect width='100%' height='100%' rx='4' fill='#d1d5db'/></svg>")
    return f'{match.group(1)}"data:image/svg+xml,{urllib.parse.quote(svg)}" alt="'
html = re.sub(r'(<img src=)"[^"]+featuredImage[^"]*" alt="(?=[^"]*" width="(\d+)" height="(\d+)")',
              lambda m: placeholder(m), html)
open(sys.argv[1], "w", encoding="utf-8").write(html)
PY
for size in 800,1900 600,2000 375,2500; do
    width=${size%,*}
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/profile" --hide-scrollbars --window-size="$size" \
        --screenshot="docs/digest-$width.png" "file://$work/digest.html" 2>/dev/null
done
ls -l docs/digest-*.png

# bulletin serve's pages, at a desktop width and a phone's.
.venv/bin/python docs/pages.py
ls -l docs/page-*.png
