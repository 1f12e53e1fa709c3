# Clustering methods that need no training: Infomap alone and the classic baselines.
# Each writes clusters/{method}/{subset}.labels (one label per sample, in subset order) and a .json
# with its wall time (kNN build excluded, as the papers report) and parameters.



rule cluster_infomap:
    input:
        knn=knn_file("infomap"),
    output:
        labels=f"{RES}/clusters/infomap/{{subset}}.labels",
        info=f"{RES}/clusters/infomap/{{subset}}.json",
    params:
        method="infomap",
        opts=method_params("infomap"),
        seed=config["seed"],
    log:
        f"{RES}/logs/cluster/infomap/{{subset}}.log",
    benchmark:
        f"{RES}/benchmarks/cluster/infomap/{{subset}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_for(6, base=2000),
        runtime=240,
    conda:
        "../../envs/cluster.yaml"
    script:
        "../../scripts/cluster.py"


if "infomap_tuned" in BASE_METHODS:

    rule cluster_infomap_tuned:
        input:
            knn=knn_file("infomap"),
            tuning=f"{RES}/tuning/infomap.json",
        output:
            labels=f"{RES}/clusters/infomap_tuned/{{subset}}.labels",
            info=f"{RES}/clusters/infomap_tuned/{{subset}}.json",
        params:
            method="infomap",  # Infomap alone, its floor replaced by the one chosen on the training part
            opts=method_params("infomap"),
            seed=config["seed"],
        log:
            f"{RES}/logs/cluster/infomap_tuned/{{subset}}.log",
        benchmark:
            f"{RES}/benchmarks/cluster/infomap_tuned/{{subset}}.tsv"
        threads: 1
        resources:
            mem_mb=mem_mb_for(6, base=2000),
            runtime=240,
        conda:
            "../../envs/cluster.yaml"
        script:
            "../../scripts/cluster.py"


rule cluster_kmeans:
    input:
        bins=subset_bins,
        metas=subset_metas,
    output:
        labels=f"{RES}/clusters/kmeans/{{subset}}.labels",
        info=f"{RES}/clusters/kmeans/{{subset}}.json",
    params:
        method="kmeans",
        opts=method_params("kmeans"),
        seed=config["seed"],
        dim=DSCFG["feature_dim"],
    log:
        f"{RES}/logs/cluster/kmeans/{{subset}}.log",
    benchmark:
        f"{RES}/benchmarks/cluster/kmeans/{{subset}}.tsv"
    threads: 16
    resources:
        mem_mb=mem_mb_for(3, base=2000),
        runtime=600,
    conda:
        "../../envs/cluster.yaml"
    script:
        "../../scripts/cluster.py"


rule cluster_dbscan:
    input:
        knn=knn_file("dbscan"),
    output:
        labels=f"{RES}/clusters/dbscan/{{subset}}.labels",
        info=f"{RES}/clusters/dbscan/{{subset}}.json",
    params:
        method="dbscan",
        opts=method_params("dbscan"),
        seed=config["seed"],
    log:
        f"{RES}/logs/cluster/dbscan/{{subset}}.log",
    benchmark:
        f"{RES}/benchmarks/cluster/dbscan/{{subset}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_for(6, base=2000),
        runtime=240,
    conda:
        "../../envs/cluster.yaml"
    script:
        "../../scripts/cluster.py"


rule cluster_hac:
    input:
        knn=knn_file("hac"),
        bins=subset_bins,
        metas=subset_metas,
    output:
        labels=f"{RES}/clusters/hac/{{subset}}.labels",
        info=f"{RES}/clusters/hac/{{subset}}.json",
    params:
        method="hac",
        opts=method_params("hac"),
        seed=config["seed"],
        dim=DSCFG["feature_dim"],
    log:
        f"{RES}/logs/cluster/hac/{{subset}}.log",
    benchmark:
        f"{RES}/benchmarks/cluster/hac/{{subset}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_for(6, base=2000),
        runtime=720,
    conda:
        "../../envs/cluster.yaml"
    script:
        "../../scripts/cluster.py"


rule cluster_aro:
    input:
        knn=knn_file("aro"),
    output:
        labels=f"{RES}/clusters/aro/{{subset}}.labels",
        info=f"{RES}/clusters/aro/{{subset}}.json",
    params:
        method="aro",
        opts=method_params("aro"),
        seed=config["seed"],
    log:
        f"{RES}/logs/cluster/aro/{{subset}}.log",
    benchmark:
        f"{RES}/benchmarks/cluster/aro/{{subset}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_for(6, base=2000),
        runtime=240,
    conda:
        "../../envs/cluster.yaml"
    script:
        "../../scripts/cluster.py"
