"""Messages of SimpleJWT and DRF that reach clients, listed so `makemessages` puts them in our catalogue.

LOCALE_PATHS take precedence over the packages' own catalogues. SimpleJWT ships Russian only as
`ru_RU` (which the `ru` language does not load) and leaves some of it untranslated; DRF's Russian
has none for "Not a valid string." (a string field given true, a list or an object), and writes
some of the rest in another style. DRF's
throttling message is never sent: project/throttling.py writes every 429's.
"""

from django.utils.translation import gettext_noop

SIMPLEJWT = [
    gettext_noop("Authorization header must contain two space-delimited values"),
    gettext_noop("Given token not valid for any token type"),
    gettext_noop("Token contained no recognizable user identification"),
    gettext_noop("User not found"),
    gettext_noop("User is inactive"),
    gettext_noop("The user's password has been changed."),
    gettext_noop("Token is invalid"),
    gettext_noop("Token is expired"),
    gettext_noop("Token is invalid or expired"),
    gettext_noop("Token is blacklisted"),
    gettext_noop("Token has no id"),
    gettext_noop("Token has no type"),
    gettext_noop("Token has wrong type"),
    gettext_noop("Token has no '{}' claim"),
    gettext_noop("Token '{}' claim has expired"),
    gettext_noop("No active account found for the given token."),
    # Its token pages in the admin.
    gettext_noop("Token Blacklist"),
    gettext_noop("Outstanding Token"),
    gettext_noop("Outstanding Tokens"),
    gettext_noop("Blacklisted Token"),
    gettext_noop("Blacklisted Tokens"),
    gettext_noop("Token for %(user)s (%(jti)s)"),
    gettext_noop("Blacklisted token for %(user)s"),
]

DRF = [
    gettext_noop("Invalid cursor"),
    gettext_noop("Not a valid string."),
    gettext_noop("Surrogate characters are not allowed: U+{code_point:X}."),  # half an emoji; DRF's ru has none
    # DRF's Russian for these drops the diaeresis and uses straight quotes, unlike our messages beside them.
    gettext_noop("Authentication credentials were not provided."),
    gettext_noop("Incorrect authentication credentials."),
    gettext_noop("You do not have permission to perform this action."),
    gettext_noop('Method "{method}" not allowed.'),
    gettext_noop('Unsupported media type "{media_type}" in request.'),
    gettext_noop("Could not satisfy the request Accept header."),
]
