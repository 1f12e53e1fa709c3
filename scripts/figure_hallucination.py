"""Rule figure_hallucination: same-identity similarity across attribute groups before and after hallucination."""

import numpy as np
import pandas as pd

from clipcluster.atomic import write_json
from clipcluster.clip_cluster.pipeline import (
    attribute_pair_similarity,
    load_data,
    load_model,
    proxy_features,
    read_prompts,
)
from clipcluster.graph.knn import load_knn
from clipcluster.reporting.figures import hallucination_figure
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
_, text_emb = read_prompts(inp.prompts)
data = load_data(list(inp.bins), list(inp.metas), list(inp.clips), list(inp.targets), dim=p.dim)
attrs = pd.concat([pd.read_parquet(a) for a in inp.attributes], ignore_index=True)
model = load_model(inp.model)
nbrs = np.ascontiguousarray(load_knn(inp.knn).nbrs[:, : p.k])
v = proxy_features(model, data, text_emb, nbrs)
sims = attribute_pair_similarity({"face features f (before)": data.f, "proxy features v (after)": v}, data.labels,
                                 attrs, seed=p.seed)  # fmt: skip
summary = hallucination_figure(
    sims, snakemake.output.png, snakemake.output.pdf,
    f"{p.subset} of {p.dataset}: pair cosines before and after CLIP-guided hallucination (measured by this run)",
)  # fmt: skip
write_json(snakemake.output.json, {"subset": p.subset, "means": summary})
log.info("means: %s", summary)
