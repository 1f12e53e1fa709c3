# Figure 4: face recognition trained on part0's labels plus a method's clusters of a test subset as pseudo-labels,
# evaluated by MegaFace-style rank-1 identification against distractors (CLIP-Cluster Sec. 4.5).

if REC["enabled"]:
    if DSCFG["source"] == "twin":

        rule identification_set:
            output:
                REC_IDENT,
            params:
                twin=TWIN_PARAMS,
                ident=canonical({k: v for k, v in REC["identification"].items() if "_bin" not in k and "_meta" not in k}),
            log:
                f"{RES}/logs/recognition/identification_set.log",
            benchmark:
                f"{RES}/benchmarks/recognition/identification_set.tsv"
            threads: 1
            resources:
                mem_mb=4000,
                runtime=30,
            conda:
                "../../envs/twin.yaml"
            script:
                "../../scripts/recog_identification_set.py"

    if DSCFG["source"] in IMAGE_SOURCES:

        rule identification_photos:
            input:
                probes=REC["identification"]["probe_list"],
                distractors=REC["identification"]["distractor_list"],
            output:
                npz=REC_IDENT,
                photos=f"{RES}/recognition/identification_photos.parquet",
                summary=f"{RES}/recognition/identification_photos.json",
            params:
                faces=canonical(DSCFG["faces"]),
            log:
                f"{RES}/logs/recognition/identification_photos.log",
            benchmark:
                f"{RES}/benchmarks/recognition/identification_photos.tsv"
            threads: 1
            resources:
                mem_mb=4000,
                runtime=720,
            conda:
                "../../envs/images.yaml"
            script:
                "../../scripts/recog_identification_photos.py"

    rule train_recognition:
        input:
            unpack(rec_train_inputs),
        output:
            model=f"{RES}/recognition/{{labels}}/{{subset}}.pt",
            metrics=f"{RES}/recognition/{{labels}}/{{subset}}.json",
            history=f"{RES}/recognition/{{labels}}/{{subset}}_history.jsonl",
        wildcard_constraints:
            labels="|".join(re.escape(x) for x in ["part0", *REC_LABELS]),
            subset="|".join(re.escape(x) for x in ["none", *REC["subsets"]]),
        params:
            cfg=canonical(
                {k: REC[k] for k in ("model", "arcface", "train", "min_cluster_size")}
                | ({"resnet": REC["resnet"]} if REC["backbone"] == "resnet" else {})
            ),
            backbone=REC["backbone"],
            source=DSCFG["source"],
            images=canonical(DSCFG.get("images", {})),
            dim=REC_DIM,
            view=REC_VIEW,
            seed=config["seed"],
            device=REC["device"],
            checkpoints=lambda wildcards: f"{RES}/recognition/checkpoints/{wildcards.labels}/{wildcards.subset}",
        log:
            f"{RES}/logs/recognition/{{labels}}/{{subset}}.log",
        benchmark:
            f"{RES}/benchmarks/recognition/{{labels}}/{{subset}}.tsv"
        threads: 1  # the feature network keeps one core busy (measured); two models train side by side
        resources:
            gpu=MODEL_GPUS,
            mem_mb=mem_mb_for(3, base=2000),
            runtime=720,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/recog_train.py"

    rule figure4:
        input:
            runs=[f"{RES}/recognition/{r}.json" for r in rec_runs()],
            ident=rec_ident_inputs(),
        output:
            png=report(
                f"{RES}/figures/figure4.png",
                caption="../report/figure4.rst",
                category="Figures",
                labels={"figure": "4: rank-1 vs pseudo-labelled data"},
            ),
            pdf=f"{RES}/figures/figure4.pdf",
            csv=f"{RES}/tables/figure4.csv",
            md=f"{RES}/tables/figure4.md",
            tex=f"{RES}/tables/figure4.tex",
            html=f"{RES}/tables/figure4.html",
        params:
            dataset=DS,
            source=DSCFG["source"],
            dim=REC_DIM,
            face_dim=DSCFG["feature_dim"],
            view=REC_VIEW,
            backbone=REC["backbone"],
        log:
            f"{RES}/logs/figures/figure4.log",
        benchmark:
            f"{RES}/benchmarks/figures/figure4.tsv"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            "../../envs/models.yaml"
        script:
            "../../scripts/figure4.py"
