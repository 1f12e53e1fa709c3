"""The graph stage: kNN graphs and their files, Infomap, the training-free baselines and the method registry
(workflow/rules/knn.smk, cluster.smk).
"""
