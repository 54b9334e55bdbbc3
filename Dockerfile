# syntax=docker/dockerfile:1
# The web service: gunicorn behind bin/entrypoint, static files built in and served by whitenoise.

FROM python:3.11.17-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only the requirements first: this layer is rebuilt when they change, not on every code edit.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt

FROM python:3.11.17-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY . .
# The key only has to satisfy the settings for this one command; nothing is signed with it.
RUN SECRET_KEY=collectstatic-only-build-time-key-never-used-to-sign-anything \
    DEBUG=0 python manage.py collectstatic --noinput --verbosity 0
# Any unprivileged id works; numeric, so runtimes can check it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["/app/bin/healthcheck", "/healthz"]
ENTRYPOINT ["/app/bin/entrypoint"]
