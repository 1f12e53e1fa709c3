"""Rule clip_prompts: CLIP text embeddings of every (gender, attribute value) prompt."""

from clipcluster.images.clip_encoders import load_clip, resolve_device, write_prompt_embeddings
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
cfg = snakemake.params.clip
encoder = load_clip(
    cfg["model"], cfg["pretrained"], device=resolve_device(cfg["device"], log), seed=snakemake.params.seed
)
n = write_prompt_embeddings(encoder, snakemake.output[0])
log.info("%d prompts embedded with %s (weights %s)", n, cfg["model"], encoder.weights)
