"""Reading CSV exports: decoding, a header with the required columns, one dict per line with its number."""

import csv
import io
from collections.abc import Iterator

from reconciliation.exceptions import MalformedStatement

MAX_FIELD = 4_000


def rows(data: bytes, required: set[str], what: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by column name) for every data line; refuses a file without the columns."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedStatement(f"The {what} is not UTF-8 text (byte {error.start}).") from None
    if "\x00" in text:
        raise MalformedStatement(f"The {what} contains NUL characters; it is not a CSV export.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise MalformedStatement(f"The {what} is empty.") from None
    except csv.Error as error:
        raise MalformedStatement(f"The {what} header is not valid CSV: {error}.") from None
    names = [name.strip() for name in header]
    missing = sorted(required - set(names))
    if missing:
        raise MalformedStatement(f"The {what} lacks the column(s) {', '.join(missing)}.", missing=missing)
    try:
        for values in reader:
            line = reader.line_num
            if not values or values == [""]:
                continue
            if len(values) != len(names):
                yield line, {"__error__": f"{len(values)} fields where the header has {len(names)}"}
                continue
            if any(len(v) > MAX_FIELD for v in values):
                yield line, {"__error__": f"a field is longer than {MAX_FIELD} characters"}
                continue
            yield line, dict(zip(names, values, strict=True))
    except csv.Error as error:
        raise MalformedStatement(
            f"The {what} is not valid CSV at line {reader.line_num}: {error}; nothing was loaded.",
            errors=[{"line": reader.line_num, "error": str(error)}],
        ) from None
