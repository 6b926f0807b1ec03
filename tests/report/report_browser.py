"""Headless Chromium checks of an HTML page: every image decoded, no console message, a screenshot.

Debian's ``chromium`` (installed by scripts/setup.sh). A copy of the page gets one inline script
(and a CSP that admits it) that writes each image's natural size into the DOM after ``load``;
``--dump-dom`` returns it. The unmodified page is loaded again for the screenshot, with console
logging on: any console line (a script error, a CSP refusal of an outside resource) is reported."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CHECK = (
    "<script>window.addEventListener('load', () => { const pre = document.createElement('pre');"
    " pre.id = 'rl-check'; pre.textContent = JSON.stringify([...document.images].map(i =>"
    " ({alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})));"
    " document.body.appendChild(pre); });</script>"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


@dataclass
class PageCheck:
    """What the browser saw: per image {alt, complete, width, height}, console lines, screenshot."""

    images: list[dict]
    console: list[str]
    screenshot: Path


def chromium() -> str:
    """The browser binary; fails (never skips) when set-up did not install it."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is not on PATH: run scripts/setup.sh (it installs Debian's chromium)"
    return exe


def _run(args: list[str], timeout: int = 90) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), *FLAGS, *args], capture_output=True, text=True, timeout=timeout)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def check_page(page: Path, work: Path, height: int = 3000) -> PageCheck:
    """Load ``page`` in headless Chromium: image sizes, console lines of both loads, a screenshot."""
    work.mkdir(parents=True, exist_ok=True)
    text = page.read_text(encoding="utf-8")
    probe = work / "probe.html"
    probe_text = text.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
    probe.write_text(probe_text.replace("</body>", CHECK + "</body>", 1), encoding="utf-8")
    dom = _run(["--virtual-time-budget=10000", "--dump-dom", probe.resolve().as_uri()])
    found = re.search(r'<pre id="rl-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the check script did not run: {dom.stderr[-2000:]}"
    images = json.loads(html.unescape(found.group(1)))
    shot = work / "screenshot.png"
    snap = _run([f"--window-size=1200,{height}", f"--screenshot={shot}", page.resolve().as_uri()])
    assert shot.exists(), snap.stderr[-2000:]
    return PageCheck(images, _console(dom.stderr) + _console(snap.stderr), shot)


def nonblank(png: Path) -> float:
    """Share of the screenshot's pixels that are not the page background (its commonest colour)."""
    from PIL import Image

    im = Image.open(png).convert("RGB")
    colors = im.getcolors(maxcolors=1 << 24)
    top = max(c for c, _ in colors)
    return 1 - top / (im.width * im.height)
