"""Config validation: defaults fill in, unknown keys and bad values fail with one line naming the key."""

from pathlib import Path

import pytest
import yaml

from clipcluster.config import ConfigError, load, merge, validate

ROOT = Path(__file__).resolve().parent.parent
BASE = {"dataset": "twin", "datasets": {"twin": {"source": "twin"}}}


def test_defaults_fill_in():
    cfg = validate(BASE)
    assert cfg["methods"]["infomap"]["k"] == 50
    assert cfg["datasets"]["twin"]["parts"][0] == "part0"
    assert list(cfg["subsets"]) == ["part1", "part1-3", "part1-5", "part1-7", "part1-9"]
    assert cfg["subsets"]["part1-9"][-1] == "part9"
    assert cfg["scheduler"] == {"model_gpus": 0, "model_threads": 1}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"methods": {"infomap": {"simfloor": 0.5}}}, r"^config: methods\.infomap\.simfloor: unknown key \(allowed: "),
        ({"colour": "red"}, r"^config: colour: unknown key"),
        ({"methods": {"infomap": {"k": 0}}}, r"^config: methods\.infomap\.k: 0 is less than the minimum of 1$"),
        ({"datasets": {"twin": {"source": "lmdb"}}}, r"^config: datasets\.twin\.source: 'lmdb' is not one of"),
        ({"dataset": "nope"}, r"^config: dataset: 'nope' is not defined under datasets"),
        ({"subsets": {"bad": ["part0"]}}, r"^config: subsets\.bad: 'part0' is not a test part"),
        ({"tables": {"table3_subset": "part7"}}, r"^config: tables\.table3_subset: 'part7' is not one of subsets"),
        ({"datasets": {"twin": {"twin": {"preset": "huge"}}}}, r"^config: datasets\.twin\.twin\.preset: 'huge'"),
        ({"knn": {"k": 20}}, r"^config: methods\.infomap\.k: 50 is more than knn\.k = 20"),
        ({"knn": {"index": "hnsw"}}, r"^config: knn\.index: 'hnsw' is not one of"),
        ({"methods": {"kmeans": {"large": "gpu"}}}, r"^config: methods\.kmeans\.large: 'gpu' is not one of"),
        ({"methods": {"facet": {"hop1": 150}}}, r"^config: methods\.facet\.hop1: 150 is more than knn\.k = 80"),
        ({"methods": {"facet": {"hop": 5}}}, r"^config: methods\.facet\.hop: unknown key \(allowed: "),
        (
            {"recognition": {"enabled": True, "subsets": ["part1-4"]}},
            r"^config: recognition\.subsets: 'part1-4' is not one of subsets",
        ),
        (
            {"recognition": {"enabled": True, "methods": ["gcn"]}},
            r"^config: recognition\.methods: 'gcn' is not a method",
        ),
        (
            {"recognition": {"enabled": True, "view": "pixels"}},
            r"^config: recognition\.view: 'pixels' is not one of \['auto', 'face', 'clip'\]",
        ),
        (
            {
                "dataset": "f",
                "datasets": {"f": {"source": "features", "features": {"root": "/x"}}},
                "recognition": {
                    "enabled": True,
                    "view": "clip",
                    "identification": {"probe_bin": "p", "probe_meta": "m", "distractor_bin": "d"},
                },
            },
            r"^config: recognition\.view: clip needs the twin's identification set .* features source",
        ),
        ({"tables": {"table4": {"dataset": "wf"}}}, r"^config: tables\.table4\.dataset: 'wf' is not defined"),
        ({"tables": {"table4": {"dataset": "twin"}}}, r"^config: tables\.table4\.dataset: 'twin' is the main dataset"),
        (
            {"datasets": {"wf": {"source": "twin"}}, "tables": {"table4": {"dataset": "wf"}}},
            r"^config: datasets\.wf\.parts: Table 4 needs exactly two parts \(train, test\), got 10$",
        ),
        (
            {"methods": {"mhc": {"mlp": [256, 128]}}},
            r"^config: methods\.mhc\.mlp: starts at 256, must start at 2 x feature_dim = 512",
        ),
        ({"methods": {"mhc": {"heads": 7}}}, r"^config: methods\.mhc\.heads: 7 does not divide feature_dim = 256"),
        ({"methods": {"mhc": {"k": 81}}}, r"^config: methods\.mhc\.k: 81 is more than knn\.k = 80"),
        ({"scheduler": {"model_gpus": -1}}, r"^config: scheduler\.model_gpus: -1 is less than the minimum of 0$"),
        ({"scheduler": {"gpus": 1}}, r"^config: scheduler\.gpus: unknown key"),
    ],
)
def test_bad_config_one_line(patch, message):
    with pytest.raises(ConfigError, match=message) as err:
        validate(merge(BASE, patch))
    assert "\n" not in str(err.value)


def test_features_source_needs_root():
    with pytest.raises(ConfigError, match=r"datasets\.m\.features\.root: required"):
        validate({"dataset": "m", "datasets": {"m": {"source": "features"}}})


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_shipped_configs_validate(name):
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    top = yaml.safe_load((ROOT / "config" / name).read_text())
    cfg = validate(merge(base, top))  # the way Snakemake merges --configfile over the default
    assert cfg["dataset"] in cfg["datasets"]


def test_load_reads_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(BASE))
    assert load(p, {"seed": 3})["seed"] == 3


def test_disabled_method_k_is_not_checked():
    patch = {"knn": {"k": 50}, "methods": {m: {"enabled": False} for m in ("dbscan", "hac", "aro", "facet", "mhc")}}
    assert validate(merge(BASE, patch))["knn"]["k"] == 50


def test_peer_defaults_are_the_papers():
    """The schema's defaults for FaceT and MHC equal the models' own (the papers' values, hop1 aside)."""
    from clipcluster.peers.facet_model import DEFAULT_CONFIG as FACET
    from clipcluster.peers.mhc_model import DEFAULT_CONFIG as MHC

    cfg = validate(BASE)["methods"]
    for name, model in (("facet", FACET), ("mhc", MHC)):
        for key, value in cfg[name].items():
            if key not in ("enabled", "device"):
                assert model[key] == value or (key == "hop1" and value == 80 and model[key] == 150), (name, key)


def test_ms1m_config_restores_every_scaled_peer_key():
    """config/ms1m.yaml is merged over config.yaml: every peer key the default scales down for CPU is set back."""
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["methods"]
    ms1m = yaml.safe_load((ROOT / "config" / "ms1m.yaml").read_text())["methods"]
    for peer in ("facet", "mhc"):
        missing = sorted(set(base[peer]) - {"enabled"} - set(ms1m[peer]))
        assert not missing, (peer, missing)


def test_table4_config_runs_the_second_dataset_train_and_test():
    from clipcluster.config import table4_config

    cfg = load(ROOT / "config" / "config.yaml")
    t4 = table4_config(cfg)
    assert t4["dataset"] == "twin_webface" and t4["subsets"] == {"test": ["part1"]}
    assert t4["tables"]["table4"]["dataset"] is None  # no module inside the module
    assert not t4["recognition"]["enabled"] and not t4["methods"]["clipcluster"]["ablations"]
    assert not t4["methods"]["facet"]["enabled"] and not t4["methods"]["mhc"]["enabled"]
    assert validate(t4) == t4  # the module validates it again: it must already be complete
    assert cfg["dataset"] == "twin" and cfg["recognition"]["enabled"]  # the main config is left as it was
