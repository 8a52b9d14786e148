"""Plain-text tables for the `thorgym bench …` commands (the non-JSON output)."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(cols: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns as wide as their widest cell, a dashed rule under the header."""
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = [
        "  ".join(c.ljust(wd) for c, wd in zip(cols, widths, strict=True)),
        "  ".join("-" * wd for wd in widths),
    ]
    lines += ["  ".join(v.ljust(wd) for v, wd in zip(row, widths, strict=True)) for row in rows]
    return lines
