"""The building blocks of one image's decision (Olah et al., "The Building Blocks of
Interpretability", Distill 2018): a layer's activations at every position of the photo factorised
into neuron groups, each group's feature visualization, where it is on the photo and how much it
gives the class, and the semantic dictionary (each position's strongest units).

* Groups: scikit-learn's NMF (``nndsvda``) of the (positions, channels) activations, clipped at 0
  (NMF needs non-negative data; a layer after a ReLU is already): ``A ≈ W H``, ``W`` (positions,
  groups) the spatial maps, ``H`` (groups, channels) the groups' directions.
* Attribution of group k to the target: the linear (gradient × activation) attribution of its part
  of the activation, ``Σ_p W[p, k] · (H[k] · ∂score/∂A[:, p])``.
* Each group's picture: :func:`synthviz.dataset.atlas.render_icons` of ``H[k]`` (dot × cos²).
* Semantic dictionary: per position the ``top`` units by activation, each unit's picture a channel
  feature visualization (every unit that appears rendered once, batched).
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import positive
from ..errors import SynthvizError
from ..layers import LOGITS, Tap
from ..models import Model
from ..targets import main_output


def activations_and_gradient(model: Model, image: torch.Tensor, layer: str, cls: int | None) -> tuple:
    """``layer``'s activation (C, h, w) on ``image`` (1, 3, H, W), the gradient of the class score
    there (C, h, w), and the class (``cls``, or the predicted one)."""
    with model.evaluating(), torch.enable_grad(), Tap(model, [layer, LOGITS], grad="leaf") as tap:
        acts = tap(image.to(model.device))
        logits = main_output(acts[LOGITS])
        if logits.dim() != 2:
            raise SynthvizError(f"{model.name}'s output is not class scores; building blocks need a classifier")
        k = int(logits[0].argmax()) if cls is None else cls
        grad, = torch.autograd.grad(logits[0, k], acts[layer])
    act = acts[layer].detach()[0]
    if act.dim() != 3:
        raise SynthvizError(f"layer '{layer}' has no spatial map; pick a conv or token layer")
    return act.float().cpu(), grad[0].float().cpu(), k


def factorize(act: torch.Tensor, groups: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NMF of (C, h, w) activations (clipped at 0): spatial maps (groups, h, w), directions (groups, C)."""
    from ..concepts.nmf import sklearn_nmf

    positive("groups", groups, integer=True)
    c, h, w = act.shape
    if groups > min(c, h * w):
        raise SynthvizError(f"{groups} groups from {h * w} positions x {c} channels; ask for at most {min(c, h * w)}")
    x = act.clamp_min(0).reshape(c, h * w).T.double().numpy()
    maps, directions = sklearn_nmf(x, groups, seed, 500)
    return maps.T.reshape(groups, h, w).numpy(), directions.numpy()


def group_attribution(maps: np.ndarray, directions: np.ndarray, grad: torch.Tensor) -> np.ndarray:
    """(groups,): Σ_p maps[k, p] · (directions[k] · grad[:, p]) for grad (C, h, w)."""
    g = grad.reshape(grad.shape[0], -1).numpy()  # (C, P)
    return np.einsum("kp,kc,cp->k", maps.reshape(len(maps), -1), directions, g)


def unit_pictures(model: Model, layer: str, units: list[int], size: int, steps: int, seed: int = 0) -> torch.Tensor:
    """(U, 3, size, size): one channel feature visualization per unit, batched."""
    from ..objectives import channel
    from ..recipes import visualize

    if not units:
        return torch.empty(0, 3, size, size)
    objective = sum(channel(layer, u, batch=i) for i, u in enumerate(units))
    return visualize(model, objective, batch=len(units), size=size, steps=steps, seed=seed).images


