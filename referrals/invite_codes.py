"""Invite codes: 6 characters nobody misreads, case-insensitive on the way in."""

import secrets

from project.text import without_invisible

# Upper-case letters and digits without 0/O and 1/I/L.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 6


def generate_invite_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


# Cyrillic letters that look like Latin ones of the alphabet: a code read off a screen and typed on
# a Russian keyboard layout.
LOOK_ALIKES = str.maketrans("АВЕКМНРСТУХавекмнрстух", "ABEKMHPCTYXABEKMHPCTYX")


def normalize_invite_code(raw: str) -> str:
    # Invisible format characters (zero-width spaces, direction marks) come along with copied text.
    code = without_invisible(raw).strip().translate(LOOK_ALIKES)
    # ASCII only: Unicode upper-casing turns "ß" into "SS" (and the long s into "S"): codes nobody typed.
    return code.upper() if code.isascii() else code


def looks_like_invite_code(code: str) -> bool:
    return len(code) == LENGTH and all(ch in ALPHABET for ch in code)
