"""A generic, deterministic, resumable training loop for a ``torch.nn.Module``.

Why a loop of our own: training jobs run under Snakemake on shared machines where they can be killed (time
limits, pre-emption) at any moment. A killed job must restart where it stopped and end exactly where an
uninterrupted run would have ended, otherwise the reported numbers depend on the scheduler's luck. So:

* after every epoch a checkpoint is written atomically (temporary file + rename, :mod:`clipcluster.atomic`):
  model, optimizer, the schedule's settings, the epoch count, the history and the RNG states of torch (CPU and
  CUDA), numpy's global generator and Python's ``random``; a half-written file never carries a checkpoint's name;
* a run starts from the newest readable checkpoint in ``checkpoint_dir`` (an unreadable one is skipped with a
  warning), refuses one written with other settings, and keeps only the last ``keep_last`` checkpoints;
* the learning rate is a pure function of (epoch, step within epoch), set before every step, so there is no
  scheduler object whose state could drift from the checkpoint;
* the caller's ``make_batches(epoch)`` must depend only on the epoch index (and on the global RNGs, which are
  restored), e.g. :meth:`clipcluster.clip_cluster.sampling.SubgraphSampler.epoch`.

On CPU a run killed after epoch e and resumed ends with bit-identical weights and history (losses, learning
rates) to an uninterrupted run; ``seconds`` in the history is wall time and naturally differs. On CUDA the same
holds only as far as the kernels are deterministic (see ``torch.use_deterministic_algorithms``).

Defaults: CLIP-Cluster gives no optimiser, learning rate, schedule or epoch count. The defaults here are STAR-FC's
released training code, whose sampling CLIP-Cluster adopts (``sstzal/STAR-FC``, ``src/train_gcn.py`` and
``src/configs/cfg_gcn_ms1m.py``): SGD, momentum 0.9, weight decay 1e-5, step schedule dividing the rate by 10 at
50 %, 80 % and 90 % of the epochs (50 epochs in that config; its learning rate is 0.1 in the config but 0.01 as
hard-coded in the training script, so ``lr`` is left to the caller). AdamW and cosine-with-warmup are there for
the transformer parts, where SGD may train poorly.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from clipcluster.atomic import atomic_path, write_text
from clipcluster.errors import DataError

_log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine", "constant")
CHECKPOINT_FORMAT = 1
_CKPT_RE = re.compile(r"^epoch_(\d+)\.pt$")
_TMP_RE = re.compile(r"^\.epoch_\d+\..*\.tmp\.pt$")  # what atomic_path leaves behind when a job is killed mid-write

StepLoss = Callable[[nn.Module, Any], Mapping[str, torch.Tensor]]


def resolve_device(device: str | torch.device = "auto", log: logging.Logger | None = None) -> torch.device:
    """``"auto"``: CUDA when available, else CPU with a warning (a silent CPU fallback can cost days)."""
    log = log or _log
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        log.warning("CUDA is not available; running on the CPU (slow beyond toy sizes)")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DataError("device", f"not a torch device: {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError("device", f"{device!r} requested but CUDA is not available")
    return dev


def lr_factor(
    t: float,
    *,
    epochs: int,
    schedule: str = "step",
    warmup_epochs: float = 0.0,
    milestones: tuple[float, ...] = (0.5, 0.8, 0.9),
    gamma: float = 0.1,
    min_lr_ratio: float = 0.0,
    dt: float = 0.0,
) -> float:
    """Learning-rate multiplier at ``t`` epochs into training (fractional; ``epoch + step / steps``).

    ``step``: times ``gamma`` once per milestone passed, milestones at ``int(m * epochs)`` whole epochs (STAR-FC).
    ``cosine``: half cosine from 1 to ``min_lr_ratio`` over the epochs after warm-up. ``constant``: 1.
    A linear warm-up over the first ``warmup_epochs`` multiplies all three; it is evaluated at the step's end,
    ``t + dt`` (``dt``: the step's length in epochs), so the very first step does not get a zero rate.
    """
    if schedule == "step":
        factor = gamma ** sum(math.floor(t) >= int(m * epochs) for m in milestones)
    elif schedule == "cosine":
        span = max(epochs - warmup_epochs, 1e-12)
        p = min(max((t - warmup_epochs) / span, 0.0), 1.0)
        factor = min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
    elif schedule == "constant":
        factor = 1.0
    else:
        raise DataError("schedule", f"must be one of {SCHEDULES}, got {schedule!r}")
    if warmup_epochs > 0 and t + dt < warmup_epochs:
        factor *= (t + dt) / warmup_epochs
    return float(factor)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors in ``batch`` (nested dicts, lists, tuples) to ``device``; leave everything else as is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def checkpoint_path(checkpoint_dir: str | Path, epoch: int) -> Path:
    """Where the checkpoint written after ``epoch`` completed epochs lives."""
    return Path(checkpoint_dir) / f"epoch_{epoch:04d}.pt"


def list_checkpoints(checkpoint_dir: str | Path) -> list[tuple[int, Path]]:
    """``(epochs completed, path)`` of every checkpoint file in ``checkpoint_dir``, newest first."""
    d = Path(checkpoint_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT_RE.match(p.name)) and p.is_file()]
    return sorted(found, reverse=True)


def load_latest_checkpoint(
    checkpoint_dir: str | Path, map_location: str | torch.device = "cpu", log: logging.Logger | None = None
) -> dict[str, Any] | None:
    """The newest checkpoint that loads, or ``None``; unreadable ones are skipped with a warning."""
    log = log or _log
    for epoch, path in list_checkpoints(checkpoint_dir):
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # any unreadable file (truncated, garbage, foreign pickle) is skipped alike
            log.warning("checkpoint %s unreadable (%s: %s); trying an older one", path, type(exc).__name__, exc)
            continue
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("epoch") != epoch:
            log.warning(
                "checkpoint %s is not a format-%d checkpoint of epoch %d; skipped", path, CHECKPOINT_FORMAT, epoch
            )
            continue
        ckpt["path"] = str(path)
        return ckpt
    return None


def _rng_state() -> dict[str, Any]:
    """All global RNG states, as types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 - the global state is what callers may draw from
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], log: logging.Logger) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    s = state["numpy"]
    np.random.set_state(  # noqa: NPY002 - restoring the global state is the point
        {
            "bit_generator": s["bit_generator"],
            "state": {"key": s["key"].cpu().numpy().astype(np.uint32), "pos": int(s["pos"])},
            "has_gauss": int(s["has_gauss"]),
            "gauss": float(s["gauss"]),
        }
    )
    torch.set_rng_state(state["torch"].cpu())
    if torch.cuda.is_available():
        if "cuda" in state and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda"]])
        else:
            log.warning(
                "checkpoint has no CUDA RNG state for %d devices; CUDA RNG not restored", torch.cuda.device_count()
            )


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds code that still draws from the global generator
    torch.manual_seed(seed)  # seeds CUDA too


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in history))


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The per-epoch entries of a history JSON-lines file (for training-curve figures)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class TrainSettings:
    """What a run's weights depend on besides the data: stored in every checkpoint, a resumed run must match it."""

    epochs: int
    lr: float
    weight_decay: float = 1e-5
    optimizer: str = "sgd"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "step"
    warmup_epochs: float = 0.0
    milestones: tuple[float, ...] = (0.5, 0.8, 0.9)
    gamma: float = 0.1
    min_lr_ratio: float = 0.0
    grad_clip: float | None = None
    steps_per_epoch: int | None = None
    seed: int = 0

    def check(self) -> None:
        """One-line errors for settings no run can use."""
        epochs, lr, wd, spe = self.epochs, self.lr, self.weight_decay, self.steps_per_epoch
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise DataError("epochs", f"must be an integer >= 1, got {epochs!r}")
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
            raise DataError("lr", f"must be a positive number, got {lr!r}")
        if not (isinstance(wd, int | float) and math.isfinite(wd) and wd >= 0):
            raise DataError("weight_decay", f"must be a number >= 0, got {wd!r}")
        if self.optimizer not in OPTIMIZERS:
            raise DataError("optimizer", f"must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise DataError("schedule", f"must be one of {SCHEDULES}, got {self.schedule!r}")
        if not (isinstance(self.warmup_epochs, int | float) and 0 <= self.warmup_epochs < epochs):
            raise DataError("warmup_epochs", f"must be in [0, epochs), got {self.warmup_epochs!r}")
        if spe is not None and (isinstance(spe, bool) or not isinstance(spe, int) or spe < 1):
            raise DataError("steps_per_epoch", f"must be an integer >= 1 or None, got {spe!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise DataError("grad_clip", f"must be positive or None, got {self.grad_clip!r}")

    def as_config(self) -> dict[str, Any]:
        """The settings as stored in a checkpoint (plain JSON types)."""
        c = asdict(self)
        c.update(
            epochs=int(self.epochs), lr=float(self.lr), weight_decay=float(self.weight_decay),
            momentum=float(self.momentum), betas=[float(b) for b in self.betas],
            warmup_epochs=float(self.warmup_epochs), milestones=[float(m) for m in self.milestones],
            gamma=float(self.gamma), min_lr_ratio=float(self.min_lr_ratio),
            grad_clip=None if self.grad_clip is None else float(self.grad_clip), seed=int(self.seed),
        )  # fmt: skip
        return c

    def lr_at(self, t: float, dt: float) -> float:
        """The learning rate at ``t`` epochs into training, for a step ``dt`` epochs long (:func:`lr_factor`)."""
        return self.lr * lr_factor(
            t, dt=dt, epochs=self.epochs, schedule=self.schedule, warmup_epochs=float(self.warmup_epochs),
            milestones=tuple(self.milestones), gamma=float(self.gamma), min_lr_ratio=float(self.min_lr_ratio),
        )  # fmt: skip

    def make_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        betas = (float(self.betas[0]), float(self.betas[1]))
        return torch.optim.AdamW(params, lr=self.lr, betas=betas, weight_decay=self.weight_decay)


def train(
    model: nn.Module,
    make_batches: Callable[[int], Iterable[Any]],
    step_loss: StepLoss,
    *,
    checkpoint_dir: str | Path,
    device: str | torch.device = "auto",
    keep_last: int = 2,
    history_path: str | Path | None = None,
    evaluate: Callable[[nn.Module, int], Mapping[str, float]] | None = None,
    log: logging.Logger | None = None,
    progress: bool = True,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Train ``model`` in place for ``epochs`` epochs, resuming from ``checkpoint_dir``; return the history.

    The keyword arguments ``epochs`` ... ``seed`` are the fields of :class:`TrainSettings`.

    Args:
        model: the module; moved to ``device``. Only parameters with ``requires_grad`` are optimised (frozen
            parts, such as a pretrained space-transfer network, stay as they are).
        make_batches: ``epoch index -> iterable of batches``; must depend only on the index (and global RNGs).
            With ``len()`` the learning rate moves per step, else per epoch. Tensors in a batch (also nested in
            dicts, lists, tuples) are moved to the device; other objects (numpy arrays, dataclasses) are passed
            as they are, and ``step_loss`` moves them (``next(model.parameters()).device``).
        step_loss: ``(model, batch) -> {name: scalar tensor}`` with the key ``"total"``, the one minimised;
            the others are only logged (detach them if they need no gradient).
        epochs: total epochs (including those of a resumed run).
        lr: base learning rate (STAR-FC code: 0.01 with SGD).
        checkpoint_dir: checkpoints ``epoch_NNNN.pt`` and, by default, ``history.jsonl`` go here.
        weight_decay: STAR-FC code: 1e-5 (applied to all trained parameters, as there).
        optimizer: ``"sgd"`` (STAR-FC code, with ``momentum`` 0.9) or ``"adamw"`` (with ``betas``).
        schedule: ``"step"`` (STAR-FC: ``milestones`` 0.5/0.8/0.9 of the epochs, ``gamma`` 0.1), ``"cosine"``
            (down to ``min_lr_ratio * lr``) or ``"constant"``; ``warmup_epochs`` of linear warm-up (ours: 0).
        grad_clip: clip the global gradient norm to this (``None``: no clipping, as STAR-FC).
        steps_per_epoch: the expected steps per epoch where the batches have no ``len()`` (a lazy generator,
            e.g. ``sampler.epoch``: pass ``sampler.subgraphs_per_epoch``), so the learning rate still moves per
            step and the progress bar has a total; an estimate is fine (the position is capped at the epoch end).
        seed: seeds Python, numpy and torch at a fresh start (a resumed run restores their states instead).
        device: ``"auto"`` (CUDA if available, else CPU with a warning), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        keep_last: checkpoints kept (older ones deleted after each save); at least 1.
        history_path: the JSON-lines history (one entry per epoch, rewritten atomically after each epoch);
            default ``checkpoint_dir / "history.jsonl"``.
        evaluate: optional ``(model, epoch index) -> {name: float}`` run after each epoch in eval mode without
            gradients; its numbers go into the history under ``"eval"``.
        log: logger (default: this module's).
        progress: tqdm bar per epoch.

    Returns:
        One dict per completed epoch: ``epoch`` (1-based count), ``steps``, ``lr`` (at the epoch's last step),
        ``losses`` (mean of each ``step_loss`` entry over the epoch's steps), ``seconds``, and ``eval`` if any.
    """
    log = log or _log
    cfg = TrainSettings(**settings)
    cfg.check()
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise DataError("keep_last", f"must be an integer >= 1, got {keep_last!r}")
    # Same seed, same weights: with 2+ CPU threads FaceT's backward gave different weights run to run (up to 1e-2
    # after 2 epochs, enough to flip links); deterministic kernels fix that. warn_only: an op with no deterministic
    # kernel warns in the log instead of stopping a run.
    torch.use_deterministic_algorithms(True, warn_only=True)
    dev = resolve_device(device, log)
    checkpoint_dir = _prepare_checkpoint_dir(Path(checkpoint_dir), log)
    history_path = Path(history_path) if history_path is not None else checkpoint_dir / "history.jsonl"

    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise DataError("model", "has no parameters with requires_grad; nothing to train")
    opt = cfg.make_optimizer(params)
    history, start = _start_or_resume(model, opt, cfg, checkpoint_dir, dev, log)

    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        entry = _run_epoch(model, opt, params, make_batches(epoch), step_loss, cfg, epoch, dev, progress)
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                entry["eval"] = {k: float(v) for k, v in evaluate(model, epoch).items()}
            model.train()
        entry["seconds"] = time.perf_counter() - t0
        history.append(entry)
        _save_checkpoint(checkpoint_dir, epoch + 1, model, opt, cfg.as_config(), history, keep_last, log)
        _write_history(history_path, history)
        shown = " ".join(f"{k}={v:.4f}" for k, v in entry["losses"].items())
        log.info(
            "epoch %d/%d: %d steps, lr %.3g, %s (%.1fs)",
            epoch + 1, cfg.epochs, entry["steps"], entry["lr"], shown, entry["seconds"],
        )  # fmt: skip
    if start >= cfg.epochs:  # nothing left to run: the history file still reflects the checkpoint
        _write_history(history_path, history)
    return history


def _prepare_checkpoint_dir(checkpoint_dir: Path, log: logging.Logger) -> Path:
    """Create the folder and remove the temporary files a killed checkpoint write left behind."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for stale in checkpoint_dir.iterdir():
        if _TMP_RE.match(stale.name):
            log.info("removing half-written checkpoint %s left by a killed run", stale)
            stale.unlink(missing_ok=True)
    return checkpoint_dir


def _start_or_resume(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    cfg: TrainSettings,
    checkpoint_dir: Path,
    dev: torch.device,
    log: logging.Logger,
) -> tuple[list[dict[str, Any]], int]:
    """Seed a fresh run, or restore model, optimizer, RNGs and history from the newest checkpoint.

    Returns the history so far and the number of epochs done.
    """
    ckpt = load_latest_checkpoint(checkpoint_dir, map_location=dev, log=log)
    if ckpt is None:
        _seed_all(cfg.seed)
        log.info("training from scratch for %d epochs on %s (checkpoints: %s)", cfg.epochs, dev, checkpoint_dir)
        return [], 0
    config = cfg.as_config()
    diff = sorted(k for k in config if ckpt["config"].get(k) != config[k])
    if diff:
        shown = ", ".join(f"{k}: {ckpt['config'].get(k)!r} -> {config[k]!r}" for k in diff)
        raise DataError(ckpt["path"], f"written with other settings ({shown}); use a fresh checkpoint_dir")
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    _set_rng_state(ckpt["rng"], log)
    start = int(ckpt["epoch"])
    log.info("resuming from %s: %d of %d epochs done", ckpt["path"], start, cfg.epochs)
    return list(ckpt["history"]), start


def _run_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    params: list[nn.Parameter],
    batches: Iterable[Any],
    step_loss: StepLoss,
    cfg: TrainSettings,
    epoch: int,
    dev: torch.device,
    progress: bool,
) -> dict[str, Any]:
    """One epoch of steps; the learning rate is set before each from (epoch, step) alone. Returns its entry."""
    n_steps = len(batches) if hasattr(batches, "__len__") else cfg.steps_per_epoch  # type: ignore[arg-type]
    sums: dict[str, float] = {}
    steps = 0
    cur_lr = cfg.lr
    desc = f"epoch {epoch + 1}/{cfg.epochs}"
    bar = tqdm(batches, total=n_steps, desc=desc, unit="batch", disable=not progress, leave=False)
    for batch in bar:
        t, dt = (epoch + min(steps / n_steps, 1.0 - 1e-9), 1.0 / n_steps) if n_steps else (float(epoch), 1.0)
        cur_lr = cfg.lr_at(t, dt)
        for group in opt.param_groups:
            group["lr"] = cur_lr
        losses = step_loss(model, to_device(batch, dev))
        if "total" not in losses:
            raise DataError("step_loss", f"returned keys {sorted(losses)}; the key 'total' is required")
        total = losses["total"]
        if not bool(torch.isfinite(total.detach()).all()):
            raise FloatingPointError(f"epoch {epoch + 1} step {steps + 1}: total loss is {total.item()}")
        opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach().float().mean())
        steps += 1
        if progress:
            bar.set_postfix(loss=f"{sums['total'] / steps:.4f}", lr=f"{cur_lr:.3g}", refresh=False)
    bar.close()
    if steps == 0:
        raise DataError("make_batches", f"epoch {epoch} gave no batches")
    return {"epoch": epoch + 1, "steps": steps, "lr": cur_lr, "losses": {n: s / steps for n, s in sorted(sums.items())}}


def _save_checkpoint(
    checkpoint_dir: Path,
    epoch: int,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    config: dict[str, Any],
    history: list[dict[str, Any]],
    keep_last: int,
    log: logging.Logger,
) -> None:
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "config": config,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "history": history,
        "rng": _rng_state(),
    }
    path = checkpoint_path(checkpoint_dir, epoch)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    for old_epoch, old in list_checkpoints(checkpoint_dir)[keep_last:]:
        log.debug("removing old checkpoint %s (epoch %d)", old, old_epoch)
        old.unlink(missing_ok=True)
