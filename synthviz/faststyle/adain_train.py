"""Training an AdaIN decoder (Huang & Belongie 2017) on crops of a folder of content photos and
a folder of style images, through the fast-style package's one training loop
(:class:`~synthviz.faststyle.train.Trainer`: Adam, checkpoints, Ctrl-C, resume, sample grids).

Loss (the paper's, with relative errors as everywhere in synthviz): the decoded image's encoder
features against the AdaIN target t, ‖f(g(t)) − t‖² / ‖t‖², plus, at the model's style layers,
the channel means and stds against the style image's, (‖μ − μₛ‖² + ‖σ − σₛ‖²) / (‖μₛ‖² + ‖σₛ‖²),
averaged over the layers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..checks import non_negative, positive
from ..errors import BadValue, SynthvizError
from ..io import make_grid, state_bytes, write_file
from ..layers import Tap, capture
from ..models import Model, load_model
from ..painting import check_layer, style_layers as get_style_layers
from ..result import Result
from .adain import AdaINNet, Decoder, DecoderSpec, adain, channel_stats, default_decoder, encoder_stride
from .train import ContentCrops, Trainer

FORMAT = "synthviz-adain/1"


def default_encoder_layer(model: Model) -> str:
    """The deepest of the model's style layers with a stride of 8 or less (VGG's relu4_1 in the paper)."""
    layers = get_style_layers(model)
    fitting = [n for n in layers if encoder_stride(model, n) <= 3]
    return fitting[-1] if fitting else layers[0]


class AdaINLoss:
    """``terms(output, target, style)`` -> {"content", "style"}, each (B,): output (B, 3, H, W) the
    decoded images, target (B, C, h, w) the AdaIN features they were decoded from, style
    (B, 3, H', W') the style images."""

    def __init__(self, model: Model, layer: str, style_layers: Sequence[str]):
        self.model, self.layer, self.style_layers = model, layer, list(style_layers)
        self.layers = list(dict.fromkeys([*self.style_layers, layer]))

    def style_stats(self, style: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        acts = capture(self.model, style, self.style_layers)
        return {k: channel_stats(v) for k, v in acts.items()}

    def terms(self, output: torch.Tensor, target: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = self.style_stats(style)
        with Tap(self.model, self.layers) as tap:
            acts = tap(output)
        per = lambda v: v.reshape(v.shape[0], -1).pow(2).sum(1)  # noqa: E731 - squared norm per image
        content = per(acts[self.layer] - target) / per(target).clamp_min(1e-8)
        parts = []
        for name in self.style_layers:
            (mu, sd), (mu_s, sd_s) = channel_stats(acts[name]), wanted[name]
            parts.append((per(mu - mu_s) + per(sd - sd_s)) / (per(mu_s) + per(sd_s)).clamp_min(1e-8))
        return {"content": content, "style": torch.stack(parts).mean(0)}


def save_adain(path: str | os.PathLike, net: AdaINNet, *, step: int = 0, optimizer=None, config: dict | None = None,
               overwrite: bool = True) -> Path:
    """Write the decoder and what rebuilds the encoder (model name, layer) atomically; plain tensors
    only (``torch.load(weights_only=True)``)."""
    data = {"format": FORMAT, "model": net.model.name, "layer": net.layer, "decoder": net.decoder.spec.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in net.decoder.state_dict().items()}, "step": int(step),
            "config": dict(config or {})}
    if optimizer is not None:
        data["optimizer"] = optimizer.state_dict()
    return write_file(path, state_bytes(data), overwrite=overwrite)


def read_adain(path: str | os.PathLike) -> dict:
    """An AdaIN checkpoint's dict (``weights_only=True``); one line naming the fix otherwise."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SynthvizError(f"cannot read {path} as an AdaIN network ({type(e).__name__}); "
                            "pass a .pt file written by `synthviz adain-train`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SynthvizError(f"{path} is not an AdaIN network; pass a .pt file written by `synthviz adain-train`")
    return data