def building_blocks(model: Model, image: torch.Tensor, layer: str, *, groups: int = 6, cls: int | None = None,
                    size: int = 64, steps: int = 64, top: int = 3, dictionary_units: int = 24, seed: int = 0) -> dict:
    """Everything the view shows, for ``image`` (1, 3, H, W) in [0, 1]: ``class``, ``maps`` (groups, h, w),
    ``directions`` (groups, C), ``attribution`` (groups,), ``icons`` (groups, 3, size, size),
    ``top_units`` (h, w, top), ``unit_pictures`` {unit: (3, size, size)} for the ``dictionary_units``
    units most often on top (the others listed without a picture)."""
    from .atlas import render_icons

    act, grad, k = activations_and_gradient(model, image, layer, cls)
    maps, directions = factorize(act, groups, seed)
    attribution = group_attribution(maps, directions, grad)
    icons = render_icons(model, layer, directions, size=size, steps=steps, batch=groups, seed=seed)
    top_units = act.permute(1, 2, 0).topk(min(top, act.shape[0]), dim=-1).indices.numpy()
    counts = np.bincount(top_units.reshape(-1), minlength=act.shape[0])
    shown = [int(u) for u in np.argsort(-counts, kind="stable")[:dictionary_units] if counts[u] > 0]
    pictures = unit_pictures(model, layer, shown, size, steps, seed)
    return {"class": k, "maps": maps, "directions": directions, "attribution": attribution, "icons": icons,
            "top_units": top_units, "unit_pictures": dict(zip(shown, pictures)), "activation": act}


def panels(photo: torch.Tensor, found: dict, class_name: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The figure's pieces: each group's map over the photo (groups, 3, H, W), its icon resized to
    the photo (groups, 3, H, W), and captions (group, attribution)."""
    from ..io import resize
    from ..overlay import overlay

    h, w = photo.shape[-2:]
    maps = torch.nn.functional.interpolate(torch.from_numpy(found["maps"])[:, None], size=(h, w), mode="bilinear",
                                           align_corners=False)
    over = overlay(photo.expand(len(maps), -1, -1, -1), maps, display="positive")
    icons = resize(found["icons"], (h, w))
    captions = [f"group {i}: {a:+.3g} to {class_name}" for i, a in enumerate(found["attribution"].tolist())]
    return over, icons, captions


def blocks_page(photo: torch.Tensor, found: dict, layer: str, class_name: str, overlays: torch.Tensor,
                captions: list[str]) -> str:
    """One self-contained HTML page (images embedded): the groups (icon, map, attribution) and the
    semantic dictionary (each position's top units; hover a cell for the list)."""
    from ..html import escape, img, page
    from ..io import encode_image

    groups = "".join(f'<figure>{img(encode_image(icon), "group icon", 128, 128)}'
                     f'{img(encode_image(over), "where", 128, 128)}<figcaption>{escape(cap)}</figcaption></figure>'
                     for icon, over, cap in zip(found["icons"], overlays, captions))
    pics = {u: encode_image(p) for u, p in found["unit_pictures"].items()}
    h, w = found["top_units"].shape[:2]
    cells = []
    for y in range(h):
        for x in range(w):
            units = found["top_units"][y, x].tolist()
            shown = next((u for u in units if u in pics), None)
            inner = img(pics[shown], f"unit {shown}", 48, 48) if shown is not None else ""
            cells.append(f'<div class="pos" title="{escape(f"position {x},{y}: units " + ", ".join(map(str, units)))}">'
                         f'{inner}<span>{escape(units[0])}</span></div>')
    css = (".dict{display:grid;gap:2px;width:max-content}.pos{width:52px;height:64px;font-size:10px;text-align:center;"
           "background:#fff;border:1px solid #ddd}.pos img{display:block;margin:1px auto}")
    body = [f"<h1>Building blocks: {escape(class_name)}</h1>",
            f'<p class="meta">layer {escape(layer)} · {len(captions)} neuron groups (NMF) · attribution: '
            "gradient × activation of each group's part</p>",
            f'<div class="grid">{img(encode_image(photo[0]), "photo", 192, 192)}</div>',
            f'<h2>Neuron groups</h2><div class="grid">{groups}</div>',
            f"<h2>Semantic dictionary</h2><p>the strongest unit at each position ({h}×{w}; hover for the top units)</p>",
            f'<div class="dict" style="grid-template-columns:repeat({w},52px)">{"".join(cells)}</div>']
    return page(f"building blocks of {class_name}", body, css)
