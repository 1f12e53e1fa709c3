"""The MS1M twin: the generative model of faces, CLIP embeddings and attributes, and its card
(workflow/rules/data.smk; docs/twin.md).
"""
