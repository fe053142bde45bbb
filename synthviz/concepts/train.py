"""Training a sparse autoencoder streaming over collected activations, checkpointed.

The activations are an (S, C) array on disk (memory-mapped: memory does not grow with the
dataset); each epoch reads them in a shuffled order fixed by the seed and the epoch, one batch at
a time. Inputs are divided by one scale (the RMS of a sample), so the penalties and the learning
rate mean the same on every layer. The module, the optimizer and the place in the schedule go to
a checkpoint every ``checkpoint_every`` seconds and on Ctrl-C; the same call resumes there
(``torch.load(weights_only=True)``) and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import SynthvizError
from ..io import atomic_write, deferred_interrupt, state_bytes
from ..progress import progress as progress_bar
from .hyper import SAE_DEFAULTS, SAEHyper
from .registry import DictionaryMethod

SAMPLE = SAE_DEFAULTS.scale_sample  # rows read to set the scale, the start and the archetypes


def sample_rows(data: np.ndarray, rows: np.ndarray, n: int = SAMPLE) -> torch.Tensor:
    """Up to ``n`` rows of ``data`` (S, C), evenly spaced among ``rows``, as a float tensor."""
    pick = rows[np.linspace(0, len(rows) - 1, min(n, len(rows))).round().astype(int)]
    return torch.from_numpy(np.asarray(data[np.unique(pick)], dtype=np.float32))


def archetypes(x: torch.Tensor, concepts: int, seed: int, per_concept: int = SAE_DEFAULTS.archetypes_per_concept
               ) -> torch.Tensor:
    """Candidate archetypes: k-means centroids (``per_concept`` per concept, at most one per sample) of ``x`` (n, C)."""
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise SynthvizError('the archetypal SAE needs scikit-learn: pip install "synthviz[concepts]"') from None
    n = min(len(x), per_concept * concepts)
    km = KMeans(n_clusters=n, n_init=1, random_state=seed, max_iter=100).fit(x.numpy())
    return torch.from_numpy(km.cluster_centers_).float()


def build(method: DictionaryMethod, channels: int, concepts: int, k: int | None, start: torch.Tensor,
          seed: int, hyper: SAEHyper = SAE_DEFAULTS) -> tuple[torch.nn.Module, dict]:
    """The module of ``method`` started from ``start`` (n, C) scaled samples, and its facts."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        points = archetypes(start, concepts, seed, hyper.archetypes_per_concept) if method.needs_points else None
        net = method.fn(channels, concepts, k, points, hyper=hyper)
        net.start_from(start)
    facts = {"channels": channels, "concepts": concepts, "k": k}
    if hyper.changed():
        facts["hyper"] = hyper.changed()
    if points is not None:
        facts["candidates"] = len(points)
    return net, facts


def _save(path: Path, state: dict) -> None:
    atomic_write(path, state_bytes(state))


def _load(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a checkpoint cut short
        raise SynthvizError(f"the training checkpoint {path} cannot be read; pass --overwrite to start again") from None


def train_sae(method: DictionaryMethod, data: np.ndarray, rows: np.ndarray, concepts: int, k: int | None, *,
              epochs: int | None = None, batch_size: int = 256, lr: float | None = None, seed: int = 0,
              checkpoint: Path | None = None, checkpoint_every: float = 30.0, progress: bool = True,
              on_step: Callable[[int], None] | None = None,
              hyper: SAEHyper = SAE_DEFAULTS) -> tuple[torch.nn.Module, float, dict]:
    """Train ``method`` on rows ``rows`` of ``data`` (S, C) in batches of ``batch_size`` positions.
    ``epochs``, ``lr``: None for ``hyper``'s. Returns (module in eval mode, scale, facts)."""
    hyper = hyper.with_values(epochs=epochs, learning_rate=lr)
    epochs, lr = hyper.epochs, hyper.learning_rate
    sample = sample_rows(data, rows, hyper.scale_sample)
    scale = float(sample.pow(2).mean().sqrt().clamp_min(1e-12))
    net, facts = build(method, data.shape[1], concepts, k, sample / scale, seed, hyper)
    optim = torch.optim.Adam(net.parameters(), lr=lr)
    steps = -(-len(rows) // batch_size)
    done = 0
    saved = _load(checkpoint) if checkpoint is not None else None
    if saved is not None:
        net.load_state_dict(saved["model"])
        optim.load_state_dict(saved["optim"])
        done = int(saved["done"])
    last, order, order_epoch = time.monotonic(), None, -1
    net.train()
    try:
        with progress_bar(epochs * steps, f"train {method.name}", completed=done, unit="batch",
                          enabled=progress) as bar:
            while done < epochs * steps:
                epoch, step = divmod(done, steps)
                if epoch != order_epoch:  # the epoch's order depends on the seed and the epoch only
                    gen = torch.Generator().manual_seed(seed * 10_007 + epoch)
                    order, order_epoch = rows[torch.randperm(len(rows), generator=gen).numpy()], epoch
                pick = np.sort(order[step * batch_size:(step + 1) * batch_size])
                x = torch.from_numpy(np.asarray(data[pick], dtype=np.float32)) / scale
                loss, _ = net.loss(x)
                optim.zero_grad()
                loss.backward()
                with deferred_interrupt():  # a checkpoint never holds a step without its count
                    optim.step()
                    done += 1
                bar.advance(status=f"loss {loss.item():.4g}")
                if checkpoint is not None and time.monotonic() - last > checkpoint_every:
                    _save(checkpoint, {"model": net.state_dict(), "optim": optim.state_dict(), "done": done})
                    last = time.monotonic()
                if on_step is not None:
                    on_step(done)
    finally:
        if checkpoint is not None:
            _save(checkpoint, {"model": net.state_dict(), "optim": optim.state_dict(), "done": done})
    return net.eval(), scale, facts
