"""Readers for settings given as text (an environment variable, a mounted file): lists and key lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def split_list(value: Any) -> Any:
    """`a,b,c` as a list; anything else (a YAML list) as it is."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def key_entries(value: str, marker: str, shape: str) -> list[str]:
    """Entries of a key list given inline (commas or newlines; `#` comments) or as the path of a file holding
    them (a mounted Secret). An inline list is told from a path by `marker`; values are never echoed."""
    text = value.strip()
    if text and marker not in text.splitlines()[0]:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"neither '{shape}' pairs nor the path of a readable file (value not shown)")
        text = path.read_text()
    entries = [item.strip() for item in text.replace(",", "\n").splitlines()]
    entries = [item for item in entries if item and not item.startswith("#")]
    if any(";" in item for item in entries):  # "ak1:sk1;ak2:sk2" would read as one STS caller
        raise ValueError(f"separate '{shape}' entries with commas or new lines, not ';' (value not shown)")
    return entries
