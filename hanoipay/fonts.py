"""Fonts that carry Vietnamese, for printed things (stall signs, receipts, statements).

DejaVu Sans comes from Debian's `fonts-dejavu-core`, which `scripts/system-packages.sh runtime` installs;
`HANOIPAY_FONT_DIR` names another directory holding the same files (DejaVuSans.ttf, DejaVuSans-Bold.ttf).
"""

import os
from functools import lru_cache
from pathlib import Path

DEBIAN_DIR = Path("/usr/share/fonts/truetype/dejavu")
REGULAR = "DejaVuSans.ttf"
BOLD = "DejaVuSans-Bold.ttf"


class FontNotFound(RuntimeError):
    """No directory holds the font; install it with `scripts/system-packages.sh runtime`."""


@lru_cache(maxsize=4)
def font_path(*, bold: bool = False) -> Path:
    """The path of DejaVu Sans (bold or regular), from HANOIPAY_FONT_DIR or Debian's package."""
    name = BOLD if bold else REGULAR
    override = os.environ.get("HANOIPAY_FONT_DIR")
    directories = [Path(override)] if override else [DEBIAN_DIR]
    for directory in directories:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in directories)
    raise FontNotFound(
        f"{name} is not in {searched}; run scripts/system-packages.sh runtime (Debian's fonts-dejavu-core) "
        "or point HANOIPAY_FONT_DIR at a directory that holds it"
    )
