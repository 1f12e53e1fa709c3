"""What the three edge learners (CLIP-Cluster, FaceT, MHC) share: the training loop with checkpoints and resume,
the edge-cosine input and the edge-prior initialisation.
"""
