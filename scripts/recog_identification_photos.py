"""Rule identification_photos: the user's probe and distractor photos, detected, aligned and embedded."""

from clipcluster.images.photo_lists import identification_photos
from clipcluster.runlog import timed, to_log_file

log = to_log_file(snakemake.log[0])
with timed("identification photos", log):
    summary = identification_photos(
        snakemake.input.probes,
        snakemake.input.distractors,
        snakemake.params.faces,
        snakemake.output.npz,
        snakemake.output.photos,
        snakemake.output.summary,
    )
log.info("%s", {k: v for k, v in summary.items() if k != "skipped"})
