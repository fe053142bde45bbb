"""Style transfer's defaults against the recipe before 0.3, in one run: the 2x2 checkerboard
statistic over the content photo's, the time, and the report line (skimage:chelsea in the style of
skimage:hubble_deep_field, default steps and ladder).

    python benchmarks/style_default.py [SIZE]      # default 512, the CLI's default size
"""
import time, sys, torch, synthviz
from synthviz import judge
from synthviz.io import resize
from synthviz.presets import resolve_value
torch.set_num_threads(2)
c = resolve_value("skimage:chelsea"); s = resolve_value("skimage:hubble_deep_field")
size = int(sys.argv[1]) if len(sys.argv) > 1 else 512
for name, kw in [("default", {}), ("before 0.3 (lbfgs, pixel, tv 1)", dict(optimizer="lbfgs", param="pixel", tv_weight=1.0))]:
    t = time.time()
    r = synthviz.style("efficientnet_lite0", c, s, size=size, **kw)
    ref = judge.checkerboard(resize(c, tuple(r.images.shape[-2:])))
    print(name, size, "cb ratio", round(judge.checkerboard(r.images)/ref, 3), "s", round(time.time()-t, 1), r.info["report"], flush=True)
