"""Concept dictionaries: the planted-pattern known answer for every method, and synthviz's TopK
SAE beside overcomplete's ``TopKSAE`` on the same activations, in one run.

    python benchmarks/concepts.py [--per-pattern 20] [--size 128] [--epochs 20] [--concepts 16] [--k 4] [--repeat 2]

Images with planted patterns (stripes, a red disk, a checkerboard on noise; ``synthviz.evaluation.planted``)
through the embedded EfficientNet-Lite0 to ``_blocks.5``; every position is a sample. Prints:

1. per method (NMF at K = 8, each SAE at ``--concepts``/``--k``): for each pattern, the most of its images
   among one concept's top 10 (goal 10/10, pass ≥ 9), R², L0, dead fraction and the time to fit;
2. synthviz ``topk`` against overcomplete 0.3 ``TopKSAE`` (its linear encoder, l2-normalised
   dictionary, its ``train_sae``): the same inputs (divided by the same scale), dictionary size, k,
   batch size, Adam learning rate and epochs; R² over every position and seconds per epoch, the
   two interleaved ``--repeat`` times (best time kept);
3. the cost of a run's importance.csv on the same images and an NMF (K = 8): CRAFT's total Sobol
   indices on at most ``--sobol-images`` images per predicted class (32 · (K + 2) perturbed copies
   each, in head passes) against gradient × coefficient on every image, and the head passes against
   full passes (the network below the layer run for every copy) on one image;
then the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from synthviz.concepts import get_method
from synthviz.concepts.nmf import fit_nmf, nnls_codes
from synthviz.concepts.train import train_sae
from synthviz.evaluation.planted import PATTERNS, planted_images
from synthviz.layers import capture
from synthviz.models import load_model
from machine import machine

LAYER = "_blocks.5"


def activations(per_pattern: int, size: int) -> tuple[torch.Tensor, np.ndarray, int]:
    images, labels, _ = planted_images(per_pattern, size)
    model = load_model("efficientnet_lite0")
    with torch.no_grad():
        act = torch.cat([capture(model, part, [LAYER])[LAYER] for part in images.split(32)])
    return act.permute(0, 2, 3, 1).reshape(-1, act.shape[1]).contiguous(), labels.numpy(), act.shape[2] * act.shape[3]


def recovered(codes: torch.Tensor, labels: np.ndarray, per_image: int) -> dict[str, int]:
    best = codes.reshape(len(labels), per_image, -1).amax(1).numpy()
    found: dict[str, int] = {}
    for k in range(best.shape[1]):
        if best[:, k].max() > 0:
            counts = np.bincount(labels[np.argsort(-best[:, k], kind="stable")[:10]], minlength=len(PATTERNS))
            name = PATTERNS[int(counts.argmax())]
            found[name] = max(found.get(name, 0), int(counts.max()))
    return found


def r2(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return float(1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def known_answers(x: torch.Tensor, labels: np.ndarray, per_image: int, args) -> None:
    print("| method | stripes | red disk | checkerboard | R² | L0 | dead | seconds |\n|---|---|---|---|---|---|---|---|")
    for method in ["nmf", "sae", "topk", "batchtopk", "jumprelu", "archetypal"]:
        start = time.perf_counter()
        if method == "nmf":
            atoms, _ = fit_nmf(x, 8)
            codes = nnls_codes(x, atoms)
            rebuilt = codes @ atoms
        else:
            net, scale, _ = train_sae(get_method(method), x.numpy(), np.arange(len(x)), args.concepts, args.k,
                                      epochs=args.epochs, batch_size=args.batch, lr=args.lr, progress=False)
            with torch.no_grad():
                _, codes = net.encode(x / scale)
                rebuilt = net.decode(codes) * scale
        seconds = time.perf_counter() - start
        found = recovered(codes, labels, per_image)
        cells = " | ".join(f"{found.get(p, 0)}/10" for p in ("stripes", "red disk", "checkerboard"))
        print(f"| {method} | {cells} | {r2(x, rebuilt):.3f} | {float((codes > 0).sum(1).float().mean()):.2f} | "
              f"{float(((codes > 0).sum(0) == 0).float().mean()):.2f} | {seconds:.1f} |")


def _import_overcomplete():
    """overcomplete 0.3 calls ``matplotlib.cm.get_cmap`` on import, which matplotlib 3.9 removed:
    give it the registry's equivalent first (only its colour maps use it, never the SAEs)."""
    import matplotlib
    import matplotlib.cm

    if not hasattr(matplotlib.cm, "get_cmap"):
        matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap
    from overcomplete.sae import TopKSAE, train_sae

    return TopKSAE, train_sae


