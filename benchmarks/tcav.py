"""TCAV: synthviz's time and scores next to Captum's ``TCAV`` (captum.concept), measured in one run on
the same images, and the false-positive rate of the calibrated null next to Kim et al.'s t-test.

    python benchmarks/tcav.py [--size 128] [--layer _blocks.5] [--images 40] [--runs 20] [--nulls 0]
                              [--calibration 20] [--threads 2]

Images: planted patterns on noise (synthviz.evaluation.planted): the concept is stripes, the random
images and the inputs are noise; the class is 285 of the embedded EfficientNet-Lite0.

* synthviz: ``synthviz.tcav`` (activations, gradients, ``--runs`` CAVs, the null of ``--nulls`` null
  concepts, default: enough for the correction), timed whole.
* Captum, same CAVs: ``TCAV.interpret`` with a classifier that hands out synthviz's CAVs, one
  experimental set (concept, random set r) per run: its scores must equal synthviz's run by run.
* Captum, its own CAVs: ``TCAV`` with its default classifier (SGD, 33 % test split), the same runs.
* Calibration (``--calibration K``): K null concepts drawn from the random images' distribution at the
  layer (precomputed activations); the share called significant at 0.05 by synthviz's null and by
  Kim et al.'s recipe (concept set fixed, random sets resampled, two-sided t-test of the concept's
  scores against random-vs-random scores), with the same logistic-regression CAVs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
import warnings

import torch

import synthviz
from synthviz.concepts import tcav as T
from synthviz.evaluation.planted import planted_images
from synthviz.progress import Progress
from synthviz.targets import as_target
from synthviz.techniques.tcav import _flat_passes
from machine import machine


class Wrapped(torch.nn.Module):
    """The Model as one nn.Module on [0, 1] images (what Captum is given); layers keep their names under ``net.``."""

    def __init__(self, model):
        super().__init__()
        self.net, self.model = model.net, model

    def forward(self, x):
        return self.net(self.model.normalize(x))


def images(pattern: str, n: int, size: int, seed: int) -> torch.Tensor:
    return planted_images(n, size, patterns=(pattern,), fill=pattern != "noise", seed=seed)[0]


def captum_same_cavs(model, layer, concept, random, inputs, cavs, target, tmp):
    from captum.concept import TCAV, Concept
    from captum.concept._utils.classifier import Classifier

    queue = [(cav, r + 1) for r, cav in enumerate(cavs)]

    class SameCAVs(Classifier):
        def __init__(self):
            pass

        def train_and_eval(self, dataloader, **kwargs):
            self.cav, self.rid = queue.pop(0)
            return {"accs": torch.tensor(1.0)}

        def weights(self):
            return torch.stack([self.cav, -self.cav])

        def classes(self):
            return [0, self.rid]

    c = Concept(0, "stripes", [concept])
    sets = [[c, Concept(r + 1, f"random{r}", [random[:len(concept)]])] for r in range(len(cavs))]
    tcav = TCAV(Wrapped(model), [f"net.{layer}"], classifier=SameCAVs(), save_path=tmp)
    out = tcav.interpret(inputs, sets, target=target)
    return [float(out[f"0-{r + 1}"][f"net.{layer}"]["sign_count"][0]) for r in range(len(cavs))]


def captum_own_cavs(model, layer, concept, random, inputs, runs, target, tmp, seed=0):
    from captum.concept import TCAV, Concept

    gen = torch.Generator().manual_seed(seed)
    c = Concept(0, "stripes", [concept])
    sets = [[c, Concept(r + 1, f"random{r}", [random[torch.randperm(len(random), generator=gen)[:len(concept)]]])]
            for r in range(runs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tcav = TCAV(Wrapped(model), [f"net.{layer}"], save_path=tmp)
        out = tcav.interpret(inputs, sets, target=target)
    return [float(out[f"0-{r + 1}"][f"net.{layer}"]["sign_count"][0]) for r in range(runs)]


def kim_p(concept, random, grads, runs, gen) -> float:
    """Kim et al.'s recipe: the concept set fixed, random sets of its size resampled; t-test of the
    concept-vs-random scores against random-vs-random scores (same logistic regressions)."""
    from scipy.stats import ttest_ind

    n = len(concept)
    sc, s0 = [], []
    for _ in range(runs):
        a, b, c = (random[torch.randperm(len(random), generator=gen)[:n]] for _ in range(3))
        for pos, neg, out in ((concept, a, sc), (b, c, s0)):
            x = T._standardized(random, pos, neg)
            idx = torch.arange(2 * n)[None]
            alpha, _, _ = T.fit_dual(x @ x.T, idx, n)
            out.append(float(T.run_scores(grads, (alpha @ x[:2 * n]).float())[0]))
    return float(ttest_ind(sc, s0).pvalue)


def calibration(model, layer, args) -> str:
    random = images("noise", 3 * args.images, args.size, 3)
    bar = Progress(0, "", enabled=False)
    acts_r = _flat_passes(model, random, [layer], 16, bar)[layer]
    grads = _flat_passes(model, images("noise", 20, args.size, 4), [layer], 16, bar,
                         as_target(285, model))[layer]
    n = args.images // 2
    null = T.null_statistics(acts_r, grads, n, args.runs, 99)
    gen = torch.Generator().manual_seed(0)
    ours = kims = 0
    for q in range(args.calibration):
        c = _flat_passes(model, images("noise", n, args.size, 100 + q), [layer], 16, bar)[layer]
        cavs, _ = T.fit_cavs(c, acts_r, args.runs, seed=q)
        ours += T.p_value(T.statistic(T.run_scores(grads, cavs), T.run_cosines(grads, cavs)), null) < 0.05
        kims += kim_p(c, acts_r, grads, args.runs, gen) < 0.05
    k = args.calibration
    return (f"null concepts called significant at 0.05 ({k} concepts of {n} images, {len(acts_r)} random images): "
            f"synthviz's null {ours}/{k} = {ours / k:.0%}, Kim et al.'s t-test {kims}/{k} = {kims / k:.0%}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--layer", default="_blocks.5")
    p.add_argument("--images", type=int, default=40, help="concept images (random: 2x, inputs: 1x)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--nulls", type=int, default=0, help="0: synthviz's default")
    p.add_argument("--calibration", type=int, default=20, help="null concepts for the false-positive rates (0: skip)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model = synthviz.load_model("efficientnet_lite0", device="cpu")
    concept = images("stripes", args.images, args.size, 1)
    random, inputs = images("noise", 2 * args.images, args.size, 2), images("noise", args.images, args.size, 5)
    print(f"{machine()}; {args.size} px, layer {args.layer}, "
          f"{args.images} concept / {len(random)} random / {len(inputs)} input images, {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = synthviz.tcav(model, concepts={"stripes": concept}, random=random, inputs=inputs, target=285,
                               layers=[args.layer], runs=args.runs, nulls=args.nulls or None, size=args.size,
                               cache=f"{tmp}/cavs", progress=False)
        ours_s = time.perf_counter() - start
        row = result.info["rows"][0]
        ours = result.info["run_scores"][f"{args.layer}/stripes"]
        cavs = torch.load(next(Path(tmp, "cavs").glob("*.pt")), weights_only=True)["cavs"]
        start = time.perf_counter()
        same = captum_same_cavs(model, args.layer, concept, random, inputs, cavs, 285, f"{tmp}/c1")
        same_s = time.perf_counter() - start
        start = time.perf_counter()
        own = captum_own_cavs(model, args.layer, concept, random, inputs, args.runs, 285, f"{tmp}/c2")
        own_s = time.perf_counter() - start
    diff = max(abs(a - b) for a, b in zip(ours, same))
    print(f"synthviz: {ours_s:.2f} s (with {result.info['nulls']} null concepts x {args.runs} runs); score "
          f"{row['score']:.3f} ± {row['std']:.3f}, p = {row['p_value']:.3g}, significant {row['significant']}, "
          f"CAV accuracy {row['cav_accuracy']:.2f}")
    print(f"Captum, same CAVs: {same_s:.2f} s ({same_s / ours_s:.2f}x synthviz's time, no significance); "
          f"score {sum(same) / len(same):.3f}; largest run-by-run difference from synthviz {diff:.2g}")
    print(f"Captum, its own SGD CAVs: {own_s:.2f} s ({own_s / ours_s:.2f}x); score {sum(own) / len(own):.3f}")
    if args.calibration:
        print(calibration(model, args.layer, args))


if __name__ == "__main__":
    main()
