"""Report sections (an open set: a registry). Each section reads what it needs from the run
directory and returns its HTML, or ``None`` when the run does not have it (the page then names it
under "Not in this run").

Register one with::

    @section("name", "Title", needs="FILE (written by ...)", order=50)
    def render(run: RunDir) -> str | None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rewardlab.registry import Registry
from rewardlab.report.collect import RunDir


@dataclass(frozen=True)
class Section:
    """One part of the page: its title, the file(s) it needs, where it goes, how it renders."""

    title: str
    needs: str
    order: int
    render: Callable[[RunDir], str | None]


SECTIONS: Registry[Section] = Registry("report section")


def section(name: str, title: str, needs: str, order: int) -> Callable:
    """Decorator registering a render function as section ``name``."""

    def deco(fn: Callable[[RunDir], str | None]) -> Callable[[RunDir], str | None]:
        SECTIONS.add(name, Section(title, needs, order, fn))
        return fn

    return deco


def ordered_sections() -> list[Section]:
    """Every registered section, in page order."""
    from rewardlab.report.sections import evaluation, model, recipes  # noqa: F401  (register)

    return sorted((SECTIONS.get(n) for n in SECTIONS.names()), key=lambda s: s.order)


__all__ = ["SECTIONS", "Section", "ordered_sections", "section"]
