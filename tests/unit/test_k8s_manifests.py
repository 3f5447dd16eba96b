"""deploy/k8s: every manifest valid against the Kubernetes schemas (KEDA's ScaledObject against a small schema of
its required fields), and agreeing with the code: settings names, ports, probe paths, partitions, topic, group."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from consumers.notifier.settings import NotifierSettings
from producers.collector.settings import CollectorSettings
from streamrec.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31"
SCALED_OBJECT = {  # what KEDA requires of a ScaledObject with a kafka trigger (keda.sh/v1alpha1)
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object", "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"]},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "triggers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type", "metadata"],
                    "properties": {"type": {"const": "kafka"}, "metadata": {
                        "type": "object", "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                        "additionalProperties": {"type": "string"}}}}},
            },
        },
    },
}


def _documents() -> list[dict]:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    return [doc for name in listed for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def _one(kind: str, name: str) -> dict:
    (found,) = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("doc", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid(doc):
    if doc["kind"] == "ScaledObject":
        jsonschema.validate(doc, SCALED_OBJECT)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_configured_name_is_a_setting_of_the_code():
    known = {f"STREAMREC_{name.upper()}" for name in Settings.model_fields}
    known |= {f"STREAMREC_COLLECTOR_{name.upper()}" for name in CollectorSettings.model_fields}
    known |= {f"STREAMREC_NOTIFIER_{name.upper()}" for name in NotifierSettings.model_fields}
    config = _one("ConfigMap", "streamrec-config")["data"]
    secret = _one("Secret", "streamrec-secrets")["stringData"]
    assert set(config) | set(secret) <= known, (set(config) | set(secret)) - known
    own = {k.removeprefix("STREAMREC_").lower(): v for k, v in config.items()}
    Settings(**{k: v for k, v in own.items() if k in Settings.model_fields})  # the values parse as the code's types


def _container(name: str) -> dict:
    (container,) = _one("Deployment", name)["spec"]["template"]["spec"]["containers"]
    return container


def test_ports_probes_and_scaling_agree_with_the_code():
    config = _one("ConfigMap", "streamrec-config")["data"]
    for deployment, port_key, ready_path in (("streamrec-worker", "STREAMREC_WORKER_HTTP_PORT", "/readyz"),
                                              ("streamrec-collector", "STREAMREC_COLLECTOR_PORT", "/healthz"),
                                              ("streamrec-notifier", "STREAMREC_NOTIFIER_PORT", "/readyz")):
        container = _container(deployment)
        assert container["ports"][0]["containerPort"] == int(config[port_key]), deployment
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == ready_path
    assert _container("streamrec-worker")["args"] == ["worker"]
    scaled = _one("ScaledObject", "streamrec-worker")["spec"]
    kafka = scaled["triggers"][0]["metadata"]
    assert scaled["scaleTargetRef"]["name"] == "streamrec-worker"
    assert scaled["maxReplicaCount"] == int(config["STREAMREC_EVENTS_PARTITIONS"])  # no worker without a partition
    assert (kafka["topic"], kafka["consumerGroup"]) == (config["STREAMREC_EVENTS_TOPIC"],
                                                        config["STREAMREC_CONSUMER_GROUP"])
    assert kafka["bootstrapServers"] == config["STREAMREC_KAFKA_BOOTSTRAP"]

