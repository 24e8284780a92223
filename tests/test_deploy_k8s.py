"""The Kubernetes manifests (deploy/k8s/) and the Helm chart (deploy/helm/workbench/), validated offline.

No cluster is needed: `kubectl apply --dry-run=client` still asks an API server for its resource types, so
the objects are validated against Kubernetes' own JSON schemas (kubernetes-validate, strict: an unknown or
misspelt field fails), and the chart is rendered by Helm's template engine itself (helm-python-sdk binds
Helm's Go SDK; no helm binary). Where kubectl exists, `kubectl kustomize` renders deploy/k8s as `kubectl
apply -k` would. Both trees are then checked for what a deployment needs (probes on /health, resource
requests, the API key from a Secret that is referenced, never defined, every WORKBENCH_* name one the
settings know) and against each other, so the chart and the plain manifests stay in step.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from helm_python import HelmValuesError, chart
from helpers import REPO

from workbench.config import Settings, env_names

K8S = REPO / "deploy" / "k8s"
CHART = REPO / "deploy" / "helm" / "workbench"
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests promise (Chart.yaml kubeVersion allows 1.27+)
WORKLOADS = ("Deployment", "StatefulSet")
VERSION = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
IMAGE_UID = int(re.search(r"^ARG UID=(\d+)", (REPO / "Dockerfile").read_text(), re.M).group(1))


def k8s_objects() -> list[dict]:
    """deploy/k8s as kustomize puts it together: the listed files, in the kustomization's namespace."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects = []
    for name in kustomization["resources"]:
        for obj in yaml.safe_load_all((K8S / name).read_text()):
            if obj and obj["kind"] != "Namespace":
                obj.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
            if obj:
                objects.append(obj)
    return objects


def helm_objects(values: dict | None = None, release: str = "workbench", namespace: str = "workbench") -> list[dict]:
    with chart.Chart.load(CHART) as c:
        rendered = c.render(values or {}, name=release, namespace=namespace, is_install=True)
    return [obj for path, text in sorted(rendered.items()) if path.endswith(".yaml")
            for obj in yaml.safe_load_all(text) if obj]


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objects if o["kind"] in WORKLOADS}


