# Thresholds chosen on the training part, never on a test part (clipcluster.evaluation.tuning): every thresholded
# method runs on the training part's kNN graph once per value of its tuning.* grid; the best pairwise F there is its
# value.


if TUNED:

    rule tune_infomap:
        input:
            knn=TUNE_KNN,
            meta=part_meta(TRAIN_PART),
        output:
            f"{RES}/tuning/infomap.json",
        params:
            grid=TUNE["infomap"],
            opts=method_params("infomap"),
            seed=config["seed"],
            part=TRAIN_PART,
        log:
            f"{RES}/logs/tuning/infomap.log",
        benchmark:
            f"{RES}/benchmarks/tuning/infomap.tsv"
        threads: 1
        resources:
            mem_mb=mem_mb_for(6, base=2000),
            runtime=240,
        conda:
            "../../envs/cluster.yaml"
        script:
            "../../scripts/tune_infomap.py"

    if CC_METHODS:

        rule tune_clipcluster:
            input:
                model=lambda wildcards: f"{RES}/models/clipcluster_{CC_METHODS[wildcards.ccmethod][0]}.pt",
                knn=TUNE_KNN,
                face=face_bin(TRAIN_PART),
                meta=part_meta(TRAIN_PART),
                clip=part_clip(TRAIN_PART),
                targets=f"{RES}/targets/{TRAIN_PART}.npz",
                prompts=PROMPTS,
            output:
                f"{RES}/tuning/{{ccmethod}}.json",
            wildcard_constraints:
                ccmethod="|".join(CC_METHODS),
            params:
                grid=TUNE["clipcluster"],
                refine=lambda wildcards: CC_METHODS[wildcards.ccmethod][1],
                opts=cc_infer_cfg(),
                dim=DSCFG["feature_dim"],
                seed=config["seed"],
                part=TRAIN_PART,
            log:
                f"{RES}/logs/tuning/{{ccmethod}}.log",
            benchmark:
                f"{RES}/benchmarks/tuning/{{ccmethod}}.tsv"
            threads: MODEL_THREADS
            resources:
                gpu=MODEL_GPUS,
                mem_mb=mem_mb_for(1, base=4000),
                runtime=720,
            conda:
                "../../envs/models.yaml"
            script:
                "../../scripts/tune_clipcluster.py"

    if PEERS:

        rule tune_peer:
            input:
                model=f"{RES}/models/{{peer}}.pt",
                knn=TUNE_KNN,
                face=face_bin(TRAIN_PART),
                meta=part_meta(TRAIN_PART),
            output:
                f"{RES}/tuning/{{peer}}.json",
            wildcard_constraints:
                peer="|".join(PEERS),
            params:
                grid=lambda wildcards: TUNE[wildcards.peer],
                opts=lambda wildcards: peer_infer_cfg(wildcards.peer),
                dim=DSCFG["feature_dim"],
                device=lambda wildcards: config["methods"][wildcards.peer]["device"],
                seed=config["seed"],
                part=TRAIN_PART,
            log:
                f"{RES}/logs/tuning/{{peer}}.log",
            benchmark:
                f"{RES}/benchmarks/tuning/{{peer}}.tsv"
            threads: MODEL_THREADS
            resources:
                gpu=MODEL_GPUS,
                mem_mb=mem_mb_for(8, base=4000),
                runtime=720,
            conda:
                "../../envs/models.yaml"
            script:
                "../../scripts/tune_peer.py"
