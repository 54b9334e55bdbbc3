"""System checks of the project's own settings (the entrypoint runs them before anything starts)."""

from django.conf import settings
from django.core.checks import Error, Tags, register

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
            f"ALLOWED_HOSTS entry {host!r} is not a host name: give the host alone, without a scheme or a path "
            "(api.example.com).",
            id="project.E002",
        )
        for host in settings.ALLOWED_HOSTS
        if "/" in host or "@" in host
    ]