def validate_all(objects: list[dict]) -> None:
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def check_deployment(objects: list[dict], base: str) -> None:
    """What every rendering of the deployment must hold; `base` is the server's name (the release's)."""
    kinds = {o["kind"] for o in objects}
    assert "Secret" not in kinds, "secrets are referenced by name, never shipped in the manifests"
    services, pods = by_kind(objects, "Service"), pod_specs(objects)
    config = next(iter(by_kind(objects, "ConfigMap").values()))["data"]
    assert {base, f"{base}-dask-scheduler", f"{base}-dask-worker"} <= set(pods)

    # Every variable the workbench processes get is one the settings know, and the values parse.
    known = env_names()
    for name, spec in pods.items():
        for container in spec["containers"] + spec.get("initContainers", []):
            for var in container.get("env", []):
                if var["name"].startswith("WORKBENCH_"):
                    assert var["name"] in known, f"{name}: {var['name']} is no setting"
    unknown = sorted(k for k in config if k not in known)
    assert not unknown, f"the ConfigMap sets variables the settings do not know: {unknown}"
    saved = {k: v for k, v in os.environ.items() if k.startswith("WORKBENCH_")}
    try:
        for k in saved:
            del os.environ[k]
        os.environ.update({k: str(v) for k, v in config.items()})
        settings = Settings()  # a value that does not parse (a port, a number) raises here
    finally:
        for k in config:
            os.environ.pop(k, None)
        os.environ.update(saved)
    assert base in settings.allowed_hosts.split(","), "in-cluster clients reach the app by its Service name"

    # The Dask wiring: the workers and the app name the scheduler's Service and port.
    scheduler = urlsplit(settings.dask_scheduler)
    assert scheduler.hostname == f"{base}-dask-scheduler"
    assert scheduler.port in [p["port"] for p in services[scheduler.hostname]["spec"]["ports"]]
    worker = pods[f"{base}-dask-worker"]["containers"][0]
    assert worker["command"][:3] == ["dask", "worker", "$(WORKBENCH_DASK_SCHEDULER)"]
    assert "LLM=1" in worker["command"]

    # Every Service selects a pod template and targets a port that pod names.
    templates = [o["spec"]["template"] for o in objects if o["kind"] in WORKLOADS]
    for name, service in services.items():
        selector = service["spec"]["selector"]
        matching = [t for t in templates if selector.items() <= t["metadata"]["labels"].items()]
        assert len(matching) == 1, f"Service {name} selects {len(matching)} pod templates"
        ports = {p["name"] for c in matching[0]["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name} targets {port['targetPort']}, not a named port"

    # The app: probes on /health that pass the Host allowlist, the API key and Postgres from the Secret.
    server = pods[base]["containers"][0]
    assert server["ports"][0]["containerPort"] == settings.port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = server[probe]["httpGet"]
        assert get["path"].startswith("/health") and get["port"] == "http", probe
        assert {"name": "Host", "value": "localhost"} in get.get("httpHeaders", []), f"{probe}: the kubelet's Host"
    env = {e["name"]: e for e in server["env"]}
    assert "secretKeyRef" in env["WORKBENCH_API_KEY"]["valueFrom"]  # bound beyond loopback: a key is required
    for name in (base, f"{base}-dask-worker"):
        url = {e["name"]: e for e in pods[name]["containers"][0]["env"]}["WORKBENCH_POSTGRES_URL"]
        assert "secretKeyRef" in url["valueFrom"], f"{name}: the Postgres URL holds a password"

    # Every container asks for CPU and memory; the workbench's own pods run as the image's non-root user.
    for name, spec in pods.items():
        for container in spec["containers"]:
            requests = container.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= set(requests), f"{name}/{container['name']}: resource requests"
            assert "livenessProbe" in container and "readinessProbe" in container, f"{name}: probes"
            image = container["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
            if image.startswith("workbench:"):
                assert image == f"workbench:{VERSION}"
                assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] == IMAGE_UID


def comparable(objects: list[dict]) -> dict[tuple[str, str], dict]:
    """The parts the plain manifests and the chart must agree on: pod specs without pull policies."""
    out = {}
    for obj in objects:
        if obj["kind"] not in WORKLOADS:
            continue
        spec = yaml.safe_load(yaml.safe_dump(obj["spec"]["template"]["spec"]))
        for container in spec["containers"] + spec.get("initContainers", []):
            container.pop("imagePullPolicy", None)
        out[(obj["kind"], obj["metadata"]["name"])] = spec
    return out


# --- the plain manifests -----------------------------------------------------------------------------------

def test_every_manifest_validates_strictly_against_the_kubernetes_schemas():
    objects = k8s_objects()
    assert {"Namespace", "ConfigMap", "Service", "Deployment", "StatefulSet", "PersistentVolumeClaim"} <= {
        o["kind"] for o in objects}
    validate_all(objects)


def test_a_misspelt_field_is_caught():
    broken = k8s_objects()
    server = next(o for o in broken if o["kind"] == "Deployment" and o["metadata"]["name"] == "workbench")
    server["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(pytest.fail.Exception, match="livenessProbes"):
        validate_all(broken)


def test_the_manifests_hold_what_a_deployment_needs():
    check_deployment(k8s_objects(), "workbench")


def test_kubectl_kustomize_renders_them_as_apply_would():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (the schema checks above ran without it)")
    done = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rendered = [o for o in yaml.safe_load_all(done.stdout) if o]
    validate_all(rendered)
    names = lambda objs: sorted((o["kind"], o["metadata"]["name"]) for o in objs)  # noqa: E731
    assert names(rendered) == names(k8s_objects())
    assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "workbench" for o in rendered)
    check_deployment(rendered, "workbench")


# --- the Helm chart ---------------------------------------------------------------------------------------

def test_the_chart_lints_and_every_values_reference_exists():
    report = chart.lint(CHART, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 2], report
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for template in (CHART / "templates").iterdir():
        for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", template.read_text()):
            node = values
            for key in ref.split("."):
                assert isinstance(node, dict) and key in node, f"{template.name}: .Values.{ref} is not in values.yaml"
                node = node[key]


def test_the_chart_renders_valid_objects_in_step_with_the_plain_manifests():
    rendered = helm_objects()
    validate_all(rendered)
    check_deployment(rendered, "workbench")
    plain = k8s_objects()
    names = lambda objs: sorted((o["kind"], o["metadata"]["name"]) for o in objs if o["kind"] != "Namespace")  # noqa: E731
    assert names(rendered) == names(plain)
    assert comparable(rendered) == comparable(plain), "deploy/k8s and the chart's pods differ: change both"


def test_the_chart_follows_its_values():
    objects = helm_objects({"postgres": {"enabled": False}, "dask": {"worker": {"replicas": 5}},
                            "allowedHosts": ["wb.example.org"], "env": {"WORKBENCH_OFFLINE": "true"},
                            "image": {"tag": VERSION}}, release="prod", namespace="ai")
    validate_all(objects)
    check_deployment(objects, "prod-workbench")
    assert "StatefulSet" not in {o["kind"] for o in objects}  # a managed Postgres, named by the Secret's URL
    assert by_kind(objects, "Deployment")["prod-workbench-dask-worker"]["spec"]["replicas"] == 5
    config = by_kind(objects, "ConfigMap")["prod-workbench-config"]["data"]
    assert config["WORKBENCH_OFFLINE"] == "true"
    assert "wb.example.org" in config["WORKBENCH_ALLOWED_HOSTS"].split(",")
    assert "prod-workbench.ai.svc" in config["WORKBENCH_ALLOWED_HOSTS"].split(",")


@pytest.mark.parametrize("values,where", [
    ({"postgres": {"enabeld": False}}, "enabeld"),
    ({"server": {"port": 70000}}, "port"),
    ({"dask": {"worker": {"replicas": -1}}}, "replicas"),
])
def test_the_chart_refuses_bad_values_with_the_key_named(values, where):
    with pytest.raises(HelmValuesError, match=where):
        helm_objects(values)


def test_an_unknown_setting_in_the_values_env_is_caught():
    objects = helm_objects({"env": {"WORKBENCH_SANDBOX_TIMOUT_S": "5"}})
    with pytest.raises(AssertionError, match="WORKBENCH_SANDBOX_TIMOUT_S"):
        check_deployment(objects, "workbench")


def test_the_chart_references_only_files_it_has():
    # The pods run the image's own command script; make sure it is the one the Dockerfile ships.
    rendered = helm_objects()
    server = pod_specs(rendered)["workbench"]["containers"][0]
    assert (REPO / Path(server["command"][0]).relative_to("/app")).is_file()


def test_with_weights_in_the_image_no_pod_downloads_them():
    objects = helm_objects({"modelsBaked": True})
    validate_all(objects)
    check_deployment(objects, "workbench")
    for name, spec in pod_specs(objects).items():
        assert "initContainers" not in spec, name
        mounts = [m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts", [])]
        assert "/models" not in mounts, f"{name}: a volume on /models would hide the image's weights"
    defaults = pod_specs(helm_objects())
    assert all(defaults[n]["initContainers"][0]["name"] == "weights" for n in ("workbench", "workbench-dask-worker"))
