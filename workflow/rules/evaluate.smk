# Evaluation: pairwise and BCubed precision/recall/F and NMI of a method on a subset, with its time.


rule evaluate:
    input:
        labels=f"{RES}/clusters/{{method}}/{{subset}}.labels",
        info=f"{RES}/clusters/{{method}}/{{subset}}.json",
        metas=subset_metas,
    output:
        f"{RES}/metrics/{{method}}/{{subset}}.json",
    log:
        f"{RES}/logs/evaluate/{{method}}/{{subset}}.log",
    benchmark:
        f"{RES}/benchmarks/evaluate/{{method}}/{{subset}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_for(20, base=1000),
        runtime=30,
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/evaluate.py"
