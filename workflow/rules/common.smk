# Config validation, the dataset's file layout, and the helpers every rule file uses.

import re
import sys
from pathlib import Path
from snakemake.exceptions import WorkflowError

# The package sits beside the Snakefile; make it importable even where it was not pip-installed.
sys.path.insert(0, str(Path(workflow.basedir)))

from clipcluster.config import ConfigError, table4_config, validate  # noqa: E402
from clipcluster.errors import DataError  # noqa: E402
from clipcluster.model_defaults import model_config  # noqa: E402

try:
    _resolved = validate(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_resolved)

DS = config["dataset"]
DSCFG = config["datasets"][DS]
RES = f"results/{DS}"
PARTS = DSCFG["parts"]
TRAIN_PART = PARTS[0]
SUBSETS = config["subsets"]
# the peers (FaceT, MHC): a model trained on the training part, then a training-free clustering step per subset
PEER_NAMES = ("facet", "mhc")
PEERS = [m for m in PEER_NAMES if config["methods"][m]["enabled"]]
# training-free methods: Infomap alone and the classic baselines (workflow/rules/cluster.smk)
# in a fixed order, not the config file's: reordering keys in a config must not change a rule's params (a rerun)
BASE_ORDER = ("infomap", "infomap_tuned", "kmeans", "dbscan", "hac", "aro", "cdp")
# thresholds chosen on the training part (workflow/rules/tune.smk); Infomap alone then gets a second row,
# infomap_tuned, with its floor chosen there beside the fixed-floor one
TUNE = config["tuning"]
TUNED = TUNE["enabled"]
BASE_METHODS = sorted(
    [m for m, opts in config["methods"].items() if opts["enabled"] and m != "clipcluster" and m not in PEER_NAMES]
    + (["infomap_tuned"] if TUNED and config["methods"]["infomap"]["enabled"] else []),
    key=lambda m: (BASE_ORDER.index(m) if m in BASE_ORDER else len(BASE_ORDER), m),
)
CC = config["methods"]["clipcluster"]
try:  # CLIP-Cluster's model keys with their defaults (torch-free), checked at parse time
    CC_MODEL = model_config(CC["model"])
except DataError as err:
    raise WorkflowError(str(err)) from None
# trained models: name -> overrides of methods.clipcluster.model; Table 1's fusions and the no-hallucination ablation
CC_MODELS = {"cross": {"fusion": "cross"}}
# CLIP-Cluster methods: name -> (model, refinement); Table 2's naive pruning reuses the main model
CC_METHODS = {"clipcluster": ("cross", "infomap")}
if CC["ablations"]:
    CC_MODELS |= {"average": {"fusion": "average"}, "self": {"fusion": "self"}, "nohall": {"hallucinate": False}}
    CC_METHODS |= {
        "clipcluster_avg": ("average", "infomap"),
        "clipcluster_self": ("self", "infomap"),
        "clipcluster_nohall": ("nohall", "infomap"),
        "clipcluster_naive": ("cross", "naive"),
    }
# the floor of the learned models: their pair baseline alone (fit on the training part), pruned at a tau chosen there
# and refined by Infomap as CLIP-Cluster is; a model with no network (learned_correction False), so it goes through
# the same train / tune / infer rules
if CC_MODEL["pair_baseline"]:
    CC_MODELS |= {"baseline": {"hallucinate": False, "pair_attributes": False, "learned_correction": False}}
    CC_METHODS |= {"pair_baseline": ("baseline", "infomap")}
if not CC["enabled"]:
    CC_MODELS, CC_METHODS = {}, {}
