# The peers on the same data: FaceT and MHC, each trained on the training part (as both papers do) and run on
# every subset through the same kNN graph and evaluation as the other methods.


if PEERS:

    rule train_peer:
        priority: 30
        input:
            face=face_bin(TRAIN_PART),
            meta=part_meta(TRAIN_PART),
        output:
            model=f"{RES}/models/{{peer}}.pt",
            history=f"{RES}/models/{{peer}}_history.jsonl",
            report=f"{RES}/models/{{peer}}.json",
        wildcard_constraints:
            peer="|".join(PEERS),
        params:
            cfg=lambda wildcards: peer_train_cfg(wildcards.peer),
            dim=DSCFG["feature_dim"],
            seed=config["seed"],
            device=lambda wildcards: config["methods"][wildcards.peer]["device"],
            checkpoints=lambda wildcards: f"{RES}/models/checkpoints/{wildcards.peer}",
        log:
            f"{RES}/logs/train/{{peer}}.log",
        benchmark:
            f"{RES}/benchmarks/train/{{peer}}.tsv"
        threads: MODEL_THREADS
        resources:
            gpu=MODEL_GPUS,
            mem_mb=mem_mb_for(6, base=4000),
            runtime=1440,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/peer_train.py"

    rule infer_peer:
        input:
            model=f"{RES}/models/{{peer}}.pt",
            knn=KNN,
            bins=subset_bins,
            metas=subset_metas,
            tuning=tuning_file("{peer}"),
        output:
            labels=f"{RES}/clusters/{{peer}}/{{subset}}.labels",
            info=f"{RES}/clusters/{{peer}}/{{subset}}.json",
        wildcard_constraints:
            peer="|".join(PEERS),
        params:
            opts=lambda wildcards: peer_infer_cfg(wildcards.peer),
            dim=DSCFG["feature_dim"],
            device=lambda wildcards: config["methods"][wildcards.peer]["device"],
        log:
            f"{RES}/logs/infer/{{peer}}/{{subset}}.log",
        benchmark:
            f"{RES}/benchmarks/infer/{{peer}}/{{subset}}.tsv"
        threads: MODEL_THREADS
        resources:
            gpu=MODEL_GPUS,
            mem_mb=mem_mb_for(8, base=4000),
            runtime=720,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/peer_infer.py"
