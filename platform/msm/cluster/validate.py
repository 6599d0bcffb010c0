"""Offline validation of rendered manifests: core objects via kubernetes-validate, KubeRay CRs via the CRD OpenAPI schema."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.37.0"
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml", "RayService": "ray.io_rayservices.yaml"}


@functools.lru_cache(maxsize=None)
def crd_schema(crd_dir: str, kind: str, version: str = "v1") -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``kind``/``version`` from a vendored KubeRay CRD file."""
    crd = yaml.safe_load((Path(crd_dir) / CRD_FILES[kind]).read_text())
    return next(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version)


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would prune: keys absent from ``properties`` where the schema neither preserves unknown
    fields nor declares ``additionalProperties``."""
    errors: list[str] = []
    if isinstance(obj, dict) and schema.get("type", "object") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return errors
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            if props is not None and key in props:
                errors += unknown_fields(value, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                errors += unknown_fields(value, extra, f"{path}.{key}")
            elif props is not None and not path.endswith(".metadata") and extra is not True:
                errors.append(f"{path}.{key}: unknown field (known: {', '.join(sorted(props))})")
    elif isinstance(obj, list) and "items" in schema:
        for i, item in enumerate(obj):
            errors += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return errors


def validate_custom(obj: dict[str, Any], crd_dir: str | Path) -> list[str]:
    """Schema errors plus unknown fields of a KubeRay object (empty list = valid)."""

    schema = crd_schema(str(crd_dir), obj["kind"], obj["apiVersion"].split("/")[1])
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    return errors + unknown_fields(obj, schema)


def validate_object(obj: dict[str, Any], crd_dir: str | Path, k8s_version: str = K8S_VERSION) -> list[str]:
    """Validate one rendered object; returns error strings prefixed with ``Kind/name``."""

    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if obj.get("kind") in CRD_FILES and obj.get("apiVersion", "").startswith("ray.io/"):
        return [f"{name}: {e}" for e in validate_custom(obj, crd_dir)]
    try:
        kubernetes_validate.validate(obj, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{name}: {'.'.join(map(str, e.path))}: {e.message}"]
    return []
