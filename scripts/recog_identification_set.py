"""Rule identification_set: MegaFace-style probes and distractors of identities no twin part holds."""

import numpy as np

from clipcluster.atomic import atomic_path
from clipcluster.runlog import timed, to_log_file
from clipcluster.twin.generate import identification_set, twin_params

log = to_log_file(snakemake.log[0])
cfg, ident = snakemake.params.twin, snakemake.params.ident
params = twin_params(cfg["preset"], cfg["seed"], cfg["overrides"])
with timed("identification set", log):
    probes, distractors = identification_set(
        params,
        probe_identities=ident["probe_identities"],
        probe_mean_size=ident["probe_mean_size"],
        distractors=ident["distractors"],
    )
with atomic_path(snakemake.output[0]) as tmp, open(tmp, "wb") as fh:
    # both views: Figure 4's network reads recognition.view, its reference rows both
    np.savez(
        fh,
        probe_face=probes.face,
        probe_clip=probes.clip,
        probe_labels=probes.labels,
        distractor_face=distractors.face,
        distractor_clip=distractors.clip,
    )
log.info("%d probe photos of %d identities, %d distractors", len(probes), ident["probe_identities"], len(distractors))
