# Clustering methods that need no training: Infomap alone and the classic baselines, one rule each from
# common.smk's _FREE_RULES. Each writes clusters/{method}/{subset}.labels (one label per sample, in subset order)
# and a .json with its wall time (kNN build excluded, as the papers report) and parameters.

for _name, _spec in _FREE_RULES.items():
    if _name == "infomap_tuned" and _name not in BASE_METHODS:
        continue

    rule:
        name:
            f"cluster_{_name}"
        input:
            **_free_inputs(_spec, _name),
        output:
            labels=f"{RES}/clusters/{_name}/{{subset}}.labels",
            info=f"{RES}/clusters/{_name}/{{subset}}.json",
        params:
            **_free_params(_spec, _name),
        log:
            f"{RES}/logs/cluster/{_name}/{{subset}}.log",
        benchmark:
            f"{RES}/benchmarks/cluster/{_name}/{{subset}}.tsv"
        threads: _spec.get("threads", 1)
        resources:
            mem_mb=mem_mb_for(_spec.get("mem", 6), base=2000),
            runtime=_spec.get("runtime", 240),
        conda:
            "../../envs/cluster.yaml"
        script:
            "../../scripts/cluster.py"
