"""Display names: visible, bounded text, whatever Unicode a client sends."""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 24  # characters (code points) after cleaning
MAX_WIDTH = 24  # columns: East Asian wide and fullwidth characters count 2
MAX_MARKS = 2  # combining marks on one base character ("Zalgo" text stacks dozens)

# Letters and symbols that render as blank space without being Unicode spaces.
_BLANKS = frozenset("\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")
# A few single characters drawn many columns wide (ligatures of whole phrases).
_HUGE = frozenset("\ufdfa\ufdfb\ufdfd\ua9c5\U0001242b\U00012219")


def clean_name(raw: str) -> str:
    """``raw`` made displayable: "" when nothing visible is left.

    NFC-normalised; control, format (Cf: zero-width joiners, direction overrides),
    private-use, unassigned and surrogate code points and other invisibles dropped;
    runs of spaces made one; at most :data:`MAX_MARKS` combining marks per base;
    cut to :data:`MAX_LENGTH` characters and :data:`MAX_WIDTH` columns.
    """
    out: list[str] = []
    marks = width = 0
    for ch in unicodedata.normalize("NFC", raw):
        category = unicodedata.category(ch)
        if category in ("Zs", "Zl", "Zp") or ch in "\t\n\r":
            if out and out[-1] != " ":
                out.append(" ")
                width += 1
            continue
        if category[0] == "C" or ch in _BLANKS or ch in _HUGE:  # Cc Cf Cs Co Cn
            continue
        if category[0] == "M":
            if not out or out[-1] == " " or marks >= MAX_MARKS:
                continue  # a mark needs a base, and a base carries only so many
            if len(out) >= MAX_LENGTH:
                break
            marks += 1
            out.append(ch)
            continue
        cols = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if len(out) >= MAX_LENGTH or width + cols > MAX_WIDTH:
            break
        marks = 0
        width += cols
        out.append(ch)
    name = "".join(out).strip()
    return name if _visible(name) else ""


def _visible(name: str) -> bool:
    """At least one letter, number, punctuation mark or symbol (not only marks or spaces)."""
    return any(unicodedata.category(ch)[0] in "LNPS" for ch in name)
