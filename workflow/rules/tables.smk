# The paper's tables from this run's metrics, with the published numbers in labelled columns.


rule table3:
    input:
        metrics=expand(f"{RES}/metrics/{{method}}/{TABLE3_SUBSET}.json", method=METHODS),
    output:
        multiext(f"{RES}/tables/table3", ".csv", ".md", ".tex"),
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
    script:
        "../../scripts/tables.py"


rule table5:
    input:
        metrics=expand(f"{RES}/metrics/{{method}}/{{subset}}.json", method=METHODS, subset=TABLE5_SUBSETS),
    output:
        multiext(f"{RES}/tables/table5", ".csv", ".md", ".tex"),
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
    script:
        "../../scripts/tables.py"
