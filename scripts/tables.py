"""Rules table3 / table5: the paper's tables from this run's metrics, paper numbers in labelled columns."""

import json

from clipcluster.reporting import tables
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
p = snakemake.params
measured = {m: {} for m in p.methods}
for path in snakemake.input.metrics:
    with open(path) as fh:
        m = json.load(fh)
    measured[m["method"]][m["subset"]] = m

stem = snakemake.output[0].removesuffix(".csv")
if p.table == "table3":
    subset = p.subsets[0]
    df = tables.table3({m: measured[m].get(subset) for m in p.methods})
    title = f"Table 3: methods on {subset} ({p.dataset})"
elif p.table == "table4":
    subset = p.subsets[0]
    df = tables.table4({m: measured[m].get(subset) for m in p.methods})
    title = (
        f"Table 4: methods on the test part of {p.dataset} (WebFace42M protocol: train and test identities disjoint)"
    )
elif p.table == "table5":
    df = tables.table5(measured, p.subsets)
    title = f"Table 5: F_P / F_B per scale ({p.dataset})"
else:
    subset = p.subsets[0]
    csv, rows, what = {
        "table1": ("table1_fusion.csv", tables.TABLE1_ROWS, "fusion of the hallucinated features"),
        "table2": ("table2_refinement.csv", tables.TABLE2_ROWS, "refinement after edge scoring"),
    }[p.table]
    extra = tables.TABLE2_EXTRA if p.table == "table2" else None
    df = tables.ablation_table(csv, rows, {m: measured[m].get(subset) for m in p.methods}, extra=extra)
    title = f"{p.table.replace('table', 'Table ')}: {what}, on {subset} ({p.dataset})"
notes = tables.table_notes(p.table, p.dataset, p.source, measured, p.subsets)
tables.write_table(df, stem, title, notes)
log.info("wrote %s.{csv,md,tex,html}: %d rows", stem, len(df))
