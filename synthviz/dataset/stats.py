"""Per-unit statistics kept while streaming a dataset: top-k and bottom-k examples and running
mean/std, in memory that does not grow with the number of images.

The top-k of every unit is kept as a (C, k) tensor merged with each batch by one stable sort: the
order is by value (highest first), ties broken by the lower image index, which is exactly what a
stable sort over the whole activation tensor gives. Mean and variance are merged batch by batch
(Chan et al.) in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SynthvizError

REDUCTIONS = ("max", "mean")


def reduce_positions(act: torch.Tensor, reduce: str = "max") -> tuple[torch.Tensor, torch.Tensor]:
    """One value per image and channel, and the position of the channel's maximum.

    Args:
        act: (B, C, H, W) conv maps, (B, N, C) tokens, or (B, C) vectors.
        reduce: ``max`` (the value at the maximum) or ``mean`` (over positions).

    Returns:
        values (B, C) float32 and positions (B, C) int64: ``y * W + x`` for maps, the token index
        for tokens, -1 for vectors.
    """
    if reduce not in REDUCTIONS:
        raise SynthvizError(f"unknown reduction '{reduce}'; use max or mean")
    act = act.detach().float()
    if act.dim() == 2:
        return act, torch.full(act.shape, -1, dtype=torch.long, device=act.device)
    flat = act.flatten(2) if act.dim() == 4 else act.transpose(1, 2) if act.dim() == 3 else None
    if flat is None:
        raise SynthvizError(f"cannot index a layer whose output has shape {tuple(act.shape)}; pick a conv or linear layer")
    top, pos = flat.max(-1)
    return (top if reduce == "max" else flat.mean(-1)), pos


class UnitStats:
    """Top-k / bottom-k (value, image index, position) and mean/std of each of ``channels`` units."""

    KEYS = ("top_v", "top_i", "top_p", "bot_v", "bot_i", "bot_p", "count", "mean", "m2")

    def __init__(self, channels: int, k: int):
        self.k = k
        self.top_v = torch.full((channels, k), -torch.inf)
        self.bot_v = torch.full((channels, k), torch.inf)
        self.top_i = torch.full((channels, k), -1, dtype=torch.long)
        self.bot_i = self.top_i.clone()
        self.top_p = self.top_i.clone()
        self.bot_p = self.top_i.clone()
        self.count = torch.zeros((), dtype=torch.long)
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.m2 = torch.zeros(channels, dtype=torch.float64)

    def update(self, values: torch.Tensor, positions: torch.Tensor, indices: torch.Tensor) -> None:
        """Merge a batch: values and positions (B, C), image indices (B,)."""
        if not len(indices):
            return
        values, positions, indices = values.cpu(), positions.cpu(), indices.cpu().long()
        self.top_v, self.top_i, self.top_p = _merge(self.top_v, self.top_i, self.top_p, values, indices, positions, True)
        self.bot_v, self.bot_i, self.bot_p = _merge(self.bot_v, self.bot_i, self.bot_p, values, indices, positions, False)
        v = values.double()
        n_b = len(v)
        mean_b = v.mean(0)
        m2_b = ((v - mean_b) ** 2).sum(0)
        n_a = int(self.count)
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (n_a * n_b / n)
        self.count = torch.tensor(n)

    @property
    def std(self) -> torch.Tensor:
        """(C,) population standard deviation of the reduced values."""
        return (self.m2 / max(int(self.count), 1)).sqrt()

    def state(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {prefix + key: getattr(self, key).numpy() for key in self.KEYS}

    @classmethod
    def from_state(cls, state, prefix: str = "") -> "UnitStats":
        top_v = np.asarray(state[prefix + "top_v"])
        stats = cls(top_v.shape[0], top_v.shape[1])
        for key in cls.KEYS:
            setattr(stats, key, torch.from_numpy(np.array(state[prefix + key])))
        return stats


def _merge(v, i, p, nv, ni, np_, largest: bool):
    """Keep the best k of the current (C, k) entries and a batch's (B, C) entries: by value, then
    by the lower image index (two stable sorts)."""
    k = v.shape[1]
    channels, b = v.shape[0], len(ni)
    vals = torch.cat([v, nv.T], 1)
    imgs = torch.cat([i, ni[None].expand(channels, b)], 1)
    poss = torch.cat([p, np_.T], 1)
    # index first (unfilled slots, index -1, go last), then value: a stable sort keeps index order among ties
    order = torch.where(imgs < 0, torch.iinfo(torch.long).max, imgs).argsort(dim=1, stable=True)
    vals, imgs, poss = vals.gather(1, order), imgs.gather(1, order), poss.gather(1, order)
    order = vals.argsort(dim=1, descending=largest, stable=True)[:, :k]
    return vals.gather(1, order), imgs.gather(1, order), poss.gather(1, order)
