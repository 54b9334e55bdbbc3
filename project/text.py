"""Text as people paste it: invisible format characters come along with copied numbers, codes and names."""

import unicodedata


def is_invisible(ch: str) -> bool:
    """A format character: zero-width spaces and joiners, direction marks and controls, byte-order marks."""
    return unicodedata.category(ch) == "Cf"


def without_invisible(text: str) -> str:
    return "".join(ch for ch in text if not is_invisible(ch))
