"""System checks of the project's own settings (the entrypoint runs them before anything starts)."""

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

# Either mistake starts a service whose health checks pass (they answer before the Host check) and
# which refuses every other request with 400.


@register(Tags.security, deploy=True)
def allowed_hosts_are_set(app_configs, **kwargs):
    # A deployment check (the entrypoint runs them before it serves; `check --deploy`): a one-off
    # command needs no host names.
    if settings.ALLOWED_HOSTS or settings.DEBUG:
        return []
    return [
        Error(
            "ALLOWED_HOSTS is empty with DEBUG off: every request would be refused. "
            "Set it to the public host names, comma-separated (api.example.com,www.example.com).",
            id="project.E001",
        )
    ]


@register()
def allowed_hosts_are_host_names(app_configs, **kwargs):
    return [
        Error(
            f"ALLOWED_HOSTS entry {host!r} is not a host name: give the host alone, without a scheme, a port "
            "or a path (api.example.com; .example.com for its subdomains too; [2001:db8::1] for an IPv6 address).",
            id="project.E002",
        )
        for host in settings.ALLOWED_HOSTS
        if not _is_host_pattern(host)
    ]


def _is_host_pattern(host: str) -> bool:
    # What Django's validate_host matches: "*", a name (".name" for its subdomains too), or an IPv6
    # address in brackets. It compares hosts without their port, so an entry with one never matches.
    if host == "*":
        return True
    if host.startswith("[") and host.endswith("]"):
        return True
    return not any(mark in host for mark in "/@:*")


@register()
def database_url_is_given(app_configs, **kwargs):
    # Not an error: SQLite serves (DESIGN.md's first-run default), but with DEBUG off it is more
    # likely a DATABASE_URL that did not reach the process than a choice.
    if settings.DEBUG or os.environ.get("DATABASE_URL", "").strip():
        return []
    path = settings.DATABASES["default"]["NAME"]
    return [
        Warning(
            f"DATABASE_URL is not set with DEBUG off: serving from the SQLite file {path}.",
            hint="Set DATABASE_URL (postgres://user:password@host:5432/name), or to sqlite:///<path> to mean it.",
            id="project.W001",
        )
    ]
