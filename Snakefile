# CLIP-Cluster reproduction: every table and figure as a DAG of cached files.
#   snakemake --cores all                                  # the default: the MS1M twin (config/config.yaml)
#   snakemake --cores all --configfile config/tiny.yaml    # the tiny twin (about a minute; used by the tests)
# The rules live in workflow/rules/, their logic in the clipcluster package, thin scripts in scripts/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/knn.smk"
include: "workflow/rules/cluster.smk"
include: "workflow/rules/clipcluster.smk"
include: "workflow/rules/peers.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"


rule all:
    input:
        all_targets(),
    default_target: True
    localrule: True


onsuccess:
    # the reproducibility record: resolved config, seeds, package versions, git revision, machine (provenance.py)
    from clipcluster.provenance import write_record

    print(f"provenance: {write_record(RES, config, workflow.basedir, log)}")
