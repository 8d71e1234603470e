"""Reading docs/PROTOCOL.md in tests: the document is checked against the code."""

from __future__ import annotations

from pathlib import Path

DOC = (Path(__file__).parent.parent / "docs" / "PROTOCOL.md").read_text()


def table_after(text: str, marker: str) -> list[list[str]]:
    """Cells of the first Markdown table at or after ``marker`` in ``text`` (header and
    rule skipped). Tables may be indented, e.g. inside a list."""
    lines = [line.strip() for line in text[text.index(marker):].splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows
