# The paper's tables from this run's metrics, with the published numbers in labelled columns.


rule table3:
    input:
        metrics=expand(f"{RES}/metrics/{{method}}/{TABLE3_SUBSET}.json", method=METHODS),
    output:
        csv=f"{RES}/tables/table3.csv",
        md=f"{RES}/tables/table3.md",
        tex=f"{RES}/tables/table3.tex",
        html=report(
            f"{RES}/tables/table3.html",
            caption="../report/table3.rst",
            category="Tables",
            labels={"table": f"3: every method on {TABLE3_SUBSET}"},
        ),
    params:
        table="table3",
        methods=METHODS,
        subsets=[TABLE3_SUBSET],
        dataset=DS,
        source=DSCFG["source"],
    log:
        f"{RES}/logs/tables/table3.log",
    benchmark:
        f"{RES}/benchmarks/tables/table3.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/tables.py"


rule table5:
    input:
        metrics=expand(f"{RES}/metrics/{{method}}/{{subset}}.json", method=METHODS, subset=TABLE5_SUBSETS),
    output:
        csv=f"{RES}/tables/table5.csv",
        md=f"{RES}/tables/table5.md",
        tex=f"{RES}/tables/table5.tex",
        html=report(
            f"{RES}/tables/table5.html",
            caption="../report/table5.rst",
            category="Tables",
            labels={"table": "5: every method per scale"},
        ),
    params:
        table="table5",
        methods=METHODS,
        subsets=TABLE5_SUBSETS,
        dataset=DS,
        source=DSCFG["source"],
    log:
        f"{RES}/logs/tables/table5.log",
    benchmark:
        f"{RES}/benchmarks/tables/table5.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/tables.py"


if T4_DS:

    rule table4:
        input:
            metrics=expand(f"results/{T4_DS}/metrics/{{method}}/test.json", method=T4_METHODS),
        output:
            csv=f"{RES}/tables/table4.csv",
            md=f"{RES}/tables/table4.md",
            tex=f"{RES}/tables/table4.tex",
            html=report(
                f"{RES}/tables/table4.html",
                caption="../report/table4.rst",
                category="Tables",
                labels={"table": f"4: every method on {T4_DS} (WebFace42M protocol)"},
            ),
        params:
            table="table4",
            methods=T4_METHODS,
            subsets=["test"],
            dataset=T4_DS,
            source=config["datasets"][T4_DS]["source"],
        log:
            f"{RES}/logs/tables/table4.log",
        benchmark:
            f"{RES}/benchmarks/tables/table4.tsv"
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        conda:
            "../../envs/report.yaml"
        script:
            "../../scripts/tables.py"


rule table1:
    input:
        metrics=expand(f"{RES}/metrics/{{method}}/{TABLE3_SUBSET}.json", method=TABLE1_METHODS),
    output:
        csv=f"{RES}/tables/table1.csv",
        md=f"{RES}/tables/table1.md",
        tex=f"{RES}/tables/table1.tex",
        html=report(
            f"{RES}/tables/table1.html",
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": f"1: fusion ({TABLE3_SUBSET})"},
        ),
    params:
        table="table1",
        methods=TABLE1_METHODS,
        subsets=[TABLE3_SUBSET],
        dataset=DS,
        source=DSCFG["source"],
    log:
        f"{RES}/logs/tables/table1.log",
    benchmark:
        f"{RES}/benchmarks/tables/table1.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/tables.py"


rule table2:
    input:
        metrics=expand(f"{RES}/metrics/{{method}}/{TABLE3_SUBSET}.json", method=TABLE2_METHODS),
    output:
        csv=f"{RES}/tables/table2.csv",
        md=f"{RES}/tables/table2.md",
        tex=f"{RES}/tables/table2.tex",
        html=report(
            f"{RES}/tables/table2.html",
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": f"2: refinement ({TABLE3_SUBSET})"},
        ),
    params:
        table="table2",
        methods=TABLE2_METHODS,
        subsets=[TABLE3_SUBSET],
        dataset=DS,
        source=DSCFG["source"],
    log:
        f"{RES}/logs/tables/table2.log",
    benchmark:
        f"{RES}/benchmarks/tables/table2.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/tables.py"


rule figure_training_curves:
    input:
        histories=expand(f"{RES}/models/clipcluster_{{variant}}_history.jsonl", variant=CC_TRAINED),
        peer_histories=expand(f"{RES}/models/{{peer}}_history.jsonl", peer=PEERS),
    output:
        png=report(
            f"{RES}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Figures",
            labels={"figure": "training curves"},
        ),
        pdf=f"{RES}/figures/training_curves.pdf",
    params:
        variants=CC_TRAINED,
        peers=PEERS,
    log:
        f"{RES}/logs/figures/training_curves.log",
    benchmark:
        f"{RES}/benchmarks/figures/training_curves.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/figure_training_curves.py"
