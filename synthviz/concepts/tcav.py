"""TCAV (Kim et al. 2018) on activations: concept activation vectors, scores and a calibrated null.

A CAV is the normal of an L2-regularised logistic regression that separates a concept's
activations from random images' activations at one layer (features centred on the random
images' mean and scaled to unit mean squared norm; ``ridge`` = 1/C, scikit-learn's convention).
The TCAV score of a CAV ``v`` is the fraction of inputs whose class score rises along it:
mean over inputs of [∇_A score · v > 0], with ∇_A the gradient at the layer (N, F).

Each of ``runs`` runs fits a CAV on a random half of the concept images against as many random
images drawn from the random folder; the images left out give the CAV's held-out (balanced)
accuracy. The score is the mean over runs.

**The null.** Kim et al. compare the runs' scores with random-vs-random scores by a t-test while
the concept set stays fixed: the runs share the concept set's own sampling error, so they are not
independent and a concept drawn from the random images' distribution comes out "significant"
(FIELD-NOTES: p = 0.014). Here the whole procedure is repeated ``nulls`` times on *null concepts*:
as many images as the concept has, drawn from the random folder, tested against the rest of it
with the same runs. The statistic is |score − 0.5|; the p-value is the Monte-Carlo one,
(1 + #null statistics ≥ the concept's) / (1 + nulls). A null depends only on the layer and the
concept's size, so concepts of one size share it.

Every fit is small: a CAV lies in the span of its training activations, so the fits run on the
Gram matrix of the images (n × n) instead of the layer's F features, batched in torch (Newton's
method in float64); :func:`fit_cavs` gives the full (R, F) vectors for the concept's own runs.
"""

from __future__ import annotations

import math

import torch

RIDGE = 1.0  # 1/C of the logistic regression, on standardised features
CHUNK = 512  # fits per batch


