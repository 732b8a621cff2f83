"""Settings for chatbot: everything comes from the environment.

Each secret ``NAME`` may instead be given as ``NAME_FILE``, a path whose content is the value
(Docker and Kubernetes secrets). ``CHATBOT_ENV`` is ``development`` (default), ``test`` or
``production``; production refuses to start without ``SECRET_KEY`` and turns on HTTPS settings.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

django_stubs_ext.monkeypatch()  # generic admin/queryset classes at run time

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    """The value of ``name``, or the content of the file named by ``name_FILE``."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = env(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def envint(name: str, default: int) -> int:
    value = env(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


CHATBOT_ENV = env("CHATBOT_ENV", "development")
if CHATBOT_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured("CHATBOT_ENV must be development, test or production")
PRODUCTION = CHATBOT_ENV == "production"
DATA_DIR = Path(env("EMBEDDED_DATA_DIR", str(BASE_DIR / ".data")))

DEBUG = envbool("DEBUG", False)


def development_secret_key() -> str:
    """A random key kept under .data/ so development sessions survive restarts."""
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required in production")
    SECRET_KEY = development_secret_key()

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", f"http://127.0.0.1:{envint('PORT', 8000)}")

# --- Services ---------------------------------------------------------------------------------

DATABASE_URL = env("DATABASE_URL")
REDIS_URL = env("REDIS_URL")
if not DATABASE_URL or not REDIS_URL:
    from chatbot import embedded

    if not DATABASE_URL:
        DATABASE_URL = embedded.postgres_ensure(DATA_DIR)
    if not REDIS_URL:
        REDIS_URL = embedded.redis_ensure(DATA_DIR)

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
        conn_health_checks=envbool("DB_CONN_HEALTH_CHECKS", False),
    )
}
# Parameters bound by the server, and a statement prepared the 5th time a connection runs it
# (psycopg's prepare_threshold; Django leaves it off unless set): PostgreSQL then skips
# planning, which is most of a short statement's cost (the turn's begin statement: 0.9 -> 0.35
# ms; bench/README.md). DB_SERVER_SIDE_BINDING=0 for a pooler in transaction mode that cannot
# keep prepared statements per client (PgBouncer before 1.21).
if envbool("DB_SERVER_SIDE_BINDING", True):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=envint("DB_PREPARE_THRESHOLD", 5)
    )
# Threads that run the short database steps of streaming turns (see conversations/runtime.py).
DB_THREADS = envint("DB_THREADS", 4)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cache",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # Blocking reads wait up to 5 s: the socket timeout must be longer (redis-py's is 5 s).
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": "chatbot:channels",
        },
    }
}

# --- Celery -----------------------------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task unacknowledged past the visibility timeout is redelivered: limits stay below it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

# --- Django -----------------------------------------------------------------------------------

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "ninja",
    "chatbot.users",
    "conversations",
    "knowledge",
    "billing",
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
]

ROOT_URLCONF = "chatbot.urls"
ASGI_APPLICATION = "chatbot.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

AUTH_USER_MODEL = "users.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "chatbot" / "static"]  # the project package is not an app
STATIC_ROOT = Path(env("STATIC_ROOT", str(DATA_DIR / "static")))
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing one
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(DATA_DIR / "media")))

# --- Security ---------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if envbool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}

