"""Render k8s/ overlays with msm's kustomize subset and validate every object offline (core schemas + KubeRay CRDs)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from msm.cluster.kustomize import json6902, render, strategic_merge
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
def test_overlay_renders_and_validates(overlay, crd_dir):
    objs = render(REPO / "k8s" / overlay)
    errors = [e for o in objs for e in validate_object(o, crd_dir)]
    assert errors == []
    for o in objs:
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "msm-platform"
        for c in _containers(o):  # overlays pin the registry image; base keeps the placeholder name
            assert c["image"] == "msm-platform" if overlay == "base" else c["image"].startswith("ghcr.io/example/msm-platform:0.1.0-")


def test_gpu_overlay_contents():
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


def test_dev_cpu_overlay_has_no_gpus():
    objs = _by_kind(render(REPO / "k8s" / "overlays" / "dev-cpu"))
    assert not any(k == "RayJob" for k, _ in objs)
    text = yaml.safe_dump(list(objs.values()))
    assert "nvidia.com/gpu" not in text and "0.1.0-cpu" in text
    assert all(o["metadata"]["namespace"] == "msm-dev" for o in objs.values())
    assert objs[("PersistentVolumeClaim", "msm-shared")]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_misspelt_fields_fail_validation(crd_dir):
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


def test_patch_semantics_against_hand_results():
    base = {"a": {"b": 1, "c": [1, 2]}, "cs": [{"name": "x", "v": 1}, {"name": "y", "v": 2}], "gone": 1}
    patch = {"a": {"c": [3]}, "cs": [{"name": "y", "v": 5}, {"name": "z"}], "gone": None}
    assert strategic_merge(base, patch) == {"a": {"b": 1, "c": [3]}, "cs": [{"name": "x", "v": 1}, {"name": "y", "v": 5}, {"name": "z"}]}
    ops = [{"op": "replace", "path": "/cs/1/v", "value": 9}, {"op": "remove", "path": "/gone"},
           {"op": "add", "path": "/cs/-", "value": {"name": "w"}}, {"op": "add", "path": "/a~1b", "value": 0}]
    assert json6902(base, ops) == {"a": {"b": 1, "c": [1, 2]}, "cs": [{"name": "x", "v": 1}, {"name": "y", "v": 9}, {"name": "w"}], "a/b": 0}
    with pytest.raises(KeyError):
        json6902(base, [{"op": "replace", "path": "/missing", "value": 1}])


def test_job_kustomizations_are_exactly_the_ones_with_rayjobs():
    folders = sorted(str(p.parent.relative_to(REPO / "k8s")) for p in (REPO / "k8s").rglob("kustomization.yaml"))
    with_jobs = [f for f in folders if any(o["kind"] == "RayJob" for o in render(REPO / "k8s" / f))]
    assert with_jobs == JOB_KUSTOMIZATIONS


@pytest.mark.parametrize("overlay", JOB_KUSTOMIZATIONS)
def test_rayjob_entrypoints_name_existing_configs_and_valid_overrides(overlay):
    """Each RayJob runs ``python jobs/X.py --config FILE key=value ...``: the script and config exist and the
    overrides are keys of that config (a typo here only shows once the job runs on the cluster)."""
    import shlex

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
        if job == "sweep":
            load_sweep(config, overrides)
        else:
            load_config(config, {"pretrain": PretrainConfig, "mine": MineConfig, "finetune": FinetuneConfig}[job], overrides)
