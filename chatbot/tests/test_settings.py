import os
import subprocess
import sys

from django.conf import settings

from conftest import PROJECT_DIR


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    base |= {"DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", CHATBOT_ENV="production", ALLOWED_HOSTS="chat.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_settings_pass_the_deploy_check():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        CHATBOT_ENV="production",
        SECRET_KEY="x" * 20 + "a-long-random-production-secret-value-for-tests",
        ALLOWED_HOSTS="chat.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-secret-" + "y" * 50 + "\n")
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        CHATBOT_ENV="production",
        SECRET_KEY_FILE=str(secret_file),
        ALLOWED_HOSTS="chat.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "file-secret-" + "y" * 50


def test_debug_is_off_unless_asked():
    assert settings.DEBUG is False
