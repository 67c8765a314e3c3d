"""What a domain package hands the composition root: one `register()`, its routers, its periodic jobs.

Each domain (`payments`, `parking`, `tickets`, `merchants`, `reconciliation`) exposes a `DOMAIN` in its
`domain.py`; the composition root (`city/`) lists them, includes their routers, calls every
`register()` once per process, gives their periodic jobs to the cron scheduler and adds their commands
to `hanoipay`. Nothing here imports a domain, so the dependencies keep pointing one way.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import typer
from fastapi import APIRouter
from sqlalchemy.orm import Session

from hanoipay.auth.service import Principal


def _nothing() -> None:
    """A domain with nothing to register."""


@dataclass(frozen=True)
class PeriodicJob:
    """A registered job (by its stable name) that `hanoipay cron` enqueues on a schedule.

    Give `seconds` for a fixed interval, or `cron` for a crontab expression, read in UTC as RQ's cron
    scheduler does (02:00 in Asia/Ho_Chi_Minh is `0 19 * * *`).
    """

    name: str
    seconds: int | None = None
    cron: str | None = None


@dataclass(frozen=True)
class PageLink:
    """A page the home page lists for the people who may use it (`roles`; empty: anyone signed in).

    `title` and `description` are English messages translated by the domain's catalog. `shown_to`, when
    given, is asked too for people whose roles match (a page for one kind of merchant, say).
    """

    path: str
    title: str
    description: str
    roles: frozenset[str] = frozenset()
    shown_to: Callable[[Session, Principal], bool] | None = None


@dataclass(frozen=True)
class Domain:
    """A domain's contribution to the app, the worker and the cron scheduler."""

    name: str
    register: Callable[[], None] = _nothing
    routers: Sequence[APIRouter] = ()
    periodic_jobs: Sequence[PeriodicJob] = ()
    # Pages: Jinja2 templates (addressed as "<name>/<file>"), static files (served at /static/<name>/),
    # gettext catalogs (<locale>/vi/LC_MESSAGES/*.po) and the links the home page shows.
    templates: Path | None = None
    static: Path | None = None
    locale: Path | None = None
    pages: Sequence[PageLink] = ()
    # Commands: a Typer sub-app, added to the `hanoipay` command under the domain's name.
    cli: typer.Typer | None = None
