"""The process environment as the settings read it: django-environ, stricter where a typo would pass."""

import math
import warnings

import environ
from django.core.exceptions import ImproperlyConfigured

BOOLEAN_WORDS = {*environ.Env.BOOLEAN_TRUE_STRINGS, "false", "off", "no", "n", "0"}


class Environment(environ.Env):
    """django-environ's Env, where a number or a boolean

    - left empty (`NAME=` in .env) is the default, as in project/gunicorn.conf.py: django-environ
      would stop start-up with `invalid literal for int()`, naming no variable;
    - that cannot be read, or lies outside its bounds (a most, too, where a larger value would be a
      500 at request time: a date past the year 9999, an integer PostgreSQL cannot hold), stops
      start-up with a message that names the variable: django-environ reads `10s` as 10 and `1.5.2`
      as 15.2, and any word but its own true ones as false, so `SECURE_SSL_REDIRECT=ture` would
      turn HTTPS redirects off.

    Text keeps its meaning when empty: `SMS_ALLOWED_REGIONS=` is "everywhere", not the default. A
    list's items lose the spaces around them.
    """

    def int(self, var, default=environ.Env.NOTSET, *, minimum: int | None = None, maximum: int | None = None) -> int:
        return self._number(var, default, minimum, maximum, int, "a whole number")

    def float(
        self, var, default=environ.Env.NOTSET, *, minimum: float | None = None, maximum: float | None = None
    ) -> float:
        return self._number(var, default, minimum, maximum, float, "a finite number")

    def bool(self, var, default=environ.Env.NOTSET) -> bool:
        text = self._text(var)
        if text is None:
            return self._default(var, default)
        if text.lower() not in BOOLEAN_WORDS:
            raise ImproperlyConfigured(f"{var}={text!r} is not a boolean: use true or false (1/0, yes/no, on/off).")
        return text.lower() in self.BOOLEAN_TRUE_STRINGS

    def db_url(self, var="DATABASE_URL", default=environ.Env.NOTSET, engine=None) -> dict:
        try:
            # `postgres:/user:password@host/name` parses, as a database named after the rest.
            if var in self.ENVIRON and "://" not in self.ENVIRON[var]:
                raise ValueError("no //")
            with warnings.catch_warnings():  # django-environ's warning of an unknown scheme shows the password
                warnings.simplefilter("ignore")
                config = super().db_url(var, default=default, engine=engine)
            # A URL of no known scheme parses without an engine, or with the scheme itself as one.
            if config.get("ENGINE") not in self.DB_SCHEMES.values():
                raise ValueError("no known scheme")
            # Without a name SQLite is in memory, each process its own empty database; a server's
            # connection fails at the first request, naming no variable.
            if config.get("NAME", "") in ("", ":memory:") and "service" not in config.get("OPTIONS", {}):
                raise ValueError("no database named")
            _refuse_options_libpq_does_not_know(var, config)
        except (KeyError, ValueError):
            # Neither the value nor the parser's message is repeated: either may hold the password.
            raise ImproperlyConfigured(
                f"{var} is not a database URL such as postgres://user:password@host:5432/name (a password"
                " with / ? # @ or : must be percent-encoded)."
            ) from None
        return config

    db = db_url

    def get_value(self, var_name, cast=None, default=environ.Env.NOTSET, parse_default=False):
        # django-environ reads "$NAME" as the value of the variable NAME: a secret that starts with
        # "$" (one of Django's generated keys in 50) would silently be another setting, or none.
        value = self.ENVIRON.get(var_name)
        if isinstance(value, str) and value.startswith("$"):
            if cast is None and default not in (self.NOTSET, None):
                cast = type(default)
            return self.parse_value(value, cast)
        return super().get_value(var_name, cast=cast, default=default, parse_default=parse_default)

    def list(self, var, cast=None, default=environ.Env.NOTSET) -> list:
        # `a, b` is a common way to write a list; django-environ would keep " b", a host no request names.
        items = super().list(var, cast=cast, default=default)
        return [
            item.strip() if isinstance(item, str) else item
            for item in items
            if not isinstance(item, str) or item.strip()
        ]

    def _text(self, var: str) -> str | None:
        text = self.ENVIRON.get(var, "").strip()
        return text or None

    def _default(self, var: str, default):
        if default is self.NOTSET:
            raise ImproperlyConfigured(f"Set the {var} environment variable.")
        return default

    def _number(self, var: str, default, minimum, maximum, parse, kind: str):
        text = self._text(var)
        if text is None:
            return self._default(var, default)
        try:
            value = parse(text)
        except ValueError:
            value = math.nan
        if isinstance(value, float) and not math.isfinite(value):  # (a whole number can be past a float's range)
            raise ImproperlyConfigured(f"{var}={text!r} is not {kind}.")
        if minimum is not None and value < minimum:
            raise ImproperlyConfigured(f"{var}={text} is below its least value, {minimum}.")
        if maximum is not None and value > maximum:
            raise ImproperlyConfigured(f"{var}={text} is above its most, {maximum}.")
        return value


# OPTIONS that Django's PostgreSQL backend takes for itself; the rest go to libpq.
DJANGO_POSTGRESQL_OPTIONS = frozenset({"assume_role", "isolation_level", "pool", "server_side_binding"})


def _refuse_options_libpq_does_not_know(var: str, config: dict) -> None:
    # A typo (`?sslmod=require`) would otherwise stop the first connection with the driver's traceback.
    if config.get("ENGINE") != "django.db.backends.postgresql":
        return
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import make_dsn

    unknown = []
    for name in sorted(set(config.get("OPTIONS", {})) - DJANGO_POSTGRESQL_OPTIONS):
        try:
            make_dsn(**{name: "0"})  # libpq checks the name here, the value only when it connects
        except ProgrammingError:
            unknown.append(name)
    if unknown:
        raise ImproperlyConfigured(f"{var} has query options PostgreSQL does not know: {', '.join(unknown)}.")
