"""Face recognition trained on pseudo-labels (CLIP-Cluster Sec. 4.5, Figure 4; the protocol of learn-to-cluster).

- :mod:`.arcface`: the additive angular margin head and loss (ArcFace).
- :mod:`.network`: the embedding network (on features: an MLP with ArcFace's BN-FC-BN neck).
- :mod:`.data`: part0's labels plus a method's clusters as pseudo-labels (singletons dropped, counted).
- :mod:`.train`: training with checkpoints and resume, and embedding.
- :mod:`.identification`: MegaFace-style rank-1 identification against distractors.
"""

from .arcface import ArcFaceHead, arcface_logits
from .data import TrainingSet, pseudo_labelled
from .identification import megaface_rank1
from .network import EmbeddingNet
from .train import embed, train_recognition

__all__ = [
    "ArcFaceHead",
    "EmbeddingNet",
    "TrainingSet",
    "arcface_logits",
    "embed",
    "megaface_rank1",
    "pseudo_labelled",
    "train_recognition",
]
