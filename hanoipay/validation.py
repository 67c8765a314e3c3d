"""Text PostgreSQL cannot store, found anywhere in decoded JSON, and refused before it reaches a query.

PostgreSQL's `text` and `jsonb` cannot hold U+0000, and UTF-8 cannot encode a lone UTF-16 surrogate
(U+D800–U+DFFF without its pair), yet both arrive inside valid JSON as `\\u0000` and `\\udfff`. JSON
parsing turns a valid surrogate pair into one code point, so any surrogate left in a decoded string is a
lone one.
"""

import re
from collections.abc import Iterator
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(text: str) -> bool:
    """True when PostgreSQL can store `text` (no NUL, no lone surrogate)."""
    return _UNSTORABLE.search(text) is None


def unstorable_paths(value: Any, path: str = "") -> Iterator[str]:
    """The JSON paths (`metadata.k`, `items[2]`) whose key or string value PostgreSQL cannot store."""
    if isinstance(value, str):
        if not is_storable(value):
            yield path or "(value)"
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and not is_storable(key):
                yield f"{path}.{key!a}" if path else f"{key!a}"
            else:
                yield from unstorable_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable_paths(item, f"{path}[{index}]")


def describe(paths: list[str]) -> str:
    """A human sentence naming where the unstorable characters are."""
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return (
        f"Text at {shown} contains a NUL (\\u0000) or an unpaired UTF-16 surrogate (\\ud800-\\udfff), "
        "which cannot be stored; send valid Unicode text."
    )
