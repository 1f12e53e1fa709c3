# The kNN affinity graph of a subset (exact inner product, or an approximate index with measured recall).


rule knn:
    input:
        bins=subset_bins,
        metas=subset_metas,
    output:
        graph=f"{RES}/knn/{{subset}}_k{{k}}.npz",
        info=f"{RES}/knn/{{subset}}_k{{k}}.json",
    params:
        dim=DSCFG["feature_dim"],
        knn=canonical(config["knn"]),
        seed=config["seed"],
    log:
        f"{RES}/logs/knn/{{subset}}_k{{k}}.log",
    benchmark:
        f"{RES}/benchmarks/knn/{{subset}}_k{{k}}.tsv"
    threads: SHARED_THREADS
    resources:
        mem_mb=mem_mb_for(3, base=2000),
        runtime=240,
    conda:
        "../../envs/knn.yaml"
    script:
        "../../scripts/knn.py"