def standardizer(random: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(centre (F,), scale): the random activations' mean and root mean squared distance to it."""
    centre = random.double().mean(0)
    scale = float((random.double() - centre).pow(2).sum(1).mean().sqrt())
    return centre, scale if scale > 0 else 1.0


def _newton(phi: torch.Tensor, y: torch.Tensor, ridge: float, iters: int = 50) -> torch.Tensor:
    """L2-regularised logistic regressions, one per batch element: features ``phi`` (B, m, d),
    labels ``y`` (m,) in {0, 1} -> (B, d + 1): the weights and the (unpenalised) intercept last.
    Newton's method with step halving, to a gradient of 1e-9."""
    b, m, d = phi.shape
    x = torch.cat([phi, phi.new_ones(b, m, 1)], -1)
    xt = x.transpose(1, 2)
    reg = phi.new_full((d + 1,), ridge)
    reg[-1] = 1e-9
    sign = 2 * y - 1

    def loss(theta):
        z = (x @ theta[:, :, None])[..., 0]
        return torch.nn.functional.softplus(-sign * z).sum(1) + 0.5 * (reg * theta * theta).sum(1)

    theta = phi.new_zeros(b, d + 1)
    current = loss(theta)
    for _ in range(iters):
        p = torch.sigmoid((x @ theta[:, :, None])[..., 0])
        grad = (xt @ (p - y)[:, :, None])[..., 0] + reg * theta
        if grad.abs().max() < 1e-9:
            break
        hess = xt @ (x * (p * (1 - p))[:, :, None]) + torch.diag(reg)
        step = torch.cholesky_solve(grad[:, :, None], torch.linalg.cholesky(hess))[..., 0]
        t = phi.new_ones(b)
        for _ in range(8):  # halve the step where the loss would rise
            new = loss(theta - t[:, None] * step)
            worse = new > current + 1e-12
            if not worse.any():
                break
            t = torch.where(worse, t / 2, t)
        theta = theta - t[:, None] * step
        current = loss(theta)
    return theta


def fit_dual(gram: torch.Tensor, idx: torch.Tensor, positives: int, ridge: float = RIDGE
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logistic regressions on subsets of images given by their Gram matrix ``gram`` (n, n) of
    standardised activations: ``idx`` (B, m) image indices per fit, the first ``positives`` of
    each the concept. Returns (alpha (B, m), bias (B,), norm (B,)): the CAV of fit b is
    Σ_j alpha[b, j] x[idx[b, j]] (standardised features) of length ``norm[b]``; its decision for
    image i is gram[i, idx[b]] · alpha[b] + bias[b]."""
    m = idx.shape[1]
    y = torch.zeros(m, dtype=gram.dtype)
    y[:positives] = 1
    k = gram[idx[:, :, None], idx[:, None, :]]
    lam, u = torch.linalg.eigh(k)
    keep = lam > 1e-10 * lam.amax(-1, keepdim=True).clamp(min=1e-300)
    root = torch.where(keep, lam.clamp(min=0).sqrt(), torch.zeros_like(lam))
    theta = _newton(u * root[:, None, :], y, ridge)
    inv = torch.where(keep, 1 / root.clamp(min=1e-300), torch.zeros_like(lam))
    alpha = torch.einsum("bmk,bk->bm", u, inv * theta[:, :-1])
    return alpha, theta[:, -1], theta[:, :-1].norm(dim=1)


def draw(gen: torch.Generator, pool: torch.Tensor, shape: tuple[int, ...], take: int) -> torch.Tensor:
    """``shape`` draws of ``take`` indices from ``pool`` (..., n) without replacement -> (*shape, take);
    ``pool`` broadcasts against ``shape`` (one pool per leading index, or one for all)."""
    n = pool.shape[-1]
    order = torch.rand(*shape, n, generator=gen).argsort(-1)[..., :take]
    return torch.gather(pool.expand(*shape, n), -1, order)


def sizes(n_concept: int, n_random: int) -> tuple[int, int]:
    """(concept images used, images per half): a half is ⌊n/2⌋ (at least 1) of the concept images,
    tested against as many random images. A null concept takes as many images from the random
    folder and still needs a half and one image to spare: fewer concept images are used when the
    random folder is too small (n + half + 1 ≤ random images)."""
    n = n_concept
    while n > 2 and n + max(1, n // 2) + 1 > n_random:
        n -= 1
    return n, max(1, n // 2)


def _standardized(random: torch.Tensor, *more: torch.Tensor) -> torch.Tensor:
    centre, scale = standardizer(random)
    return (torch.cat([*(t.double() for t in more), random.double()]) - centre) / scale


def fit_cavs(concept: torch.Tensor, random: torch.Tensor, runs: int, seed: int = 0,
             ridge: float = RIDGE) -> tuple[torch.Tensor, torch.Tensor]:
    """CAVs of ``concept`` (n_c, F) against ``random`` (n_r, F) activations, one per run: a random
    half of the concept images against as many random images, drawn from n_r − n_c of them (so
    that a concept meets the random images exactly as a null concept does in
    :func:`null_statistics`). Returns (cavs (runs, F) unit vectors pointing towards the concept,
    held-out balanced accuracy (runs,))."""
    n_c, half = len(concept), max(1, len(concept) // 2)
    if n_c + half > len(random):
        raise ValueError(f"{n_c} concept images need {n_c + half} random images, not {len(random)}")
    x = _standardized(random, concept)
    gram = x @ x.T
    gen = torch.Generator().manual_seed(seed)
    spare = n_c + torch.randperm(len(random), generator=gen)[n_c:]  # the n_r − n_c random images in play
    idx = torch.cat([draw(gen, torch.arange(n_c), (runs,), half), draw(gen, spare, (runs,), half)], 1)
    alpha, bias, _ = fit_dual(gram, idx, half, ridge)
    cavs = torch.einsum("rm,rmf->rf", alpha, x[idx])
    cavs = cavs / cavs.norm(dim=1, keepdim=True).clamp(min=1e-300)
    decision = torch.einsum("rnm,rm->rn", gram[:, idx].permute(1, 0, 2), alpha) + bias[:, None]
    out = torch.ones(runs, len(x), dtype=torch.bool).scatter_(1, idx, False)  # held out of the run's fit
    is_concept = torch.arange(len(x)) < n_c
    right = (decision > 0) == is_concept
    acc_c = (right & out & is_concept).sum(1) / (out & is_concept).sum(1).clamp(min=1)
    acc_r = (right & out & ~is_concept).sum(1) / (out & ~is_concept).sum(1).clamp(min=1)
    return cavs.float(), ((acc_c + acc_r) / 2).float()


def run_scores(grads: torch.Tensor, cavs: torch.Tensor) -> torch.Tensor:
    """TCAV score of each CAV: the fraction of inputs whose directional derivative is positive;
    ``grads`` (N, F), ``cavs`` (R, F) -> (R,)."""
    return ((grads.double() @ cavs.double().T) > 0).double().mean(0).float()


def run_cosines(grads: torch.Tensor, cavs: torch.Tensor) -> torch.Tensor:
    """Mean cosine between each CAV and the inputs' gradients: (N, F), (R, F) -> (R,)."""
    g = grads.double()
    cos = (g @ cavs.double().T) / (g.norm(dim=1, keepdim=True) * cavs.double().norm(dim=1)).clamp(min=1e-300)
    return cos.mean(0).float()


def statistic(scores: torch.Tensor, cosines: torch.Tensor) -> torch.Tensor:
    """The test statistic of a concept's runs: (|mean score − 0.5|, |mean cosine|), compared in that
    order (the cosine breaks the ties of saturated scores, as when the gradient is one direction)."""
    return torch.stack([(scores.double().mean() - 0.5).abs(), cosines.double().mean().abs()]).float()


def null_statistics(random: torch.Tensor, grads: torch.Tensor, n_concept: int, runs: int, nulls: int,
                    seed: int = 0, ridge: float = RIDGE) -> torch.Tensor:
    """:func:`statistic` of ``nulls`` null concepts of ``n_concept`` images drawn from ``random``
    (n_r, F), each tested with ``runs`` runs against the other n_r − n_concept random images exactly
    as a concept is (:func:`fit_cavs`); ``grads`` (N, F) the inputs' gradients. Returns (nulls, 2)."""
    n_r, half = len(random), max(1, n_concept // 2)
    if n_concept + half > n_r:
        raise ValueError(f"a null concept of {n_concept} images needs {n_concept + half} random images, not {n_r}")
    x = _standardized(random)
    g = grads.double()
    gram, cross, gnorm = x @ x.T, g @ x.T, g.norm(dim=1).clamp(min=1e-300)  # (n_r, n_r), (N, n_r), (N,)
    gen = torch.Generator().manual_seed(seed + 1_000_003)
    order = torch.rand(nulls, n_r, generator=gen).argsort(1)
    pos = draw(gen, order[:, None, :n_concept], (nulls, runs), half)
    neg = draw(gen, order[:, None, n_concept:], (nulls, runs), half)
    idx = torch.cat([pos, neg], -1).reshape(nulls * runs, 2 * half)
    scores, cosines = torch.empty(nulls * runs, dtype=torch.float64), torch.empty(nulls * runs, dtype=torch.float64)
    for start in range(0, len(idx), CHUNK):
        part = idx[start:start + CHUNK]
        alpha, _, norm = fit_dual(gram, part, half, ridge)
        derivative = torch.einsum("bnm,bm->bn", cross[:, part].permute(1, 0, 2), alpha)
        scores[start:start + CHUNK] = (derivative > 0).double().mean(1)
        cosines[start:start + CHUNK] = (derivative / (gnorm * norm[:, None].clamp(min=1e-300))).mean(1)
    return torch.stack([(scores.view(nulls, runs).mean(1) - 0.5).abs(),
                        cosines.view(nulls, runs).mean(1).abs()], 1).float()


def p_value(stat: torch.Tensor, null: torch.Tensor) -> float:
    """The Monte-Carlo p-value of a concept's :func:`statistic` (2,) against null statistics (Q, 2):
    (1 + #nulls at least as extreme) / (1 + Q), comparing scores first, then cosines."""
    tie = (null[:, 0] - stat[0]).abs() <= 1e-6
    extreme = (null[:, 0] > stat[0] + 1e-6) | (tie & (null[:, 1] >= stat[1] - 1e-7))
    return (1 + int(extreme.sum())) / (1 + len(null))


def default_nulls(tests: int, alpha: float) -> int:
    """Enough null concepts that a Bonferroni-corrected p-value can fall well under ``alpha``:
    the smallest p-value is 1/(nulls + 1), and ``tests`` of them must stay under alpha/3."""
    return max(99, math.ceil(3 * tests / alpha) - 1)


def summarize(scores: torch.Tensor, accuracy: torch.Tensor, p: float, tests: int, alpha: float) -> dict:
    """One row of the result: score (mean over runs), std (over runs), p_value (Bonferroni-corrected
    over ``tests``), significant, cav_accuracy (mean held-out accuracy)."""
    std = float(scores.std()) if len(scores) > 1 else 0.0
    corrected = min(1.0, p * tests)
    return {"score": float(scores.mean()), "std": std, "p_value": corrected, "significant": corrected < alpha,
            "cav_accuracy": float(accuracy.mean())}
