"""Vietnamese first, with English: gettext catalogs (Babel `.po` files), chosen per request.

Messages are written in English in the code and templates (`_("Find parking")`) and translated in
`<package>/locale/vi/LC_MESSAGES/messages.po`; English needs no catalog. Each domain keeps its own
catalog; all of them are merged at start. The language of a request is `?lang=`, else the `lang` cookie,
else Vietnamese unless the browser prefers English.
"""

import io
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from starlette.requests import Request

from hanoipay.localtime import HANOI

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANG_COOKIE = "lang"

_catalogs: dict[str, NullTranslations] = {"en": NullTranslations()}
_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


def load_catalogs(locale_dirs: list[Path]) -> None:
    """Read every `vi` catalog under `locale_dirs` and merge them into the one the pages use."""
    merged = Translations()
    for directory in locale_dirs:
        for po_file in sorted(directory.glob("vi/LC_MESSAGES/*.po")):
            with po_file.open("rb") as source:
                catalog = read_po(source, locale="vi")
            compiled = io.BytesIO()
            write_mo(compiled, catalog)
            compiled.seek(0)
            merged.merge(Translations(compiled))
    _catalogs["vi"] = merged


def choose_language(request: Request) -> str:
    """The request's language: `?lang=`, the `lang` cookie, then the browser's preference, then Vietnamese."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    preferred = request.headers.get("accept-language", "").split(",")[0].strip().lower()
    return "en" if preferred.startswith("en") else DEFAULT_LANGUAGE


def use_language(language: str) -> None:
    """Make `language` the one `gettext` answers in, for the rest of this request."""
    _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def current_language() -> str:
    """The language of the request being served."""
    return _language.get()


def gettext(message: str) -> str:
    """`message` in the request's language."""
    return _catalogs.get(_language.get(), _catalogs["en"]).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message, in the request's language."""
    return _catalogs.get(_language.get(), _catalogs["en"]).ngettext(singular, plural, n)


def format_vnd(amount: int) -> str:
    """`45000` as people read it: `45.000 ₫` in Vietnamese, `45,000 ₫` in English."""
    return f"{format_decimal(amount, locale=_language.get())} ₫"


def format_time(moment: datetime | None, pattern: str = "%H:%M %d/%m/%Y") -> str:
    """A moment in Hanoi time; empty for None."""
    return "" if moment is None else moment.astimezone(HANOI).strftime(pattern)
