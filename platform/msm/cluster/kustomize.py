"""A small kustomize renderer for the subset k8s/ uses (no kustomize binary here) and offline manifest validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from msm.errors import MSMError

Obj = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "namePrefix", "labels", "images", "patches"}


def _load_docs(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def strategic_merge(base: Any, patch: Any) -> Any:
    """Strategic merge for core objects: maps merge, ``null`` deletes, lists of named maps merge by ``name``, other lists replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = strategic_merge(base[k], v) if k in base else v
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(x, dict) and "name" in x for x in base + patch):
        out = list(base)
        for item in patch:
            idx = next((i for i, b in enumerate(out) if b["name"] == item["name"]), None)
            if idx is None:
                out.append(item)
            else:
                out[idx] = strategic_merge(out[idx], item)
        return out
    return copy.deepcopy(patch)


def json6902(obj: Obj, ops: list[Obj]) -> Obj:
    """Apply RFC 6902 ``add``/``replace``/``remove`` operations."""
    obj = copy.deepcopy(obj)
    for op in ops:
        keys = [k.replace("~1", "/").replace("~0", "~") for k in op["path"].lstrip("/").split("/")]
        parent = obj
        for k in keys[:-1]:
            parent = parent[int(k)] if isinstance(parent, list) else parent[k]
        last: Any = keys[-1]
        if isinstance(parent, list):
            last = len(parent) if last == "-" else int(last)
        if op["op"] == "remove":
            del parent[last]
        elif op["op"] == "replace":
            parent[last]  # noqa: B018 - replace requires the target to exist (KeyError/IndexError otherwise)
            parent[last] = op["value"]
        elif op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(last, op["value"])
            else:
                parent[last] = op["value"]
        else:
            raise MSMError(f"JSON6902 op {op['op']!r} at {op['path']} is not supported (use add, replace or remove)")
    return obj


def _matches(obj: Obj, target: Obj) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    want = {"kind": obj["kind"], "name": obj["metadata"]["name"], "group": group, "version": version}
    return all(want.get(k) == v for k, v in target.items())


def _set_images(node: Any, images: list[Obj]) -> None:
    if isinstance(node, dict):
        for key in ("containers", "initContainers"):
            for c in node.get(key, []) if isinstance(node.get(key), list) else []:
                name = c.get("image", "").split(":")[0]
                for img in images:
                    if img["name"] == name:
                        c["image"] = f"{img.get('newName', name)}:{img['newTag']}" if "newTag" in img else img.get("newName", name)
        for v in node.values():
            _set_images(v, images)
    elif isinstance(node, list):
        for v in node:
            _set_images(v, images)


def render(kdir: str | Path) -> list[Obj]:
    """Render a kustomization directory to its list of objects."""
    kdir = Path(kdir)
    kfile = kdir / "kustomization.yaml"
    if not kfile.is_file():
        raise MSMError(f"{kdir} has no kustomization.yaml")
    k = yaml.safe_load(kfile.read_text())
    unknown = set(k) - SUPPORTED
    if unknown:
        raise MSMError(f"{kfile}: fields {sorted(unknown)} are not supported by msm's renderer (supported: {sorted(SUPPORTED)})")
    objs: list[Obj] = []
    for res in k.get("resources", []):
        p = kdir / res
        objs += render(p) if p.is_dir() else _load_docs(p)
    for patch in k.get("patches", []):
        if "path" in patch:
            for doc in _load_docs(kdir / patch["path"]):
                target = {"kind": doc["kind"], "name": doc["metadata"]["name"]}
                hits = [i for i, o in enumerate(objs) if _matches(o, target)]
                if not hits:
                    raise MSMError(f"{kfile}: patch {patch['path']} matches no {target['kind']} named {target['name']}")
                for i in hits:
                    objs[i] = strategic_merge(objs[i], doc)
        else:
            hits = [i for i, o in enumerate(objs) if _matches(o, patch["target"])]
            if not hits:
                raise MSMError(f"{kfile}: patch target {patch['target']} matches no object")
            for i in hits:
                objs[i] = json6902(objs[i], yaml.safe_load(patch["patch"]))
    for o in objs:
        meta = o["metadata"]
        if "namePrefix" in k:
            meta["name"] = k["namePrefix"] + meta["name"]
        if "namespace" in k:
            meta["namespace"] = k["namespace"]
        for entry in k.get("labels", []):
            meta.setdefault("labels", {}).update(entry["pairs"])
    if "images" in k:
        for o in objs:
            _set_images(o, k["images"])
    return objs
