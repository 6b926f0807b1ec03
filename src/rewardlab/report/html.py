"""The report page: small HTML helpers (escaped cells, tables, embedded images) and
:func:`write_report`, which renders every registered section the run directory has.

The page is one file: inline CSS, images as data URIs, no script, and a Content-Security-Policy
that forbids loading anything else (a browser refuses — and logs — any outside request)."""

from __future__ import annotations

import datetime as _dt
import html
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
REPORT = "report.html"

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;
  color:#1d2330}
main{max-width:1120px;margin:0 auto;padding:18px 28px 40px;background:#fff;min-height:100vh}
h1{font-size:1.55em;margin:.3em 0 .1em}
h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #dde1e7;padding-bottom:.2em}
h3{font-size:1em;margin:1.1em 0 .3em} p,li{line-height:1.45} .meta{color:#5b6472;font-size:.9em}
table{border-collapse:collapse;margin:.4em 0 .8em;font-size:.86em}
th,td{border:1px solid #d5dae1;padding:3px 8px;text-align:right} th{background:#eef1f5}
td:first-child,th:first-child{text-align:left} tr:nth-child(even) td{background:#fafbfc}
img{max-width:100%;height:auto;display:block;margin:.3em 0 .6em;border:1px solid #eceff3}
.note{background:#fff8e1;border:1px solid #f0d98a;padding:5px 10px;border-radius:4px;font-size:.8em;
  color:#5b4a12}
.toc{font-size:.9em} td.t{text-align:left} td{white-space:nowrap} .tw{overflow-x:auto}
.files{color:#5b6472;font-size:.85em} code{background:#f0f2f5;padding:0 3px;border-radius:3px}
"""


def esc(x: object) -> str:
    """HTML-escaped text of ``x``."""
    return html.escape(str(x))


class Raw(str):
    """A cell or fragment that is already HTML (not escaped again)."""


def cell(x: object) -> str:
    """A table cell (``<td>``): :class:`Raw` as is, ``None`` empty, anything else escaped; text
    that is not a number is left-aligned."""
    if isinstance(x, Raw):
        return f"<td>{x}</td>"
    text = "" if x is None else str(x)
    numeric = not text or text[0] in "0123456789+-−—[." or text.startswith("<b>")
    return f"<td{'' if numeric else ' class=t'}>{esc(text)}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An HTML table; cells through :func:`cell`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows)
    return f'<div class="tw"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def img(uri: str, alt: str) -> str:
    """An embedded figure (``uri`` a data URI from :mod:`rewardlab.report.figures`)."""
    return f'<img src="{uri}" alt="{esc(alt)}">'


def p(text: str) -> str:
    """A paragraph of escaped text."""
    return f"<p>{esc(text)}</p>"


def pct(x: float | None, half: float | None = None, digits: int = 1) -> str:
    """``x`` as a percentage (``± half`` when given); empty for ``None``."""
    if x is None:
        return ""
    s = f"{100 * x:.{digits}f}"
    return s if half is None else f"{s} ± {100 * half:.{digits}f}"


def bold(s: str) -> Raw:
    """Bold, escaped."""
    return Raw(f"<b>{esc(s)}</b>")


def page(
    title: str,
    subtitle: str,
    sections: list[tuple[str, str]],
    absent: list[tuple[str, str]],
    files: list[str],
) -> str:
    """The whole document: ``sections`` are (title, HTML body); ``absent`` (title, what it needs)."""
    parts = [f"<h1>{esc(title)}</h1>", f'<p class="meta">{esc(subtitle)}</p>']
    if not sections:
        parts.append(p("This directory holds nothing a report can draw."))
    toc = " · ".join(f'<a href="#s{i}">{esc(t)}</a>' for i, (t, _) in enumerate(sections))
    if toc:
        parts.append(f'<p class="toc">{toc}</p>')
    if absent:
        items = "; ".join(f"{esc(t)} ({esc(n)})" for t, n in absent)
        parts.append(f'<p class="note" id="absent"><b>Not in this run</b>, so not shown: {items}.</p>')
    for i, (t, body) in enumerate(sections):
        parts.append(f'<section id="s{i}"><h2>{esc(t)}</h2>{body}</section>')
    parts.append(f'<p class="files">Read: {esc(", ".join(files) or "nothing")}</p>')
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        + "\n".join(parts)
        + "</main></body></html>\n"
    )


def render(run_dir: str | Path) -> str:
    """The report page of ``run_dir`` as one HTML string."""
    from rewardlab.report.collect import RunDir
    from rewardlab.report.sections import ordered_sections

    run = RunDir(Path(run_dir))
    done, absent = [], []
    for sec in ordered_sections():
        body = sec.render(run)
        if body is None:
            absent.append((sec.title, sec.needs))
        else:
            done.append((sec.title, body))
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return page(
        f"rewardlab report: {run.path.resolve().name}",
        f"{run.path.resolve()} · written {now}",
        done,
        absent,
        run.used,
    )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``); returns the path."""
    out = Path(out) if out is not None else Path(run_dir) / REPORT
    text = render(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("report: %s (%.0f kB)", out, len(text) / 1024)
    return out
