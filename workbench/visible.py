"""Whether a text has anything a reader can see: a prompt of only zero-width spaces, joiners, bidi marks or
blank-looking fillers is as empty as a blank one, though `str.strip()` keeps it.
"""

from __future__ import annotations

import unicodedata

# Format (Cf: zero-width space, joiners, bidi marks, BOM), control, separator, unassigned and private-use
# characters draw nothing; combining marks (Mn, Me) draw only on a visible base.
_UNSEEN_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
# Letters and symbols that render as blank space.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")


def is_visible(char: str) -> bool:
    return char not in _BLANK_LOOKING and not char.isspace() and unicodedata.category(char) not in _UNSEEN_CATEGORIES


def has_visible(text: str) -> bool:
    """True when at least one character of `text` draws something."""
    return any(is_visible(c) for c in text)
