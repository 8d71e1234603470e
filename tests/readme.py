"""The README's code, as a reader would save it."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parent.parent / "README.md").read_text()


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def block(text: str, lang: str) -> str:
    """The first ```lang block of ``text``."""
    found = re.search(rf"```{lang}\n(.*?)```", text, re.S)
    assert found, f"no {lang} block"
    return found.group(1)


def write_coins(folder: Path) -> None:
    """The coins game of "Writing a game": coins.py and its page, coins_page/."""
    writing = section("Writing a game")
    (folder / "coins.py").write_text(block(writing, "python"))
    (folder / "coins_page").mkdir()
    (folder / "coins_page" / "index.html").write_text(block(writing, "html"))
    (folder / "coins_page" / "coins.js").write_text(block(writing, "js"))
