"""Config validation: the JSON schema with its defaults, plus the cross-key checks a schema cannot say.

Every problem is reported as one line naming the key path and what was expected, e.g.
``config: methods.infomap.simfloor: unknown key (allowed: enabled, k, num_trials, sim_floor)``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid config; the message is one line."""


def _with_defaults(validator_class: type) -> type:
    """Extend a jsonschema validator so that ``default`` values are filled in while validating.

    This is the recipe from the jsonschema FAQ; defaults of objects are filled before their
    own properties are visited, so nested defaults apply too.
    """
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # noqa: ANN001 - jsonschema's callback signature
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """The config schema as a dict."""
    with open(path) as fh:
        return yaml.safe_load(fh)


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _one_line(error: jsonschema.ValidationError) -> str:
    where = _key_path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        prefix = f"{where}." if error.absolute_path else ""
        if error.schema.get("properties"):
            return f"{prefix}{extra[0]}: unknown key (allowed: {', '.join(allowed)})"
        return f"{where}: {error.message}"
    return f"{where}: {error.message}"


def validate(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return a validated copy of ``config`` with defaults filled in; raise ConfigError with one line otherwise."""
    schema = dict(schema or load_schema())
    resolved = copy.deepcopy(dict(config))
    validator_class = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(validator_class(schema).iter_errors(resolved), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        # The deepest error is the most specific one (a bad leaf rather than "its parent is invalid").
        deepest = max(errors, key=lambda e: len(e.absolute_path))
        raise ConfigError(f"config: {_one_line(deepest)}")
    name = resolved["dataset"]
    if name in resolved["datasets"] and "subsets" in resolved["datasets"][name]:
        # a dataset with fewer parts than MS1M's ten names its own subsets (the top-level ones would not fit it)
        resolved["subsets"] = copy.deepcopy(resolved["datasets"][name]["subsets"])
    _check_cross_keys(resolved)
    return resolved


def _check_cross_keys(cfg: dict[str, Any]) -> None:
    name = cfg["dataset"]
    if name not in cfg["datasets"]:
        raise ConfigError(
            f"config: dataset: {name!r} is not defined under datasets (defined: {', '.join(cfg['datasets'])})"
        )
    ds = cfg["datasets"][name]
    parts = ds["parts"]
    test_parts = set(parts[1:])
    for subset, members in cfg["subsets"].items():
        for part in members:
            if part not in test_parts:
                raise ConfigError(
                    f"config: subsets.{subset}: {part!r} is not a test part of dataset {name!r} "
                    f"(test parts: {', '.join(parts[1:])}; {parts[0]} is for training)"
                )
    tables = cfg["tables"]
    for key, subsets in (("table3_subset", [tables["table3_subset"]]), ("table5_subsets", tables["table5_subsets"])):
        for subset in subsets:
            if subset not in cfg["subsets"]:
                raise ConfigError(
                    f"config: tables.{key}: {subset!r} is not one of subsets ({', '.join(cfg['subsets'])})"
                )
    knn_k = cfg["knn"]["k"]
    for method, opts in cfg["methods"].items():
        if opts.get("enabled", True) and opts.get("k", 0) > knn_k:
            raise ConfigError(
                f"config: methods.{method}.k: {opts['k']} is more than knn.k = {knn_k} "
                "(methods read the first k neighbours of the one cached graph; raise knn.k)"
            )
    _check_peers(cfg["methods"], knn_k, ds["feature_dim"])
    _check_recognition(cfg)
    _check_table4(cfg)
    _check_images(name, ds)
    if ds["source"] == "features" and "root" not in ds["features"]:
        raise ConfigError(f"config: datasets.{name}.features.root: required when source is 'features'")
    if ds["source"] == "features" and cfg["methods"]["clipcluster"]["enabled"]:
        for key in ("clip", "attributes"):
            if key not in ds["features"]:
                raise ConfigError(
                    f"config: datasets.{name}.features.{key}: CLIP-Cluster needs CLIP embeddings and attributes "
                    "(give the template, or set methods.clipcluster.enabled: false)"
                )


def _check_images(name: str, ds: dict[str, Any]) -> None:
    """What the image sources need: where the photos are, and feature dimensions that match the face backend."""
    if ds["source"] not in ("mxrecord", "imagefolder"):
        return
    if "root" not in ds["images"]:
        raise ConfigError(f"config: datasets.{name}.images.root: required when source is {ds['source']!r}")
    if ds["images"]["demo"] and ds["source"] != "imagefolder":
        raise ConfigError(f"config: datasets.{name}.images.demo: the demo photos are an imagefolder source")
    faces = ds["faces"]
    if faces["backend"] == "dlib" and ds["feature_dim"] != 128:
        raise ConfigError(
            f"config: datasets.{name}.feature_dim: {ds['feature_dim']}, but faces.backend dlib gives 128-d features"
        )
    if faces["backend"] == "onnx" and not faces["onnx_model"]:
        raise ConfigError(f"config: datasets.{name}.faces.onnx_model: required when faces.backend is 'onnx'")


# methods whose clusters Figure 4 can train on (clipcluster_* ablations need clipcluster's models, so they count)
CLUSTER_METHODS = (
    "infomap", "kmeans", "dbscan", "hac", "aro", "cdp", "facet", "mhc", "clipcluster", "clipcluster_nohall",
)  # fmt: skip


def _check_recognition(cfg: dict[str, Any]) -> None:
    rec = cfg["recognition"]
    if not rec["enabled"]:
        return
    for subset in rec["subsets"]:
        if subset not in cfg["subsets"]:
            raise ConfigError(
                f"config: recognition.subsets: {subset!r} is not one of subsets ({', '.join(cfg['subsets'])})"
            )
    for method in rec["methods"]:
        if method not in CLUSTER_METHODS:
            raise ConfigError(
                f"config: recognition.methods: {method!r} is not a method (allowed: {', '.join(CLUSTER_METHODS)})"
            )
    ds = cfg["datasets"][cfg["dataset"]]
    photos = ds["source"] in ("mxrecord", "imagefolder")
    if rec["backbone"] == "resnet" and not photos:
        raise ConfigError(
            f"config: recognition.backbone: resnet trains on photos; dataset {cfg['dataset']!r} is a "
            f"{ds['source']} source (use backbone: features)"
        )
    if rec["view"] == "clip" and ds["source"] != "twin":
        raise ConfigError(
            f"config: recognition.view: clip needs the twin's identification set (CLIP views of its probes and "
            f"distractors); dataset {cfg['dataset']!r} is a {ds['source']} source (use face or auto)"
        )
    if photos:
        for key in ("probe_list", "distractor_list"):
            if not rec["identification"][key]:
                raise ConfigError(
                    f"config: recognition.identification.{key}: required for a photo dataset "
                    "(MegaFace-style probe and distractor photos), or set recognition.enabled: false"
                )
    elif ds["source"] != "twin":  # only the twin generates its probes and distractors
        for key in ("probe_bin", "probe_meta", "distractor_bin"):
            if not rec["identification"][key]:
                raise ConfigError(
                    f"config: recognition.identification.{key}: required for a dataset other than the twin "
                    "(the MegaFace-style probe and distractor features), or set recognition.enabled: false"
                )


def _check_table4(cfg: dict[str, Any]) -> None:
    name = cfg["tables"]["table4"]["dataset"]
    if name is None:
        return
    if name not in cfg["datasets"]:
        raise ConfigError(f"config: tables.table4.dataset: {name!r} is not defined under datasets")
    if name == cfg["dataset"]:
        raise ConfigError(f"config: tables.table4.dataset: {name!r} is the main dataset; Table 4 needs another one")
    parts = cfg["datasets"][name]["parts"]
    if len(parts) != 2:
        raise ConfigError(
            f"config: datasets.{name}.parts: Table 4 needs exactly two parts (train, test), got {len(parts)}"
        )
    try:
        validate(table4_config(cfg))
    except ConfigError as err:
        raise ConfigError(f"config: tables.table4 (its run's config): {str(err).removeprefix('config: ')}") from None


def table4_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config of Table 4's run (a module of the workflow): the main run's settings on ``tables.table4.dataset``,
    trained on its first part, tested on its second (subset ``test``), without Figure 4, ablations or (by default)
    the peers, and without a Table 4 of its own."""
    t4 = cfg["tables"]["table4"]
    out = merge(copy.deepcopy(dict(cfg)), t4["config"])
    parts = out["datasets"][t4["dataset"]]["parts"]
    out["dataset"] = t4["dataset"]
    out["subsets"] = {"test": [parts[1]]}
    out["tables"] = {
        "table3_subset": "test",
        "table5_subsets": ["test"],
        "table4": {"dataset": None, "peers": False, "config": {}},
    }
    out["recognition"] = {**out["recognition"], "enabled": False}
    out["methods"]["clipcluster"]["ablations"] = False
    for peer in ("facet", "mhc"):
        out["methods"][peer]["enabled"] = out["methods"][peer]["enabled"] and bool(t4["peers"])
    return out


def _check_peers(methods: dict[str, Any], knn_k: int, dim: int) -> None:
    """What the peers' model configs need of the graph and the features (clipcluster.peers checks it again)."""
    facet, mhc = methods["facet"], methods["mhc"]
    if facet["enabled"]:
        for key in ("hop1", "hop2"):
            if facet[key] > knn_k:
                raise ConfigError(
                    f"config: methods.facet.{key}: {facet[key]} is more than knn.k = {knn_k} "
                    "(FaceT reads its candidates from the one cached graph; raise knn.k)"
                )
    if mhc["enabled"]:
        if dim % mhc["heads"]:
            raise ConfigError(f"config: methods.mhc.heads: {mhc['heads']} does not divide feature_dim = {dim}")
        if mhc["mlp"][0] != 2 * dim:
            raise ConfigError(
                f"config: methods.mhc.mlp: starts at {mhc['mlp'][0]}, must start at 2 x feature_dim = {2 * dim} "
                "(the MLP reads the concatenated pair)"
            )


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config file, merge ``overrides`` on top (recursively), validate it."""
    with open(path) as fh:
        cfg = yaml.safe_load(fh) or {}
    if overrides:
        cfg = merge(cfg, overrides)
    return validate(cfg)


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge, ``top`` winning; the same rule Snakemake applies to --configfile."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
