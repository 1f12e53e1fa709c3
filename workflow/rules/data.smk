# Data: the MS1M twin, generated part by part (each part is one job, so SLURM can run them in parallel
# and the 5.8M-sample preset never holds more than one part in memory).

if DSCFG["source"] == "twin":

    rule twin_part:
        output:
            face=f"{RES}/faces/{{part}}.bin",
            clip=f"{RES}/clip/{{part}}.bin",
            meta=f"{RES}/parts/{{part}}.meta",
            attributes=f"{RES}/attributes/{{part}}.parquet",
        params:
            twin=TWIN_PARAMS,
            part_index=lambda wildcards: PARTS.index(wildcards.part),
        log:
            f"{RES}/logs/twin_part/{{part}}.log",
        benchmark:
            f"{RES}/benchmarks/twin_part/{{part}}.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=30,
        conda:
            "../../envs/twin.yaml"
        script:
            "../../scripts/twin_part.py"

    rule twin_prompts:
        output:
            f"{RES}/prompts/text.npz",
        params:
            twin=TWIN_PARAMS,
        log:
            f"{RES}/logs/twin_prompts.log",
        benchmark:
            f"{RES}/benchmarks/twin_prompts.tsv"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            "../../envs/twin.yaml"
        script:
            "../../scripts/twin_prompts.py"

    rule twin_card:
        input:
            metas=[part_meta(p) for p in PARTS],
            face=f"{RES}/faces/{PARTS[1]}.bin",
            clip=f"{RES}/clip/{PARTS[1]}.bin",
            attributes=f"{RES}/attributes/{PARTS[1]}.parquet",
            prompts=f"{RES}/prompts/text.npz",
        output:
            json=f"{RES}/twin_card.json",
            md=f"{RES}/twin_card.md",
            png=report(
                f"{RES}/twin_card.png",
                caption="../report/twin_card.rst",
                category="Data",
                labels={"figure": "twin card"},
            ),
        params:
            twin=TWIN_PARAMS,
            parts=PARTS,
            card_part=PARTS[1],
            seed=config["seed"],
        log:
            f"{RES}/logs/twin_card.log",
        benchmark:
            f"{RES}/benchmarks/twin_card.tsv"
        threads: 1
        resources:
            mem_mb=mem_mb_for(3),
            runtime=30,
        conda:
            "../../envs/twin.yaml"
        script:
            "../../scripts/twin_card.py"
