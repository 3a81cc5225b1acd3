# Hookscope in a container: one gunicorn process on SQLite, the database and the generated secret
# key in the /app/instance volume. README.md, "Run it in a container"; .ci/image-check builds and
# tries it.
#
# Named in full so podman and buildah need no short-name lookup. Only `python3` on PATH is used:
# the official image has it in /usr/local/bin, a Debian-built stand-in in /usr/bin.
FROM docker.io/library/python:3.11-slim-bookworm AS requirements

# The dependency list alone (with the postgres and redis extras, for the compose file's scale-out
# profile), so that the layer installing it is rebuilt only when it changes, not at every edit
# of pyproject.toml.
COPY pyproject.toml /
RUN python3 -c 'import tomllib; p = tomllib.load(open("/pyproject.toml", "rb"))["project"]; print(*p["dependencies"], *p["optional-dependencies"]["postgres"], *p["optional-dependencies"]["redis"], sep="\n")' > /requirements.txt

FROM docker.io/library/python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# uid 10001: an account few hosts have, so files in a bind-mounted instance folder are plainly the
# container's (`chown 10001` the folder to let it write there).
RUN python3 -m venv /opt/venv \
    && groupadd --gid 10001 hookscope \
    && useradd --uid 10001 --gid hookscope --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin hookscope

WORKDIR /app

# The dependencies in a layer of their own: a change to the code rebuilds only the small layers
# below.
# Within constraints.txt: the versions the tests ran with.
COPY --from=requirements /requirements.txt /tmp/
COPY constraints.txt /tmp/
RUN pip install -c /tmp/constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt /tmp/constraints.txt

# Installed as a package (pages, styles, scripts and migrations inside it); the source is not
# kept. The database and the secret key go to HOOKSCOPE_INSTANCE_PATH.
COPY . /tmp/src
RUN pip install --no-deps /tmp/src \
    && rm -rf /tmp/src \
    && mkdir -p instance \
    && chown hookscope:hookscope instance \
    && chmod 700 instance

# Created and owned above, so a new named volume starts out writable by the app's user.
VOLUME ["/app/instance"]

USER hookscope:hookscope
ENV HOOKSCOPE_HOST=0.0.0.0 \
    HOOKSCOPE_INSTANCE_PATH=/app/instance \
    PORT=8000
EXPOSE 8000

# No curl in slim images; the interpreter is there anyway. /healthz answers 200 once the database
# answers; urlopen raises on anything else.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

# The Procfile's command through the installed script: exec'd, gunicorn's master is PID 1 and
# gets the stop signal itself (SIGTERM: a graceful stop). Migrations run before workers start.
CMD ["hookscope", "serve"]
