"""Charts for the finance page, drawn on the server as inline SVG (no script, no style attribute).

Each chart is an accessible image (`role="img"` with a title and a description) and comes with the
figures it draws, which the page also gives as a table for people who would rather read.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from reconciliation.models import Run, RunStatus

WIDTH, HEIGHT, AXIS = 640, 220, 28
MATCHED, UNMATCHED = "#0b5c3b", "#a4161a"  # the page's ok and error colours, readable on white
AGE_BANDS = ((0, 1), (1, 3), (3, 7), (7, None))


@dataclass(frozen=True)
class DayFigures:
    """What the completed runs of one day matched and did not, in absolute money."""

    day: date
    matched: int
    unmatched: int


def daily_figures(session: Session, last_day: date, days: int = 7) -> list[DayFigures]:
    """Matched against unmatched amounts for each of the `days` days up to `last_day` (latest run each)."""
    first = last_day - timedelta(days=days - 1)
    runs = session.scalars(
        select(Run)
        .where(Run.status == RunStatus.COMPLETED, Run.business_day.between(first, last_day))
        .order_by(Run.id)
    ).all()
    latest: dict[tuple[date, str], Run] = {(r.business_day, r.provider): r for r in runs}
    figures = []
    for n in range(days):
        day = first + timedelta(days=n)
        matched = unmatched = 0
        for (run_day, _provider), run in latest.items():
            if run_day != day or run.summary is None:
                continue
            for name, result in run.summary["results"].items():
                amount = max(abs(result["provider_amount"]), abs(result["ledger_amount"]))
                if name == "matched":
                    matched += amount
                else:
                    unmatched += amount
        figures.append(DayFigures(day, matched, unmatched))
    return figures


def case_ages(session: Session, now: datetime) -> list[tuple[int, int | None, int, int]]:
    """Open cases by age in days: (from, to, count, amount) for each band."""
    rows = session.execute(
        text(
            """SELECT extract(epoch FROM :now - created_at) / 86400 AS age,
                      abs(coalesce(provider_amount, 0) - coalesce(ledger_amount, 0)) AS amount
               FROM recon_case WHERE status <> 'resolved'"""
        ),
        {"now": now},
    ).all()
    bands = []
    for low, high in AGE_BANDS:
        inside = [r for r in rows if r.age >= low and (high is None or r.age < high)]
        bands.append((low, high, len(inside), sum(int(r.amount) for r in inside)))
    return bands


def _svg(title: str, description: str, body: Sequence[str], chart_id: str) -> Markup:
    # Every piece of text in `body` and here is escaped where it is made; the rest are numbers.
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + AXIS}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704


def bars(
    groups: Sequence[tuple[str, Sequence[int]]],
    colours: Sequence[str],
    *,
    title: str,
    description: str,
    chart_id: str,
) -> Markup:
    """Grouped bars: one group per label, one bar per series, scaled to the largest value."""
    top = max([v for _label, values in groups for v in values] or [0]) or 1
    slot = WIDTH / max(len(groups), 1)
    width = slot * 0.8 / max(len(colours), 1)
    body = [f'<line x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" stroke="#4a5360"/>']
    for index, (label, values) in enumerate(groups):
        left = index * slot + slot * 0.1
        for series, value in enumerate(values):
            height = round(HEIGHT * 0.92 * value / top, 1)
            x = round(left + series * width, 1)
            body.append(
                f'<rect x="{x}" y="{round(HEIGHT - height, 1)}" width="{round(width - 2, 1)}" '
                f'height="{height}" fill="{colours[series]}"/>'
            )
        body.append(
            f'<text x="{round(left + slot * 0.4, 1)}" y="{HEIGHT + 20}" text-anchor="middle" '
            f'font-size="14" fill="#1a1d21">{escape(label)}</text>'
        )
    return _svg(title, description, body, chart_id)


def chart_context(session: Session, day: date, now: datetime, labels: dict[str, Any]) -> dict[str, Any]:
    """Both charts of the page and their figures, with the page's translated labels."""
    daily = daily_figures(session, day)
    ages = case_ages(session, now)
    return {
        "daily": daily,
        "daily_chart": bars(
            [(f.day.strftime("%d/%m"), (f.matched, f.unmatched)) for f in daily],
            (MATCHED, UNMATCHED),
            title=labels["daily_title"],
            description=labels["daily_description"],
            chart_id="chart-daily",
        ),
        "ages": ages,
        "ages_chart": bars(
            [(labels["age_labels"][n], (count,)) for n, (_low, _high, count, _amount) in enumerate(ages)],
            (UNMATCHED,),
            title=labels["ages_title"],
            description=labels["ages_description"],
            chart_id="chart-ages",
        ),
    }
