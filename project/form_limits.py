from django.core.exceptions import TooManyFieldsSent

from project.request_limits import METHODS_WITH_BODIES

# Django's own default for DATA_UPLOAD_MAX_NUMBER_FIELDS, which the settings raise for staff.
FIELDS_FOR_EVERYONE = 1_000
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class FormFieldLimitMiddleware:
    """Django's 1,000 form fields for everyone but signed-in staff, counted before the form is read.

    The admin's delete confirmation posts back every selected id, hence the settings' higher limit;
    but the CSRF check reads every form posted, signed in or not, and reading 100,000 fields costs a
    worker a second or more. Counting separators in the body costs next to nothing.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method in METHODS_WITH_BODIES
            and request.content_type in FORM_TYPES
            and not request.path.startswith("/api/")  # the API reads JSON only
            and not request.user.is_staff
            and _fields_in(request) > FIELDS_FOR_EVERYONE
        ):
            raise TooManyFieldsSent(f"more than {FIELDS_FOR_EVERYONE} form fields from someone not staff")
        return self.get_response(request)


def _fields_in(request) -> int:
    try:
        body = request.body
    except (OSError, ValueError):
        # The client went away mid-body, or its Content-Length is no number (gunicorn refuses those,
        # other servers may not): left to Django's handling of the form, as before.
        return 0
    if request.content_type == "multipart/form-data":
        boundary = request.content_params.get("boundary", "")
        # Each part opens with the boundary, and the last one closes the body with it.
        return body.count(b"--" + boundary.encode("ascii", "replace")) - 1 if boundary else 0
    return body.count(b"&") + 1
