# CLIP-Cluster: hallucination targets per part, B pretrained on the training part, the end-to-end model (and its
# Table 1 / no-hallucination variants), inference per subset (and Table 2's naive pruning).


if CC_METHODS:  # only when methods.clipcluster is enabled (it needs CLIP embeddings and attributes)
    rule hallucination_targets:
        input:
            attributes=lambda wildcards: part_attributes(wildcards.part),
            prompts=PROMPTS,
        output:
            f"{RES}/targets/{{part}}.npz",
        log:
            f"{RES}/logs/targets/{{part}}.log",
        benchmark:
            f"{RES}/benchmarks/targets/{{part}}.tsv"
        threads: 1
        resources:
            mem_mb=mem_mb_for(20, base=1000),
            runtime=30,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/cc_targets.py"


    rule pretrain_B:
        # the longest chain of the run starts here (B -> the trained models -> inference per subset -> Figure 4):
        # start it before the cheap jobs so the cores are not left to it alone at the end
        priority: 50
        input:
            face=face_bin(TRAIN_PART),
            meta=part_meta(TRAIN_PART),
            clip=part_clip(TRAIN_PART),
            targets=f"{RES}/targets/{TRAIN_PART}.npz",
        output:
            model=f"{RES}/models/B.pt",
            report=f"{RES}/models/B.json",
        params:
            cfg=canonical(CC["transfer"]),
            dim=DSCFG["feature_dim"],
            seed=config["seed"],
            device=CC["device"],
            checkpoints=f"{RES}/models/checkpoints/B",
        log:
            f"{RES}/logs/pretrain_B.log",
        benchmark:
            f"{RES}/benchmarks/pretrain_B.tsv"
        threads: 16
        resources:
            gpu=MODEL_GPUS,
            mem_mb=mem_mb_for(4, base=3000),
            runtime=720,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/cc_pretrain_b.py"


    rule train_clipcluster:
        priority: 40
        input:
            unpack(train_inputs),
        output:
            model=f"{RES}/models/clipcluster_{{variant}}.pt",
            history=f"{RES}/models/clipcluster_{{variant}}_history.jsonl",
            report=f"{RES}/models/clipcluster_{{variant}}.json",
        wildcard_constraints:
            variant="|".join(CC_MODELS),
        params:
            cfg=lambda wildcards: cc_train_cfg(wildcards.variant),
            dim=DSCFG["feature_dim"],
            seed=config["seed"],
            device=CC["device"],
            checkpoints=lambda wildcards: f"{RES}/models/checkpoints/{wildcards.variant}",
        log:
            f"{RES}/logs/train/{{variant}}.log",
        benchmark:
            f"{RES}/benchmarks/train/{{variant}}.tsv"
        threads: MODEL_THREADS
        resources:
            gpu=MODEL_GPUS,
            mem_mb=mem_mb_for(6, base=4000),
            runtime=1440,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/cc_train.py"


    rule infer_clipcluster:
        input:
            model=lambda wildcards: f"{RES}/models/clipcluster_{CC_METHODS[wildcards.ccmethod][0]}.pt",
            knn=KNN,
            bins=subset_bins,
            metas=subset_metas,
            clips=lambda wildcards: [part_clip(p) for p in SUBSETS[wildcards.subset]],
            targets=lambda wildcards: [f"{RES}/targets/{p}.npz" for p in SUBSETS[wildcards.subset]],
            prompts=PROMPTS,
            tuning=tuning_file("{ccmethod}"),
        output:
            labels=f"{RES}/clusters/{{ccmethod}}/{{subset}}.labels",
            info=f"{RES}/clusters/{{ccmethod}}/{{subset}}.json",
        wildcard_constraints:
            ccmethod="|".join(CC_METHODS),
        params:
            opts=cc_infer_cfg(),
            refine=lambda wildcards: CC_METHODS[wildcards.ccmethod][1],
            model_name=lambda wildcards: CC_METHODS[wildcards.ccmethod][0],
            dim=DSCFG["feature_dim"],
            seed=config["seed"],
        log:
            f"{RES}/logs/infer/{{ccmethod}}/{{subset}}.log",
        benchmark:
            f"{RES}/benchmarks/infer/{{ccmethod}}/{{subset}}.tsv"
        threads: MODEL_THREADS
        resources:
            gpu=MODEL_GPUS,
            mem_mb=mem_mb_for(1, base=4000),  # peak ~16 GB at 5.21M (23 GB of inputs, CLIP rows stay on disk)
            runtime=720,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/cc_infer.py"


    rule figure_hallucination:
        input:
            model=f"{RES}/models/clipcluster_cross.pt",
            knn=knn_path(TABLE3_SUBSET),
            bins=[face_bin(p) for p in SUBSETS[TABLE3_SUBSET]],
            metas=[part_meta(p) for p in SUBSETS[TABLE3_SUBSET]],
            clips=[part_clip(p) for p in SUBSETS[TABLE3_SUBSET]],
            targets=[f"{RES}/targets/{p}.npz" for p in SUBSETS[TABLE3_SUBSET]],
            attributes=[part_attributes(p) for p in SUBSETS[TABLE3_SUBSET]],
            prompts=PROMPTS,
        output:
            png=report(
                f"{RES}/figures/hallucination.png",
                caption="../report/hallucination.rst",
                category="Figures",
                labels={"figure": "hallucination"},
            ),
            pdf=f"{RES}/figures/hallucination.pdf",
            json=f"{RES}/figures/hallucination.json",
        params:
            k=CC["k"],
            dim=DSCFG["feature_dim"],
            seed=config["seed"],
            subset=TABLE3_SUBSET,
            dataset=DS,
        log:
            f"{RES}/logs/figures/hallucination.log",
        benchmark:
            f"{RES}/benchmarks/figures/hallucination.tsv"
        threads: 2
        resources:
            mem_mb=mem_mb_for(8, base=2000),
            runtime=30,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/figure_hallucination.py"
