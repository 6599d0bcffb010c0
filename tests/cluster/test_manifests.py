"""Render k8s/ overlays with the real ``kubectl kustomize`` (conftest.py) and validate every object offline (core schemas
+ KubeRay CRDs)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from msm.cluster.validate import K8S_VERSION, validate_object

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO.parent / "shared" / "k8s" / "kuberay-crds"
OVERLAYS = ["base", "overlays/dev-cpu", "overlays/gpu"]
JOB_KUSTOMIZATIONS = ["jobs", "overlays/gpu"]  # the folders whose render holds RayJobs (checked below)


@pytest.fixture(scope="module")
def crd_dir() -> Path:
    if not (CRDS / "ray.io_rayjobs.yaml").is_file():
        pytest.skip(f"KubeRay CRDs not found at {CRDS}")
    return CRDS


def _by_kind(objs):
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay, crd_dir, render):
    objs = render(REPO / "k8s" / overlay)
    errors = [e for o in objs for e in validate_object(o, crd_dir)]
    assert errors == []
    for o in objs:
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "msm-platform"
        for c in _containers(o):  # overlays pin the registry image; base keeps the placeholder name
            assert c["image"] == "msm-platform" if overlay == "base" else c["image"].startswith("ghcr.io/example/msm-platform:0.1.0-")


def test_gpu_overlay_contents(render):
    objs = _by_kind(render(REPO / "k8s" / "overlays" / "gpu"))
    kinds = sorted(k for k, _ in objs)
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "RayCluster", "RayJob", "RayJob", "RayJob", "RayJob",
                     "Service"]
    rc = objs[("RayCluster", "msm")]["spec"]
    assert rc["rayVersion"] == "2.60.0" and rc["enableInTreeAutoscaling"] is True
    assert rc["headGroupSpec"]["serviceType"] == "ClusterIP"
    pre = objs[("RayJob", "msm-pretrain")]["spec"]
    workers = pre["rayClusterSpec"]["workerGroupSpecs"]
    gpus = sum(w["replicas"] * int(w["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) for w in workers)
    assert gpus == 8 and pre["shutdownAfterJobFinishes"] and pre["ttlSecondsAfterFinished"] > 0
    assert yaml.safe_load(pre["runtimeEnvYAML"])["env_vars"]["HF_HUB_OFFLINE"] == "1"
    assert objs[("Service", "msm-ui")]["spec"]["type"] == "ClusterIP"
    for o in objs.values():  # every container: non-root, requests and limits
        text = yaml.safe_dump(o)
        for c in _containers(o):
            assert c["image"] == "ghcr.io/example/msm-platform:0.1.0-gpu"
            assert c["resources"]["requests"] and c["resources"]["limits"]
            assert c["securityContext"]["runAsNonRoot"] is True
        assert "NodePort" not in text and "LoadBalancer" not in text


def _containers(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "containers":
                yield from v
            else:
                yield from _containers(v)
    elif isinstance(node, list):
        for v in node:
            yield from _containers(v)


def test_dev_cpu_overlay_has_no_gpus(render):
    objs = _by_kind(render(REPO / "k8s" / "overlays" / "dev-cpu"))
    assert not any(k == "RayJob" for k, _ in objs)
    text = yaml.safe_dump(list(objs.values()))
    assert "nvidia.com/gpu" not in text and "0.1.0-cpu" in text
    assert all(o["metadata"]["namespace"] == "msm-dev" for o in objs.values())
    assert objs[("PersistentVolumeClaim", "msm-shared")]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_misspelt_fields_fail_validation(crd_dir, render):
    objs = _by_kind(render(REPO / "k8s" / "overlays" / "gpu"))
    job = copy.deepcopy(objs[("RayJob", "msm-pretrain")])
    job["spec"]["shutdownAfterJobFinish"] = job["spec"].pop("shutdownAfterJobFinishes")
    errs = validate_object(job, crd_dir)
    assert len(errs) == 1 and "spec.shutdownAfterJobFinish: unknown field" in errs[0]
    rc = copy.deepcopy(objs[("RayCluster", "msm")])
    rc["spec"]["workerGroupSpecs"][0]["maxReplica"] = 8
    assert any("workerGroupSpecs[0].maxReplica: unknown field" in e for e in validate_object(rc, crd_dir))
    rc = copy.deepcopy(objs[("RayCluster", "msm")])
    rc["spec"]["workerGroupSpecs"][0]["replicas"] = "two"  # type error from the CRD schema itself
    assert any("'two' is not of type 'integer'" in e for e in validate_object(rc, crd_dir))
    dep = copy.deepcopy(objs[("Deployment", "msm-ui")])
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert validate_object(dep, crd_dir), f"core schema {K8S_VERSION} strict should reject imagePullPolcy"


def test_real_kustomize_merge_keys_registry_ports_and_name_references(tmp_path, render):
    """What the hand-written renderer this replaced got wrong: ``volumeMounts`` merge by ``mountPath`` and ``ports`` by
    ``containerPort`` (not by ``name``), an image name with a registry port (``registry:5000/img``) is matched whole,
    and ``namePrefix`` also rewrites the references to the renamed objects."""
    base, overlay = tmp_path / "base", tmp_path / "overlay"
    base.mkdir()
    overlay.mkdir()
    container = {"name": "app", "image": "registry:5000/team/app:1.0",
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "envFrom": [{"configMapRef": {"name": "cfg"}}],
                 "volumeMounts": [{"name": "shared", "mountPath": "/mnt/a"}]}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
                  "spec": {"selector": {"matchLabels": {"app": "a"}},
                           "template": {"metadata": {"labels": {"app": "a"}},
                                        "spec": {"containers": [container],
                                                 "volumes": [{"name": "shared", "persistentVolumeClaim": {"claimName": "data"}}]}}}}
    (base / "app.yaml").write_text(yaml.safe_dump_all([
        deployment,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"K": "v"}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]))
    (base / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["app.yaml"]}))
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
             "spec": {"template": {"spec": {"containers": [{
                 "name": "app",
                 "ports": [{"name": "http", "containerPort": 9090}],  # same name, another port: a second entry
                 "volumeMounts": [{"name": "shared", "mountPath": "/mnt/b", "readOnly": True}]}]}}}}
    (overlay / "patch.yaml").write_text(yaml.safe_dump(patch))
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["../base"], "namePrefix": "p-", "patches": [{"path": "patch.yaml"}],
        "images": [{"name": "registry:5000/team/app", "newName": "registry:5000/team/app2", "newTag": "2.0"}]}))

    objs = _by_kind(render(overlay))
    assert sorted(objs) == [("ConfigMap", "p-cfg"), ("Deployment", "p-app"), ("PersistentVolumeClaim", "p-data")]
    spec = objs[("Deployment", "p-app")]["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["image"] == "registry:5000/team/app2:2.0"
    assert sorted((m["mountPath"], m.get("readOnly", False)) for m in c["volumeMounts"]) == [("/mnt/a", False), ("/mnt/b", True)]
    assert sorted(p["containerPort"] for p in c["ports"]) == [8080, 9090]
    assert c["envFrom"] == [{"configMapRef": {"name": "p-cfg"}}]
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "p-data"


def test_job_kustomizations_are_exactly_the_ones_with_rayjobs(render):
    folders = sorted(str(p.parent.relative_to(REPO / "k8s")) for p in (REPO / "k8s").rglob("kustomization.yaml"))
    with_jobs = [f for f in folders if any(o["kind"] == "RayJob" for o in render(REPO / "k8s" / f))]
    assert with_jobs == JOB_KUSTOMIZATIONS


@pytest.mark.parametrize("overlay", JOB_KUSTOMIZATIONS)
def test_rayjob_entrypoints_name_existing_configs_and_valid_overrides(overlay, render):
    """Each RayJob runs ``python jobs/X.py --config FILE key=value ...``: the script and config exist and the
    overrides are keys of that config (a typo here only shows once the job runs on the cluster)."""
    import shlex

    from msm.cluster.submit import UPLOADED_PYTHONPATH
    from msm.config import load_config, parse_overrides
    from msm.data.config import MineConfig
    from msm.finetune.config import FinetuneConfig
    from msm.train.config import PretrainConfig
    from msm.tune.config import load_sweep

    jobs = {name: obj for (kind, name), obj in _by_kind(render(REPO / "k8s" / overlay)).items() if kind == "RayJob"}
    assert sorted(jobs) == ["msm-finetune", "msm-mine", "msm-pretrain", "msm-sweep"]
    for name, obj in jobs.items():
        argv = shlex.split(obj["spec"]["entrypoint"])
        assert argv[:1] == ["python"] and (REPO / argv[1]).is_file(), name
        config = REPO / argv[argv.index("--config") + 1]
        overrides = parse_overrides(argv[argv.index("--config") + 2:])
        job = Path(argv[1]).stem
        env = yaml.safe_load(obj["spec"]["runtimeEnvYAML"])  # the uploaded package first on driver and workers
        assert env["env_vars"]["PYTHONPATH"] == UPLOADED_PYTHONPATH and env["working_dir"], name
        if job == "sweep":
            load_sweep(config, overrides)
        else:
            load_config(config, {"pretrain": PretrainConfig, "mine": MineConfig, "finetune": FinetuneConfig}[job], overrides)
