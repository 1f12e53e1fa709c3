# Real photos (mxrecord, imagefolder): ingest and split by identity, then faces, CLIP and attributes in shards that
# SLURM runs in parallel (a failed shard reruns alone), gathered into the same per-part files the twin writes.

if DSCFG["source"] in IMAGE_SOURCES:
    wildcard_constraints:
        shard="[0-9]+",

    if IMG["demo"]:

        rule demo_photos:
            output:
                photos=directory(IMG["root"]),
                manifest=f"{RES}/demo_photos.json",
            params:
                downloads=f"{RES}/downloads",
            log:
                f"{RES}/logs/demo_photos.log",
            threads: 1
            resources:
                mem_mb=1000,
                runtime=30,
            conda:
                "../../envs/images.yaml"
            script:
                "../../scripts/img_demo_photos.py"

    checkpoint split_parts:
        input:
            split_inputs,
        output:
            index=f"{RES}/parts/index.parquet",
            parts=[f"{RES}/parts/{p}.index.parquet" for p in PARTS],
            summary=f"{RES}/parts/split.json",
        params:
            source=DSCFG["source"],
            images=canonical(IMG),
            split=canonical(DSCFG["split"]),
            parts=PARTS,
        log:
            f"{RES}/logs/split_parts.log",
        benchmark:
            f"{RES}/benchmarks/split_parts.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            "../../envs/images.yaml"
        script:
            "../../scripts/img_split.py"

    rule faces_shard:
        input:
            index=f"{RES}/parts/{{part}}.index.parquet",
        output:
            f"{RES}/faces/shards/{{part}}/{{shard}}.npz",
        params:
            source=DSCFG["source"],
            images=canonical(IMG),
            faces=canonical(DSCFG["faces"]),
        log:
            f"{RES}/logs/faces_shard/{{part}}/{{shard}}.log",
        benchmark:
            f"{RES}/benchmarks/faces_shard/{{part}}/{{shard}}.tsv"
        threads: 1
        resources:
            mem_mb=3000,
            runtime=240,
        conda:
            "../../envs/images.yaml"
        script:
            "../../scripts/img_faces_shard.py"

    rule clip_shard:
        input:
            index=f"{RES}/parts/{{part}}.index.parquet",
            faces=f"{RES}/faces/shards/{{part}}/{{shard}}.npz",
        output:
            f"{RES}/clip/shards/{{part}}/{{shard}}.npy",
        params:
            source=DSCFG["source"],
            images=canonical(IMG),
            clip=canonical(DSCFG["clip"]),
            shard_size=SHARD_SIZE,
            seed=config["seed"],
        log:
            f"{RES}/logs/clip_shard/{{part}}/{{shard}}.log",
        benchmark:
            f"{RES}/benchmarks/clip_shard/{{part}}/{{shard}}.tsv"
        threads: 1
        resources:
            mem_mb=6000,
            runtime=240,
            gpu=MODEL_GPUS,
        conda:
            "../../envs/images.yaml"
        script:
            "../../scripts/img_clip_shard.py"

    rule attributes_shard:
        input:
            unpack(attribute_shard_inputs),
        output:
            f"{RES}/attributes/shards/{{part}}/{{shard}}.parquet",
        params:
            source=DSCFG["source"],
            images=canonical(IMG),
            attributes=canonical(DSCFG["attributes"]),
            clip=canonical(DSCFG["clip"]),
            shard_size=SHARD_SIZE,
            seed=config["seed"],
        log:
            f"{RES}/logs/attributes_shard/{{part}}/{{shard}}.log",
        benchmark:
            f"{RES}/benchmarks/attributes_shard/{{part}}/{{shard}}.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=240,
        conda:
            "../../envs/images.yaml"
        script:
            "../../scripts/img_attributes_shard.py"

    rule gather_part:
        input:
            index=f"{RES}/parts/{{part}}.index.parquet",
            faces=part_shards("faces", "npz"),
            clip=part_shards("clip", "npy"),
            attributes=part_shards("attributes", "parquet"),
        output:
            bin=f"{RES}/faces/{{part}}.bin",
            meta=f"{RES}/parts/{{part}}.meta",
            clip=f"{RES}/clip/{{part}}.bin",
            attributes=f"{RES}/attributes/{{part}}.parquet",
            kept=f"{RES}/faces/{{part}}.kept.parquet",
            skipped=f"{RES}/faces/{{part}}.skipped.tsv",
            summary=f"{RES}/faces/{{part}}.json",
        params:
            shard_size=SHARD_SIZE,
            feature_dim=DSCFG["feature_dim"],
        log:
            f"{RES}/logs/gather_part/{{part}}.log",
        threads: 1
        resources:
            mem_mb=mem_mb_for(3),
            runtime=60,
        conda:
            "../../envs/images.yaml"
        script:
            "../../scripts/img_gather.py"

    rule clip_prompts:
        output:
            PROMPTS,
        params:
            clip=canonical(DSCFG["clip"]),
            seed=config["seed"],
        log:
            f"{RES}/logs/clip_prompts.log",
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../../envs/images.yaml"
        script:
            "../../scripts/img_clip_prompts.py"

    rule faces_report:
        input:
            split=f"{RES}/parts/split.json",
            summaries=[f"{RES}/faces/{p}.json" for p in PARTS],
            attributes=[f"{RES}/attributes/{p}.parquet" for p in PARTS],
            kept=[f"{RES}/faces/{p}.kept.parquet" for p in SUBSETS[TABLE3_SUBSET]],
            labels=f"{RES}/clusters/{FACES_SHEET_METHOD}/{TABLE3_SUBSET}.labels",
        output:
            csv=f"{RES}/tables/faces.csv",
            md=f"{RES}/tables/faces.md",
            attributes=report(
                f"{RES}/figures/attributes.png",
                caption="../report/attributes.rst",
                category="Data",
                labels={"figure": "attributes"},
            ),
            sheet=report(
                f"{RES}/figures/contact_sheet.png",
                caption="../report/contact_sheet.rst",
                category="Data",
                labels={"figure": "contact sheet"},
            ),
        params:
            parts=PARTS,
            source=DSCFG["source"],
            images=canonical(IMG),
            method=FACES_SHEET_METHOD,
            subset=TABLE3_SUBSET,
            seed=config["seed"],
        log:
            f"{RES}/logs/faces_report.log",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        conda:
            "../../envs/images.yaml"
        script:
            "../../scripts/img_faces_report.py"
