"""docker-compose.yml cannot run here (no Docker engine): keep it valid and consistent with the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from cli import app
from consumers.notifier.settings import NotifierSettings
from producers.collector.settings import CollectorSettings
from streamrec.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_kafka_in_kraft_mode_and_redis():
    services = _compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics are created explicitly
    assert "9092:9092" in kafka["ports"]
    assert services["redis"]["image"].startswith("redis:")
    assert "6379:6379" in services["redis"]["ports"]


def test_compose_pins_kafka_4_1_1_and_keeps_redis_on_an_fsynced_append_only_file():
    services = _compose()["services"]
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"  # 4.x: KRaft only, no ZooKeeper
    command = services["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=False))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"  # at most ~1 s of writes lost on a crash
    assert any(volume.split(":")[1] == "/data" for volume in services["redis"]["volumes"])
    assert "redis-data" in _compose()["volumes"]


def test_every_streamrec_service_uses_a_real_cli_command_and_known_settings():
    services = _compose()["services"]
    commands = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    known = {f"STREAMREC_{name.upper()}" for name in Settings.model_fields}
    known |= {f"STREAMREC_COLLECTOR_{name.upper()}" for name in CollectorSettings.model_fields}
    known |= {f"STREAMREC_NOTIFIER_{name.upper()}" for name in NotifierSettings.model_fields}
    for name in ("topics", "worker", "collector", "notifier"):
        service = services[name]
        assert service["build"] == "."
        assert service["command"][0] in commands, f"{name}: unknown command {service['command'][0]}"
        env = service["environment"]
        assert env["STREAMREC_KAFKA_BOOTSTRAP"] == "kafka:9092"
        for variable in env:
            assert variable in known, f"{name}: {variable} is not a setting"
    assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["worker"]["stop_signal"] == "SIGTERM"


def test_dockerfile_installs_the_package_and_runs_the_cli():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert 'ENTRYPOINT ["streamrec"]' in dockerfile
    for package in ("streamrec", "producers", "consumers", "model"):
        assert f"COPY {package} ./{package}" in dockerfile
