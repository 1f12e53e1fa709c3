"""Evaluation: pairwise/BCubed metrics, edge quality, thresholds chosen on the training part, the seed-spread
summary (workflow/rules/evaluate.smk, tune.smk).
"""
