"""CLIP image and text encoders through open_clip (docs/design.md section 7): model name and ``pretrained`` from config.

``pretrained`` is an open_clip hub tag (``openai``, ``laion2b_s34b_b79k``: downloaded on first use, so not on machines
without internet), a local checkpoint file, or null for random initialisation. Random initialisation is what the
tests and the offline demo use (no CLIP weights install offline): the code path is the one real runs take, but the
embeddings carry no meaning, and every output made with them says so (``clip_weights: random`` in the summaries).
``ViT-Tiny-16-test`` (clipcluster/images/open_clip_configs/) is a small architecture for that purpose, with CLIP's 512-d
output so the rest of the pipeline is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipcluster.errors import DataError

CONFIG_DIR = Path(__file__).resolve().parent / "open_clip_configs"
CLIP_DIM = 512  # what clipcluster.clip_cluster reads (CLIP ViT-B/32's embedding size, as in the paper)


@dataclass
class ClipEncoder:
    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    weights: str  # "random" or the pretrained tag / file it loaded


def _register_configs() -> None:
    import open_clip

    if "ViT-Tiny-16-test" not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def load_clip(model_name: str, pretrained: str | None, *, device: str = "cpu", seed: int = 0) -> ClipEncoder:
    """An open_clip model in eval mode, its image preprocessing and tokenizer.

    With ``pretrained`` null the weights are random, drawn from ``seed`` so that every shard job (a separate process)
    builds the same model.
    """
    import open_clip
    import torch

    _register_configs()
    if model_name not in open_clip.list_models():
        raise DataError("clip.model", f"{model_name!r} is not an open_clip model (see open_clip.list_models())")
    if pretrained and not (
        Path(pretrained).is_file() or pretrained in open_clip.list_pretrained_tags_by_model(model_name)
    ):
        raise DataError(
            "clip.pretrained",
            f"{pretrained!r} is neither a file nor an open_clip tag of {model_name} "
            f"({', '.join(open_clip.list_pretrained_tags_by_model(model_name)) or 'none'})",
        )
    torch.manual_seed(seed)
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_name, pretrained=pretrained or None, device=device
    )
    model.eval()
    return ClipEncoder(model, preprocess, open_clip.get_tokenizer(model_name), device, pretrained or "random")


def resolve_device(device: str, logger: Any = None) -> str:
    """``auto`` is CUDA when there is a GPU, else the CPU (logged, as CPU CLIP is slow on millions of photos)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu" and logger is not None:
            logger.warning("no CUDA device: CLIP runs on the CPU")
    return device


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _check_dim(out: np.ndarray, what: str) -> np.ndarray:
    if out.ndim != 2 or out.shape[1] != CLIP_DIM:
        raise DataError("clip.model", f"{what} embeddings are {out.shape[1:]}-d, the pipeline needs {CLIP_DIM}")
    return out


def encode_images(encoder: ClipEncoder, crops: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """N x 512 L2-normalised image embeddings of RGB uint8 crops (open_clip's own resize, crop and normalisation)."""
    import torch
    from PIL import Image

    if not len(crops):
        return np.zeros((0, CLIP_DIM), dtype=np.float32)
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            batch = torch.stack([encoder.preprocess(Image.fromarray(c)) for c in crops[start : start + batch_size]])
            out.append(encoder.model.encode_image(batch.to(encoder.device)).float().cpu().numpy())
    return _normalise(_check_dim(np.concatenate(out), "image"))


def encode_texts(encoder: ClipEncoder, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """P x 512 L2-normalised text embeddings."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            tokens = encoder.tokenizer(list(texts[start : start + batch_size])).to(encoder.device)
            out.append(encoder.model.encode_text(tokens).float().cpu().numpy())
    return _normalise(_check_dim(np.concatenate(out), "text"))


def write_prompt_embeddings(encoder: ClipEncoder, path: str | Path) -> int:
    """``prompts/text.npz`` (clipcluster.prompt_file) from the real text encoder."""
    from clipcluster.prompt_file import write_prompts
    from clipcluster.prompts import prompt_table

    table = prompt_table()
    write_prompts(path, table, encode_texts(encoder, table["text"].tolist()), encoder.weights)
    return len(table)
