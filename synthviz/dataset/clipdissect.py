"""CLIP-Dissect (Oikarinen & Weng, ICLR 2023): a word for each unit from its top images and a word
list, without masks, by soft-WPMI under a CLIP model.

With ``P[i, c]`` = softmax over the words of ``a`` × the CLIP cosine similarity of image ``i`` and
word ``c`` (``a`` = 10), the score of word ``c`` for unit ``u`` with top images ``i_1..i_k`` (by the
unit's value in the index) is ``log P(c | u) − λ log P(c)``: ``log P(c | u) = Σ_j log(1 + p_j (P[i_j, c] − 1))``
with ``p_j`` falling linearly from 0.998 to 0.97 over the top-k, and ``log P(c)`` the log of its mean
over all units (log-sum-exp). The label is the best-scoring word. As the authors' ``soft_wpmi``.

    rows = clip_dissect(run, "open_clip:ViT-B-32", ["stripes", "dots", "red"])   # [{"layer", "unit", "label", "score"}]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..checks import positive
from ..errors import BadValue, SynthvizError
from .run import Run, open_run


def read_words(path: str | os.PathLike) -> list[str]:
    """One word (or phrase) per line; blank lines ignored."""
    try:
        words = [w.strip() for w in Path(path).read_text(encoding="utf-8").splitlines() if w.strip()]
    except (OSError, UnicodeDecodeError):
        raise BadValue(f"cannot read the words {path}; give a text file, one word per line") from None
    if len(words) < 2:
        raise BadValue(f"{path} holds {len(words)} word(s); CLIP-Dissect chooses among at least 2, one per line")
    return words


def clip_similarities(clip, run: Run, images: list[int], words: list[str], batch_size: int = 32) -> torch.Tensor:
    """(len(images), len(words)): cosine similarity of each image's CLIP embedding with each word's."""
    embed = getattr(clip.net, "embed_text", None)
    if embed is None:
        raise SynthvizError(f"{clip.name} has no text tower; CLIP-Dissect needs --clip open_clip:ARCH")
    with torch.no_grad():
        text = torch.nn.functional.normalize(embed(words).float().cpu(), dim=1)
        out = []
        for start in range(0, len(images), batch_size):
            batch = torch.stack([run.image(i) for i in images[start:start + batch_size]]).to(clip.device)
            out.append(torch.nn.functional.normalize(clip(batch).float().cpu(), dim=1) @ text.T)
    return torch.cat(out)


def soft_wpmi(similarities: torch.Tensor, activations: torch.Tensor, top_k: int = 100, a: float = 10.0,
              lam: float = 1.0, p_start: float = 0.998, p_end: float = 0.97) -> torch.Tensor:
    """(units, words) soft-WPMI from similarities (images, words) and activations (images, units)."""
    probs = torch.softmax(a * similarities.double(), dim=1)
    k = min(top_k, len(activations))
    top = activations.double().topk(k, dim=0).indices  # (k, units)
    p = (p_start - torch.arange(k, dtype=torch.float64) / k * (p_start - p_end))[:, None, None]
    chosen = probs[top]  # (k, units, words)
    given = torch.log(1 + p * (chosen - 1) + 1e-7).sum(0)  # (units, words)
    prior = torch.logsumexp(given, dim=0, keepdim=True) - np.log(len(given))
    return (given - lam * prior).float()


def clip_dissect(run: str | os.PathLike | Run, clip: str, words: str | os.PathLike | list[str], *,
                 layers: list[str] | None = None, top_k: int = 100, weights: str = "default",
                 batch_size: int = 32) -> list[dict]:
    """Label every unit of ``layers`` (default all indexed) with its best word by soft-WPMI under
    ``clip`` (``open_clip:ARCH``). Returns one ``{"layer", "unit", "label", "score"}`` per unit."""
    from ..models import load_model

    run = open_run(run)
    positive("top_k", top_k, integer=True)
    words = words if isinstance(words, list) else read_words(words)
    model = load_model(clip, weights)
    rows = []
    for layer in layers or run.layers:
        layer = run.check_layer(layer)
        feats = np.asarray(run.features(layer))
        usable = [int(i) for i in np.flatnonzero(~np.isnan(feats[:, 0]))]
        sims = clip_similarities(model, run, usable, words, batch_size)
        scores = soft_wpmi(sims, torch.from_numpy(feats[usable]), top_k)
        best, which = scores.max(1)
        rows += [{"layer": layer, "unit": u, "label": words[w], "score": s}
                 for u, (s, w) in enumerate(zip(best.tolist(), which.tolist()))]
    return rows
