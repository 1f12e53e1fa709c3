"""The photo front end: image sources (RecordIO, folders), face detection and features, attributes, CLIP
embeddings, the part split and the shards (workflow/rules/images.smk).
"""
