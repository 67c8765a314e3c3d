"""`hanoipay parking ...`: load an operator's zones, spots and tariffs from a data file."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hanoipay.auth.service import Principal
from hanoipay.db import job_session
from hanoipay.errors import HanoiPayError
from hanoipay.runtime import start_runtime
from merchants.service.onboarding import register_merchant
from parking import loader
from parking.exceptions import InvalidTariffFile
from parking.service import catalog

app = typer.Typer(help="Parking: zones, spots and tariffs.", no_args_is_help=True)
console = Console()
SAMPLE = Path(__file__).parent / "data" / "hanoi.yaml"
_CLI = Principal(id="cli", kind="user", roles=frozenset({"admin"}))


def _refuse(error: HanoiPayError) -> typer.Exit:
    console.print(f"[red]{error.code}[/red]: {error.detail}", soft_wrap=True)
    return typer.Exit(1)


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help=f"A YAML or JSON parking data file, e.g. {SAMPLE}")],
    merchant_id: Annotated[str | None, typer.Option(help="The parking operator the data belongs to")] = None,
    create_operator: Annotated[
        bool, typer.Option(help="Create the operator from the file's `operator:` section")
    ] = False,
    check: Annotated[bool, typer.Option(help="Only check the file; write nothing")] = False,
) -> None:
    """Load (create or update) zones, spots and tariffs from FILE, whole or not at all."""
    try:
        data = loader.check(file.read_text(encoding="utf-8"))
    except InvalidTariffFile as error:
        console.print(f"[red]{file}: refused[/red], nothing was loaded:")
        for problem in error.extra.get("problems", []):
            where = f"line {problem['line']}" if problem["line"] else "(no line)"
            console.print(f"  {file}:{where}: {problem['path']}: {problem['message']}", soft_wrap=True)
        if not error.extra.get("problems"):
            console.print(f"  {error.detail}", soft_wrap=True)
        raise typer.Exit(1) from None
    except (OSError, UnicodeDecodeError) as error:
        console.print(f"[red]{file}: cannot be read[/red]: {error}")
        raise typer.Exit(1) from None
    if check:
        console.print(f"{file}: OK, {len(data.tariffs)} tariffs and {len(data.zones)} zones")
        return
    if (merchant_id is None) == (not create_operator):
        console.print("Give --merchant-id, or --create-operator to create it from the file.")
        raise typer.Exit(2)
    runtime = start_runtime(migrate=True)
    try:
        with job_session() as session:
            if create_operator:
                if data.operator is None:
                    console.print("The file has no `operator:` section to create the operator from.")
                    raise typer.Exit(2)
                merchant = register_merchant(
                    session, _CLI, kind="parking_operator", currency="VND", **data.operator.model_dump()
                )
                merchant_id = merchant.payee.id
            assert merchant_id is not None
            summary = catalog.load_data(session, _CLI, data, merchant_id)
    except HanoiPayError as error:
        raise _refuse(error) from None
    finally:
        runtime.stop()
    created = " (created from the file's operator section)" if create_operator else ""
    console.print(
        f"loaded for {merchant_id}{created}: {summary.tariffs} tariffs "
        f"({summary.versions_added} new versions), {summary.zones} zones, {summary.spots_added} new spots",
        soft_wrap=True,
    )
