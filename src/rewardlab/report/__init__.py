"""``rewardlab report``: one self-contained HTML page (images embedded) from any run directory.

:func:`write_report` finds what the run directory holds (:mod:`rewardlab.report.collect`), draws
each section it can (:mod:`rewardlab.report.sections`, a registry) and writes one page
(:mod:`rewardlab.report.html`) that names the sections the run does not have."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_report"]


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``); returns the path."""
    from rewardlab.report.html import write_report as _write

    return _write(run_dir, out)
