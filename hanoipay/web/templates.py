"""The Jinja2 environment every page renders with: the shared layout and each domain's templates.

`hanoipay/web/templates/` holds the layout (`base.html`), the sign-in page and shared macros; a domain's
templates are addressed with its name as prefix: `parking/driver.html` is
`parking/templates/driver.html`. Autoescaping is on; `_()` translates (newstyle gettext, so
`_("%(n)s spots", n=3)`), `vnd` and `hanoi_time` format money and time for the request's language.
"""

from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)

from hanoipay.web import i18n

SHARED = Path(__file__).resolve().parent / "templates"
_environment: Environment | None = None


def configure(domain_templates: dict[str, Path]) -> Environment:
    """Build the environment from the shared templates and each domain's (name → directory)."""
    global _environment
    loader = ChoiceLoader(
        [
            PrefixLoader({name: FileSystemLoader(path) for name, path in domain_templates.items()}),
            FileSystemLoader(SHARED),
        ]
    )
    environment = Environment(
        loader=loader,
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.filters["vnd"] = i18n.format_vnd
    environment.filters["hanoi_time"] = i18n.format_time
    _environment = environment
    return environment


def environment() -> Environment:
    """The environment `configure` built (the composition root calls it when the app is created)."""
    if _environment is None:
        raise RuntimeError("the page templates are not configured; create the app first")
    return _environment
