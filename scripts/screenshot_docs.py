"""Screenshots of pages of the built documentation, taken by headless Chromium through a local HTTP server (as a
reader opens the site offline), so that a person can look at how they render.

    python -m sphinx -W -c docs -b html . docs/_build/html
    python scripts/screenshot_docs.py docs/_build/html --out runs/screenshots \\
        docs/index.html docs/generated/api/torchrl_liir.objectives.LIIRLoss.html \\
        docs/generated/tutorials/03_meta_gradient.html

Needs Chromium (Debian: ``apt-get install chromium``). Writes one PNG per page, named after it.
"""
from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# No network: without these flags Chromium's background connections are refused many at a time.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def screenshot(chromium: str, url: str, out: Path, width: int, height: int) -> None:
    """Writes ``url`` as rendered in a ``width`` × ``height`` window to ``out``."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={out}", url], check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built site (sphinx's html output directory)")
    parser.add_argument("pages", nargs="+", help="pages, relative to the site")
    parser.add_argument("--out", type=Path, required=True, help="directory of the PNGs")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1600)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        sys.exit("error: no Chromium on PATH (Debian: apt-get install chromium)")
    for page in args.pages:
        if not (args.site / page).is_file():
            sys.exit(f"error: {args.site / page}: no such page")
    args.out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(args.site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for page in args.pages:
            out = args.out / (page.replace("/", "_").removesuffix(".html") + ".png")
            screenshot(chromium, f"http://127.0.0.1:{server.server_port}/{page}", out.resolve(), args.width,
                       args.height)
            print(out)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