# --- Chat models ------------------------------------------------------------------------------
# Any OpenAI-compatible server (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server). With neither
# OPENAI_BASE_URL nor OPENAI_API_KEY set, the clearly labelled offline provider answers instead.
OPENAI_BASE_URL = env("OPENAI_BASE_URL")
OPENAI_API_KEY = env("OPENAI_API_KEY")
CHAT_MODELS = envlist(
    "CHAT_MODELS",
    "gpt-4o-mini" if OPENAI_BASE_URL or OPENAI_API_KEY or env("CHAT_PROVIDERS") else "",
)
# The optional local model (`make local-llm`), used when no OpenAI-compatible server is set.
LOCAL_LLM = envbool("LOCAL_LLM", False)
CHAT_CONTEXT_WINDOW = envint("CHAT_CONTEXT_WINDOW", 8192)
CHAT_MAX_OUTPUT_TOKENS = envint("CHAT_MAX_OUTPUT_TOKENS", 1024)
CHAT_SYSTEM_PROMPT = env(
    "CHAT_SYSTEM_PROMPT",
    "You are a helpful assistant. Answer clearly and concisely. Use Markdown when it helps.",
)
CHAT_MAX_MESSAGE_CHARS = envint("CHAT_MAX_MESSAGE_CHARS", 32000)
CHAT_PROVIDER_READ_TIMEOUT = envint("CHAT_PROVIDER_READ_TIMEOUT", 60)
# Failover (llm/failover.py, formats in llm/provider_config.py): named providers, each model's
# ordered targets, and the circuit breaker shared through Redis.
CHAT_PROVIDERS = env("CHAT_PROVIDERS")
# The `auto` model (conversations/model_routing.py): how often a web process compares its cached
# routing policy and prices with the version in Redis (0: every turn).
ROUTING_POLICY_CHECK_SECONDS = envint("ROUTING_POLICY_CHECK_SECONDS", 1)
CHAT_FALLBACKS = env("CHAT_FALLBACKS")
CHAT_FIRST_TOKEN_TIMEOUT = envint("CHAT_FIRST_TOKEN_TIMEOUT", 15)
CHAT_RETRY_AFTER_MAX = envint("CHAT_RETRY_AFTER_MAX", 5)
CHAT_BREAKER_THRESHOLD = envint("CHAT_BREAKER_THRESHOLD", 5)
CHAT_BREAKER_WINDOW = envint("CHAT_BREAKER_WINDOW", 30)
CHAT_BREAKER_COOLDOWN = envint("CHAT_BREAKER_COOLDOWN", 30)
# Moderation (llm/moderation.py): "rules" (offline phrases and regexes), "openai" (an
# OpenAI-compatible /moderations endpoint) or "off". Input is checked whole; answers in windows.
MODERATION = env("MODERATION", "rules")
if MODERATION not in {"rules", "openai", "off"}:
    raise ImproperlyConfigured("MODERATION must be rules, openai or off")
MODERATION_RULES_FILE = env("MODERATION_RULES_FILE")
MODERATION_BASE_URL = env("MODERATION_BASE_URL", OPENAI_BASE_URL or "https://api.openai.com/v1")
MODERATION_API_KEY = env("MODERATION_API_KEY", OPENAI_API_KEY)
MODERATION_MODEL = env("MODERATION_MODEL", "omni-moderation-latest")
MODERATION_OUTPUT_EVERY_CHARS = envint("MODERATION_OUTPUT_EVERY_CHARS", 400)
MODERATION_OUTPUT_WINDOW_CHARS = envint("MODERATION_OUTPUT_WINDOW_CHARS", 600)
CELERY_BEAT_SCHEDULE["turns-reap"] = {"task": "conversations.turns_reap", "schedule": 30.0}

# --- Billing: plans, quotas, rate limits ------------------------------------------------------
# Proxies (CIDRs) whose X-Forwarded-For is believed, e.g. "10.0.0.0/8,127.0.0.1"; empty = none.
TRUSTED_PROXIES = envlist("TRUSTED_PROXIES")
# Requests per minute per client IP on anonymous pages (public share links).
ANON_REQUESTS_PER_MINUTE = envint("ANON_REQUESTS_PER_MINUTE", 60)
# Off: no rate limit, reservation or ledger on turns (benchmarks compare against this).
BILLING_ENABLED = envbool("BILLING_ENABLED", True)
# The plan new users get.
BILLING_DEFAULT_PLAN = env("BILLING_DEFAULT_PLAN", "free")
# How long a process reuses a user's plan for the rate limit (quotas always read it afresh).
BILLING_PLAN_CACHE_SECONDS = envint("BILLING_PLAN_CACHE_SECONDS", 5)
CELERY_BEAT_SCHEDULE["usage-rollup"] = {"task": "billing.usage_rollup", "schedule": 60.0}

