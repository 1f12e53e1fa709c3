"""Rules table3 / table5: the paper's tables from this run's metrics, paper numbers in labelled columns."""

import json

from clipcluster import tables
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
else:
    df = tables.table5(measured, p.subsets)
    title = f"Table 5: F_P / F_B per scale ({p.dataset})"
notes = tables.table_notes(p.table, p.dataset, p.source, measured, p.subsets)
tables.write_table(df, stem, title, notes)
log.info("wrote %s.{csv,md,tex}: %d rows", stem, len(df))