def overcomplete_topk(xs: torch.Tensor, args) -> tuple[float, float]:
    TopKSAE, oc_train = _import_overcomplete()

    torch.manual_seed(0)
    net = TopKSAE(xs.shape[1], nb_concepts=args.concepts, top_k=args.k)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs), batch_size=args.batch, shuffle=True)
    optim = torch.optim.Adam(net.parameters(), lr=args.lr)

    def mse(x, x_hat, pre, z, d):
        return (x - x_hat).pow(2).sum(1).mean()

    start = time.perf_counter()
    oc_train(net, loader, mse, optim, nb_epochs=args.epochs, clip_grad=None, monitoring=0)
    per_epoch = (time.perf_counter() - start) / args.epochs
    net.eval()
    with torch.no_grad():
        _, _, x_hat = net(xs)
    return r2(xs, x_hat), per_epoch


def ours_topk(x: torch.Tensor, args) -> tuple[float, float, float]:
    start = time.perf_counter()
    net, scale, _ = train_sae(get_method("topk"), x.numpy(), np.arange(len(x)), args.concepts, args.k,
                              epochs=args.epochs, batch_size=args.batch, lr=args.lr, progress=False)
    per_epoch = (time.perf_counter() - start) / args.epochs
    with torch.no_grad():
        x_hat = net.decode(net.encode(x / scale)[1])
    return r2(x / scale, x_hat), per_epoch, scale


def side_by_side(x: torch.Tensor, args) -> None:
    ours, theirs = [], []
    for _ in range(args.repeat):
        r_ours, t_ours, scale = ours_topk(x, args)
        ours.append((r_ours, t_ours))
        theirs.append(overcomplete_topk(x / scale, args))  # the same inputs: divided by the same scale
    best_ours, best_theirs = min(t for _, t in ours), min(t for _, t in theirs)
    print(f"\nTopK SAE, {len(x)} positions x {x.shape[1]} channels, dictionary {args.concepts}, k {args.k}, "
          f"batch {args.batch}, Adam lr {args.lr}, {args.epochs} epochs (best of {args.repeat}):\n")
    print("| | R² | seconds / epoch |\n|---|---|---|")
    print(f"| synthviz topk | {ours[-1][0]:.3f} | {best_ours:.3f} |")
    print(f"| overcomplete TopKSAE | {theirs[-1][0]:.3f} | {best_theirs:.3f} |")
    print(f"| ratio synthviz / overcomplete | {ours[-1][0] / max(theirs[-1][0], 1e-9):.2f} | {best_ours / best_theirs:.2f} |")


def importance_cost(per_pattern: int, size: int, per_class: int) -> None:
    """One row: the seconds of the Sobol importance (capped per class) and of gradient × coefficient."""
    from synthviz.concepts import Dictionary
    from synthviz.concepts import sobol
    from synthviz.concepts.importance import class_sobol, sobol_selection
    from synthviz.concepts.pictures import maps_and_importance

    images, _, _ = planted_images(per_pattern, size)
    model = load_model("efficientnet_lite0")
    with torch.no_grad():
        act = torch.cat([capture(model, part, [LAYER])[LAYER] for part in images.split(32)])
    atoms, _ = fit_nmf(act.permute(0, 2, 3, 1).reshape(-1, act.shape[1]), 8)
    d = Dictionary("nmf", LAYER, model.name, atoms, torch.zeros(act.shape[1]))
    start = time.perf_counter()
    classes = torch.cat([maps_and_importance(model, d, part)[2] for part in images.split(32)])
    gradient = time.perf_counter() - start
    chosen = sobol_selection(classes.numpy(), per_class)
    start = time.perf_counter()
    for part in np.array_split(chosen, max(1, -(-len(chosen) // 32))):
        class_sobol(model, d, images[part], classes[part].numpy(), seed=0)
    seconds = time.perf_counter() - start
    one = images[chosen[:1]]
    start = time.perf_counter()
    class_sobol(model, d, one, classes[chosen[:1]].numpy(), seed=0)
    head = time.perf_counter() - start
    scores, sobol._scores = sobol._scores, lambda *a, head: scores(*a, head=False)  # full passes only
    try:
        start = time.perf_counter()
        class_sobol(model, d, one, classes[chosen[:1]].numpy(), seed=0)
        full = time.perf_counter() - start
    finally:
        sobol._scores = scores
    print(f"\nimportance.csv of an NMF (K = 8) over {len(images)} images, {len(set(classes.tolist()))} predicted "
          f"classes:\n")
    print("| Sobol images (≤ per class) | Sobol s | gradient × coefficient s (every image) | ratio | "
          "head / full passes, one image |\n|---|---|---|---|---|")
    print(f"| {len(chosen)} (≤ {per_class}) | {seconds:.1f} | {gradient:.1f} | {seconds / max(gradient, 1e-9):.1f} | "
          f"{head:.2f} / {full:.2f} s ({full / max(head, 1e-9):.1f}x) |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-pattern", type=int, default=20)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--concepts", type=int, default=16)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sobol-images", type=int, default=16)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    x, labels, per_image = activations(args.per_pattern, args.size)
    print(f"planted patterns: {len(labels)} images at {args.size} px, {LAYER} of efficientnet_lite0, "
          f"{len(x)} positions\n")
    known_answers(x, labels, per_image, args)
    side_by_side(x, args)
    importance_cost(args.per_pattern, args.size, args.sobol_images)
    print(f"\n{machine()}; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
