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
include: "workflow/rules/images.smk"
include: "workflow/rules/knn.smk"
include: "workflow/rules/cluster.smk"
include: "workflow/rules/clipcluster.smk"
include: "workflow/rules/peers.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/recognition.smk"


rule all:
    input:
        all_targets(),
    # only the main run's: in Table 4's module this rule becomes table4_all, reached through table4's inputs
    default_target: not workflow.modifier.is_module
    localrule: True


if T4_DS:
    # Table 4 runs this same workflow on the second dataset (tables.table4.dataset): its own parts, kNN graphs,
    # trained models and metrics under results/<that dataset>/, its rules prefixed table4_ (clipcluster.config's
    # table4_config: no Figure 4, no ablations, no Table 4 of its own).
    module table4_run:
        snakefile:
            "Snakefile"
        config:
            T4_CONFIG

    use rule * from table4_run as table4_*


onsuccess:
    # the reproducibility record: resolved config, seeds, package versions, git revision, machine (provenance.py)
    from clipcluster.reporting.provenance import write_record

    print(f"provenance: {write_record(RES, config, workflow.basedir, log)}")