# --- Knowledge: extraction limits and embeddings ----------------------------------------------
KNOWLEDGE_MAX_UPLOAD_BYTES = envint("KNOWLEDGE_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
KNOWLEDGE_MAX_PAGES = envint("KNOWLEDGE_MAX_PAGES", 2000)
# Uncompressed size of all members of a DOCX/PPTX/XLSX (a zip): stops zip bombs before parsing.
KNOWLEDGE_MAX_DECOMPRESSED_BYTES = envint("KNOWLEDGE_MAX_DECOMPRESSED_BYTES", 200 * 1024 * 1024)
KNOWLEDGE_EXTRACT_TIMEOUT_S = envint("KNOWLEDGE_EXTRACT_TIMEOUT_S", 120)
# Address space a parse may add to the worker's own (RLIMIT_AS of the child that parses a file).
KNOWLEDGE_EXTRACT_MEMORY_BYTES = envint("KNOWLEDGE_EXTRACT_MEMORY_BYTES", 2 * 1024 * 1024 * 1024)
# "minilm" (offline all-MiniLM-L6-v2 int8 ONNX) or "openai" (any OpenAI-compatible /embeddings).
EMBEDDING_PROVIDER = env("EMBEDDING_PROVIDER", "minilm")
EMBEDDING_MODEL = env(
    "EMBEDDING_MODEL",
    "all-MiniLM-L6-v2" if EMBEDDING_PROVIDER == "minilm" else "text-embedding-3-small",
)
# The size of the stored vectors: changing it needs `manage.py reindex`.
EMBEDDING_DIMENSIONS = envint("EMBEDDING_DIMENSIONS", 384)
EMBEDDING_BATCH_SIZE = envint("EMBEDDING_BATCH_SIZE", 32)
EMBEDDING_THREADS = envint("EMBEDDING_THREADS", 2)  # onnxruntime intra-op threads (minilm)
# Threads for embedding one question (a chat turn's lookup and retrieval); see llm/minilm.py.
EMBEDDING_QUERY_THREADS = envint("EMBEDDING_QUERY_THREADS", 1)
# Questions embedded by an int8 variant of MiniLM made from the packaged model at first use and
# kept in EMBEDDING_MODEL_DIR (llm/minilm_int8.py): about half the time per question.
EMBEDDING_QUESTION_INT8 = envbool("EMBEDDING_QUESTION_INT8", True)
EMBEDDING_MODEL_DIR = env("EMBEDDING_MODEL_DIR", str(BASE_DIR / ".data" / "models"))
# Empty: the chat model's OPENAI_BASE_URL / OPENAI_API_KEY.
EMBEDDING_BASE_URL = env("EMBEDDING_BASE_URL")
EMBEDDING_API_KEY = env("EMBEDDING_API_KEY")

# --- Conversation history: search, shares, retention, exports ---------------------------------
# Search ranks the user's newest matches only, this many (the response says "approximate"),
# first looking for them among the user's newest SEARCH_RECENT_WINDOW messages.
SEARCH_MAX_CANDIDATES = envint("SEARCH_MAX_CANDIDATES", 500)
SEARCH_RECENT_WINDOW = envint("SEARCH_RECENT_WINDOW", 2500)
TRASH_RETENTION_DAYS = envint("TRASH_RETENTION_DAYS", 30)
EXPORT_RETENTION_HOURS = envint("EXPORT_RETENTION_HOURS", 24)
CELERY_BEAT_SCHEDULE["conversations-purge"] = {"task": "conversations.purge", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["exports-expire"] = {
    "task": "conversations.exports_expire",
    "schedule": 3600.0,
}

# --- Knowledge: ingestion and retrieval ------------------------------------------------------
KNOWLEDGE_MAX_ATTEMPTS = envint("KNOWLEDGE_MAX_ATTEMPTS", 3)
# A document queued or processing for longer than this is queued again by the beat task.
KNOWLEDGE_STUCK_SECONDS = envint("KNOWLEDGE_STUCK_SECONDS", 1800)
KNOWLEDGE_TASK_TIME_LIMIT = envint("KNOWLEDGE_TASK_TIME_LIMIT", 900)
KNOWLEDGE_SEARCH_K = envint("KNOWLEDGE_SEARCH_K", 6)
KNOWLEDGE_HNSW_EF_SEARCH = envint("KNOWLEDGE_HNSW_EF_SEARCH", 200)
# Full-text matching uses the query's rarest terms, up to about this many chunks in all
# (500: SciFact hybrid nDCG@10 as with 2000, the full-text branch about twice as fast).
KNOWLEDGE_TEXT_MATCH_BUDGET = envint("KNOWLEDGE_TEXT_MATCH_BUDGET", 500)
# How often the per-collection lexeme counts are recounted (ingestion keeps them current).
KNOWLEDGE_LEXEME_STATS_SECONDS = envint("KNOWLEDGE_LEXEME_STATS_SECONDS", 900)
# At most this many prompt tokens go to retrieved sources (less when the window is small).
KNOWLEDGE_PROMPT_TOKENS = envint("KNOWLEDGE_PROMPT_TOKENS", 2000)
# Test hook: seconds to sleep after each embedded batch (lets a test kill a worker mid-run).
KNOWLEDGE_INGEST_PAUSE_SECONDS = envint("KNOWLEDGE_INGEST_PAUSE_SECONDS", 0)
CELERY_BEAT_SCHEDULE["documents-requeue-stuck"] = {
    "task": "knowledge.documents_requeue_stuck",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["lexeme-stats-refresh"] = {
    "task": "knowledge.lexeme_stats_refresh",
    "schedule": float(KNOWLEDGE_LEXEME_STATS_SECONDS),
}
KNOWLEDGE_INGEST_QUEUE = env("KNOWLEDGE_INGEST_QUEUE", "celery")

# --- Answer cache (conversations/answer_cache.py) ---------------------------------------------
# First questions of conversations, answered completely, are served again to askers with the
# same permission scope: exactly (Redis) or by meaning (pgvector, cosine similarity at least
# ANSWER_CACHE_THRESHOLD, chosen by bench/cache_threshold.py: the lowest with wrong hits <= 1%
# of hits on BANKING77's 3,080 questions; 0.83 hits twice as often with 2.4% wrong hits).
ANSWER_CACHE_ENABLED = envbool("ANSWER_CACHE_ENABLED", True)
ANSWER_CACHE_TTL_SECONDS = envint("ANSWER_CACHE_TTL_SECONDS", 7 * 86400)
ANSWER_CACHE_THRESHOLD = float(env("ANSWER_CACHE_THRESHOLD", "0.93"))
# When no provider can answer, a saved answer this similar is offered instead (with a notice).
ANSWER_CACHE_FALLBACK_THRESHOLD = float(env("ANSWER_CACHE_FALLBACK_THRESHOLD", "0.75"))
# Bump after changing prompts or retrieval in a way that should retire every cached answer.
ANSWER_CACHE_PROMPT_VERSION = env("ANSWER_CACHE_PROMPT_VERSION", "1")
ANSWER_CACHE_EF_SEARCH = envint("ANSWER_CACHE_EF_SEARCH", 40)
CELERY_BEAT_SCHEDULE["answer-cache-purge"] = {
    "task": "conversations.answer_cache_purge",
    "schedule": 3600.0,
}