# the models that train (and have a training history): all but the pair baseline
CC_TRAINED = [v for v, o in CC_MODELS.items() if o.get("learned_correction", True)]
# rows of Tables 3 and 5: the baselines, CLIP-Cluster's pair baseline, CLIP-Cluster and its no-hallucination ablation
METHODS = BASE_METHODS + PEERS + [m for m in ("pair_baseline", "clipcluster", "clipcluster_nohall") if m in CC_METHODS]
TABLE1_METHODS = [m for m in ("clipcluster_avg", "clipcluster_self", "clipcluster") if m in CC_METHODS]
TABLE2_METHODS = [
    m for m in ("clipcluster_naive", "infomap", "infomap_tuned", "clipcluster") if m in CC_METHODS or m in BASE_METHODS
]
PROMPTS = f"{RES}/prompts/text.npz"
IMAGE_SOURCES = ("mxrecord", "imagefolder")  # photos in, through workflow/rules/images.smk
# whose clusters the photos' contact sheet shows: Infomap alone's on the face features (needs no CLIP weights)
FACES_SHEET_METHOD = "infomap" if "infomap" in BASE_METHODS else (BASE_METHODS + PEERS + list(CC_METHODS))[0]
# the `gpu` resource of every model job (the SLURM plugin turns it into --gpus; 0 asks for none)
MODEL_GPUS = config["scheduler"]["model_gpus"]
# torch model jobs: the same thread count on every executor (their numbers depend on it; see the schema)
MODEL_THREADS = config["scheduler"]["model_threads"]
# the multi-threaded numeric jobs (kNN search, K-Means): half the cores, at most 16. A job asking for every core
# waits until all of them are free, and on 2 cores that left one idle for minutes behind a 1-thread training
# (measured on the default run); half the cores lets it run beside one. On SLURM, and in the job SLURM starts, 16
# as before (the cores the submitting node sees say nothing about the compute nodes).
def _shared_threads():
    if workflow.non_local_exec or workflow.remote_exec:
        return 16
    try:
        cores = workflow.cores
    except WorkflowError:  # no --cores: a listing (--rulegraph, --dag) that runs nothing
        return 16
    return min(16, max(1, cores // 2))


SHARED_THREADS = _shared_threads()
TABLE3_SUBSET = config["tables"]["table3_subset"]
# Table 4 (WebFace42M protocol): the same workflow on a second dataset, imported as a module in the Snakefile
T4 = config["tables"]["table4"]
T4_DS = T4["dataset"]
T4_METHODS = [m for m in METHODS if m != "clipcluster_nohall" and (T4["peers"] or m not in PEER_NAMES)]
T4_CONFIG = table4_config(config) if T4_DS else None
TABLE5_SUBSETS = config["tables"]["table5_subsets"]


wildcard_constraints:
    part="|".join(re.escape(p) for p in PARTS),
    # the test subsets, and the training part on its own: its kNN graph is where thresholds are tuned
    subset="|".join(re.escape(s) for s in [*SUBSETS, TRAIN_PART]),
    k="[0-9]+",


# Where each per-part file lives when the run makes it (twin: generated; photos: gathered from the shards); a
# features dataset names its own files with the templates of datasets.<name>.features instead.
_MADE_PART_FILES = {
    "bin": "faces/{part}.bin",
    "meta": "parts/{part}.meta",
    "clip": "clip/{part}.bin",
    "attributes": "attributes/{part}.parquet",
}


def part_file(kind, part):
    """A part's face features (kind "bin"), labels ("meta"), CLIP image embeddings ("clip") or attribute table
    ("attributes")."""
    if DSCFG["source"] != "features":
        return f"{RES}/{_MADE_PART_FILES[kind].format(part=part)}"
    f = DSCFG["features"]
    return f[kind].format(root=f["root"], part=part, split="train" if part == TRAIN_PART else "test")


def part_clip(part):
    return part_file("clip", part)


def part_attributes(part):
    return part_file("attributes", part)


if DSCFG["source"] == "features":
    # What needs no data reading is checked before any job: the files of every part the run reads present, each .bin a
    # whole number of rows, as many labels as rows (clipcluster/input_checks.py); NaN values and bad label lines are
    # the jobs' checks.
    from clipcluster.input_checks import check_feature_files  # noqa: E402

    _with_clip = bool(CC_METHODS) and "clip" in DSCFG["features"]
    try:
        check_feature_files(
            {
                p: {"bin": part_file("bin", p), "meta": part_file("meta", p)}
                | ({"clip": part_clip(p)} if _with_clip else {})
                for p in [TRAIN_PART, *sorted({q for parts in SUBSETS.values() for q in parts} - {TRAIN_PART})]
            },
            DSCFG["feature_dim"],
            {"clip": CC_MODEL["clip_dim"]},
        )
    except DataError as err:
        raise WorkflowError(str(err)) from None


def cc_train_cfg(variant):
    """Training settings of one CLIP-Cluster model variant (only these retrain it; k, tau, infer do not). The model's
    config is resolved with its defaults, so a changed default in the package retrains the models it changes."""
    # face_dim follows the dataset's features (dlib's are 128-d) unless the config sets it
    model = model_config({"face_dim": DSCFG["feature_dim"], **CC["model"], **CC_MODELS[variant]})
    # the pair baseline under the learned score is fit on the training part's graph at the inference k
    return canonical({"model": model, "sampler": CC["sampler"], "train": CC["train"], "baseline_fit_k": CC["k"]})


def train_inputs(wildcards):
    inputs = {
        "face": face_bin(TRAIN_PART),
        "meta": part_meta(TRAIN_PART),
        "clip": part_clip(TRAIN_PART),
        "targets": f"{RES}/targets/{TRAIN_PART}.npz",
        "prompts": PROMPTS,
        "knn": TUNE_KNN,  # the pair baseline is fit on it (clipcluster.training.pair_baseline)
    }
    if CC_MODELS[wildcards.variant].get("hallucinate", True):
        inputs["transfer"] = f"{RES}/models/B.pt"
    return inputs


def face_bin(part):
    return part_file("bin", part)


def part_meta(part):
    return part_file("meta", part)


def subset_parts(subset):
    """The parts of a test subset, or the training part alone (its graph tunes the thresholds)."""
    return [TRAIN_PART] if subset == TRAIN_PART and subset not in SUBSETS else SUBSETS[subset]


def subset_bins(wildcards):
    return [face_bin(p) for p in subset_parts(wildcards.subset)]


def subset_metas(wildcards):
    return [part_meta(p) for p in subset_parts(wildcards.subset)]


def knn_path(subset):
    """A subset's cached kNN graph (knn.k columns; each method reads its first methods.<method>.k of them)."""
    return f"{RES}/knn/{subset}_k{config['knn']['k']}.npz"


# the training part's kNN graph, where tuning.* thresholds are chosen
TUNE_KNN = knn_path(TRAIN_PART)


def tuning_file(method):
    """Input function: the method's threshold chosen on the training part, or nothing when tuning is off."""
    return lambda wildcards: f"{RES}/tuning/{method.format(**dict(wildcards.items()))}.json" if TUNED else []


# the rules' kNN input: the {subset} wildcard's graph
KNN = knn_path("{subset}")


# The training-free clustering rules (workflow/rules/cluster.smk), one per method: what each reads besides its
# options (the kNN graph, the features themselves, the floor chosen on the training part); threads, memory
# (factor x input MB + base) and SLURM minutes where they differ from 1, 6 and 240
_FREE_RULES = {
    "infomap": {"knn": True},
    # Infomap alone, its floor replaced by the one chosen on the training part
    "infomap_tuned": {"knn": True, "tuning": True, "runs": "infomap"},
    "kmeans": {"features": True, "threads": SHARED_THREADS, "mem": 3, "runtime": 600},
    "dbscan": {"knn": True},
    "hac": {"knn": True, "features": True, "runtime": 720},
    "aro": {"knn": True},
    "cdp": {"knn": True},
}


def _free_inputs(spec, name):
    inputs = {}
    if spec.get("knn"):
        inputs["knn"] = KNN
    if spec.get("tuning"):
        inputs["tuning"] = f"{RES}/tuning/{spec.get('runs', name)}.json"
    if spec.get("features"):
        inputs |= {"bins": subset_bins, "metas": subset_metas}
    return inputs


def _free_params(spec, name):
    method = spec.get("runs", name)
    params = {"method": method, "opts": method_params(method), "seed": config["seed"]}
    if spec.get("features"):
        params["dim"] = DSCFG["feature_dim"]
    return params


def canonical(value):
    """Dicts with sorted keys, recursively: Snakemake compares params by their text, so key order in a config file
    must not look like a change (and retrain a model)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


# A twin dataset's section for its rules' params, with every generative value its preset resolves to: a preset whose
# values change (as `small`'s did when it took the calibrated ageing) regenerates the parts, which the preset's name
# alone would have kept. An unknown override key stops the run here, with the allowed keys.
if DSCFG["source"] == "twin":
    from clipcluster.twin.generate import twin_params  # noqa: E402

    try:
        _twin = DSCFG["twin"]
        _resolved_twin = twin_params(_twin["preset"], _twin["seed"], _twin["overrides"]).to_dict()
        TWIN_PARAMS = canonical({**_twin, "resolved": _resolved_twin})
    except DataError as err:
        raise WorkflowError(str(err)) from None


def method_params(method):
    """A method's options as its rule passes them on (everything but `enabled`)."""
    return canonical({k: v for k, v in config["methods"][method].items() if k != "enabled"})


# what CLIP-Cluster's tuning and inference read from the config (the trained model reaches them as a file, so the
# model, sampler and train keys rerun them only through it)
CC_INFER_KEYS = ("k", "tau", "device", "infer")


def cc_infer_cfg():
    return canonical({k: CC[k] for k in CC_INFER_KEYS})


# what only inference reads: changing these reruns a peer's clustering, not its training
PEER_INFER_KEYS = {"facet": ("tau", "infer_batch"), "mhc": ("tau", "eps", "infer_batch")}


def peer_train_cfg(peer):
    """The keys that define a peer's trained model (everything but enabled, device and the inference keys)."""
    skip = {"enabled", "device", *PEER_INFER_KEYS[peer]}
    return canonical({k: v for k, v in config["methods"][peer].items() if k not in skip})


def peer_infer_cfg(peer):
    return canonical({k: config["methods"][peer][k] for k in PEER_INFER_KEYS[peer]})


def mem_mb_for(factor, base=1000):
    """Memory request that grows with the input size (for SLURM; ignored by local runs)."""
    return lambda wildcards, input: int(base + factor * input.size_mb)


def all_targets():
    targets = [
        *expand(f"{RES}/tables/table3{{ext}}", ext=[".csv", ".md", ".tex"]),
        *expand(f"{RES}/tables/table5{{ext}}", ext=[".csv", ".md", ".tex"]),
    ]
    if TABLE1_METHODS:
        targets += expand(f"{RES}/tables/table1{{ext}}", ext=[".csv", ".md", ".tex"])
    if TABLE2_METHODS:
        targets += expand(f"{RES}/tables/table2{{ext}}", ext=[".csv", ".md", ".tex"])
    if CC_METHODS or PEERS:
        targets += [f"{RES}/figures/training_curves.png"]
    if CC_METHODS and DSCFG["source"] == "twin":  # needs the true attributes, which only the twin has
        targets += [f"{RES}/figures/hallucination.png"]
    if config["recognition"]["enabled"]:
        targets += [f"{RES}/figures/figure4.png", f"{RES}/figures/figure4.pdf", f"{RES}/tables/figure4.csv"]
    if T4_DS:
        targets += expand(f"{RES}/tables/table4{{ext}}", ext=[".csv", ".md", ".tex", ".html"])
    if DSCFG["source"] in IMAGE_SOURCES:
        targets += [f"{RES}/tables/faces.csv", f"{RES}/figures/attributes.png", f"{RES}/figures/contact_sheet.png"]
    if DSCFG["source"] == "twin":
        targets += [f"{RES}/twin_card.json", f"{RES}/twin_card.md", f"{RES}/twin_card.png", f"{RES}/prompts/text.npz"]
    return targets


# Figure 4 (workflow/rules/recognition.smk)
REC = config["recognition"]
# methods whose clusters become pseudo-labels (enabled ones only), then the ground truth: the upper bound
REC_METHODS = [m for m in REC["methods"] if m in METHODS or m in CC_METHODS]
REC_LABELS = REC_METHODS + ["truth"]
REC_IDENT = f"{RES}/recognition/identification.npz"
# what the features network reads: the twin's CLIP view by default (identity weak, so it must be learned, as from
# pixels); the face features are already a recognition model's output
REC_VIEW = REC["view"] if REC["view"] != "auto" else ("clip" if DSCFG["source"] == "twin" else "face")
REC_DIM = CC_MODEL["clip_dim"] if REC_VIEW == "clip" else DSCFG["feature_dim"]


def rec_bin(part):
    """A part's features in Figure 4's view (recognition.view)."""
    return part_clip(part) if REC_VIEW == "clip" else face_bin(part)


def rec_train_inputs(wildcards):
    """part0's features and labels, then (unless the run is part0 alone) the subset's features and its labels:
    a method's clusters, or the true labels for the upper bound."""
    inputs = {"face0": rec_bin(TRAIN_PART), "meta0": part_meta(TRAIN_PART), "ident": rec_ident_inputs()}
    if REC["backbone"] == "resnet":  # the photos' kept rows (source, landmarks) instead of their features
        inputs["kept0"] = f"{RES}/faces/{TRAIN_PART}.kept.parquet"
        inputs["ident_photos"] = f"{RES}/recognition/identification_photos.parquet"
    if wildcards.labels != "part0":
        parts = SUBSETS[wildcards.subset]
        inputs["faces"] = [rec_bin(p) for p in parts]
        inputs["metas"] = [part_meta(p) for p in parts]
        if REC["backbone"] == "resnet":
            inputs["kept"] = [f"{RES}/faces/{p}.kept.parquet" for p in parts]
        if wildcards.labels != "truth":
            inputs["pseudo"] = f"{RES}/clusters/{wildcards.labels}/{wildcards.subset}.labels"
    return inputs


def rec_ident_inputs():
    """The probe and distractor features: generated for the twin, from the user's photo lists for a photo dataset
    (recognition.smk's identification_photos), the user's files for a features dataset."""
    if DSCFG["source"] != "features":
        return [REC_IDENT]
    ident = REC["identification"]
    return [ident["probe_bin"], ident["probe_meta"], ident["distractor_bin"]]


def rec_runs():
    """Every trained model of Figure 4: part0 alone, and each (labels, subset)."""
    return ["part0/none"] + [f"{lab}/{s}" for lab in REC_LABELS for s in REC["subsets"]]


# The photo front end (workflow/rules/images.smk)
IMG = DSCFG["images"]
SHARD_SIZE = DSCFG["faces"]["shard_size"]


def split_inputs(wildcards):
    """The photos themselves: the demo's download, a user's folder, or the RecordIO pair."""
    if DSCFG["source"] == "mxrecord":
        return [f"{IMG['root']}/{IMG['rec']}", f"{IMG['root']}/{IMG['idx']}"]
    inputs = [IMG["root"]]
    if DSCFG["split"]["part_lists"]:
        inputs.append(DSCFG["split"]["part_lists"])
    return inputs


def part_shards(stage, ext):
    """Input function: every shard file of a part's stage (how many: the split checkpoint's part index)."""

    def inputs(wildcards):
        import pyarrow.parquet as pq

        from clipcluster.images.shards import n_shards

        index = checkpoints.split_parts.get().output.parts[PARTS.index(wildcards.part)]
        rows = pq.ParquetFile(index).metadata.num_rows
        return [f"{RES}/{stage}/shards/{wildcards.part}/{i}.{ext}" for i in range(n_shards(rows, SHARD_SIZE))]

    return inputs


def attribute_shard_inputs(wildcards):
    inputs = {
        "index": f"{RES}/parts/{wildcards.part}.index.parquet",
        "faces": f"{RES}/faces/shards/{wildcards.part}/{wildcards.shard}.npz",
    }
    if DSCFG["attributes"]["backend"] == "clip":  # zero-shot against the prompts' text embeddings
        inputs["prompts"] = PROMPTS
    return inputs