def is_adain(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an AdaIN checkpoint (not a style network)."""
    try:
        return read_adain(path) is not None
    except SynthvizError:
        return False


def load_adain(path: str | os.PathLike, model=None, device=None) -> AdaINNet:
    """The AdaIN network of a checkpoint (eval mode); ``model``: the encoder's model (default: the one named in it)."""
    data = read_adain(path)
    m = load_model(model or data["model"], device=device)
    try:
        decoder = Decoder(DecoderSpec.from_dict(data["decoder"]))
        decoder.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise SynthvizError(f"{path} is damaged: its AdaIN decoder cannot be rebuilt ({type(e).__name__}); "
                            "train it again with `synthviz adain-train`") from None
    return AdaINNet(m, check_layer(m, data["layer"]), decoder.to(m.device)).eval()


def _network(m: Model, layer: str, out: Path, resume: bool, lr: float) -> tuple[AdaINNet, torch.optim.Optimizer, int]:
    if resume:
        data = read_adain(out)
        net = load_adain(out, m)
        if net.layer != layer:
            raise SynthvizError(f"{out} decodes {net.layer}, not {layer}; pass the same --layer to resume")
    else:
        net = AdaINNet(m, layer, Decoder(default_decoder(m, layer)).to(m.device))
    opt = torch.optim.Adam(net.decoder.parameters(), lr=lr)
    start = int(data.get("step", 0)) if resume else 0
    if start:
        opt.load_state_dict(data["optimizer"])
    return net, opt, start


def _samples(net: AdaINNet, contents: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """A grid: a header row of the styles, then each content and its stylisation in every style. (3, H, W)."""
    with torch.no_grad():
        rows = [torch.cat([torch.zeros_like(styles[:1]), styles])]
        for c in contents:
            outs = [net(c[None], [s[None]]).cpu() for s in styles]
            rows.append(torch.cat([c[None].cpu(), *outs]))
    return make_grid(torch.cat(rows), ncol=len(styles) + 1)


def train_adain(model="efficientnet_lite0", content: str | os.PathLike = "", styles: str | os.PathLike = "", *,
                out: str | os.PathLike = "adain.pt", steps: int = 400, size: int = 128, batch_size: int = 4,
                lr: float = 1e-3, content_weight: float = 1.0, style_weight: float = 3.0, layer: str | None = None,
                checkpoint_every: int = 100, sample_every: int = 100, resume: bool = False, overwrite: bool = False,
                weights: str = "default", seed: int = 0, device: str | None = None, progress: bool = False) -> Result:
    """Train an AdaIN decoder for ``model``'s features at ``layer`` (default :func:`default_encoder_layer`)
    on random crops of the photos in ``content`` and the images in ``styles`` (two folders).

    Returns a :class:`Result` (figure: the sample grid) whose ``info`` has ``seconds``, ``steps``,
    the mean loss terms of the first and last 10% of the steps (``first``, ``last``) and ``path``."""
    for name, value in (("steps", steps), ("size", size), ("batch_size", batch_size)):
        positive(name, value, integer=True)
    positive("lr", lr)
    for name, value in (("content_weight", content_weight), ("style_weight", style_weight),
                        ("checkpoint_every", checkpoint_every), ("sample_every", sample_every)):
        non_negative(name, value, integer=name.endswith("_every"))
    out = Path(out)
    if out.exists() and not (resume or overwrite):
        raise SynthvizError(f"{out} exists; pass --resume to continue training it or --overwrite to start again")
    if resume and not out.is_file():
        raise BadValue(f"--resume: no checkpoint to continue at {out}; pass the checkpoint's path with --out, "
                       "or leave out --resume to start a new network there")
    m = load_model(model, weights, device)
    layer = check_layer(m, layer) if layer else default_encoder_layer(m)
    crops, style_crops = ContentCrops(content, size, seed), ContentCrops(styles, size, seed + 1)
    config = {"size": size, "batch_size": batch_size, "lr": lr, "content_weight": content_weight,
              "style_weight": style_weight, "layer": layer}
    torch.manual_seed(seed)
    with m.evaluating():
        net, opt, start = _network(m, layer, out, resume, lr)
        crops.rng.seed(seed + start)
        style_crops.rng.seed(seed + 1 + start)
        fixed = (crops.fixed(2), style_crops.fixed(3))
        loss = AdaINLoss(m, layer, get_style_layers(m))

        def terms(step: int) -> dict[str, torch.Tensor]:
            x, s = crops.batch(batch_size).to(m.device), style_crops.batch(batch_size).to(m.device)
            with torch.no_grad():
                target = adain(net.encode(x), net.encode(s))
            return loss.terms(net.decoder(target, x.shape[-2:]), target, s)

        trainer = Trainer(net.decoder, opt, terms, {"content": content_weight, "style": style_weight}, out,
                          save=lambda t: save_adain(t.out, net, step=t.done, optimizer=t.opt, config=config),
                          samples=lambda _: _samples(net, *fixed), start=start)
        t0 = time.perf_counter()
        trainer.fit(steps, progress, "adain-train", checkpoint_every, sample_every)
        seconds = time.perf_counter() - t0
        grid = _samples(net.eval(), *fixed)
    info = {**trainer.summary(seconds), "model": m.name, "layer": layer, "device": str(m.device), **config,
            "report": f"trained an AdaIN decoder ({layer} of {m.name}) for {trainer.done - start} steps at {size} px "
                      f"in {seconds:.0f} s on {m.device}"}
    return Result(images=grid[None], figure=grid, info=info, labels=[], steps=trainer.done, objective="AdaIN loss",
                  technique="adain_train")
