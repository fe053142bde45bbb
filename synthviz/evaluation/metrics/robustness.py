"""Robustness: does the map stay put when the input barely changes? (Quantus 0.6's robustness family.)

These metrics explain perturbed copies again with ``explain`` (a method name, run through
synthviz's batched attribution, or ``fn(model, images, classes) -> maps``); every copy of every
image goes through it together, ``batch_size`` at a time. Noise is drawn from a seeded generator
(``seed``), so scores equal Quantus's within the spread of its random draws.

``return_nan_when_prediction_changes`` gives NaN for an image when any perturbation changes its
predicted class, as in Quantus (its ``np.max`` over samples); Quantus 0.6's ``Continuity`` fails with
that option on numpy 2 (``np.NaN``), here it works. ``continuity`` at a zero translation divides by
1e-9, so a method whose map on the same image differs in the last bits between two calls gets a
huge score (Quantus too): pick ``nr_steps`` so that no step is zero. ``consistency`` is the share
of alike maps with alike predictions (Dasgupta et al. 2022): higher is better, though Quantus 0.6
declares it lower-is-better.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...checks import choice
from ...errors import BadValue
from ...layers import Tap
from ._common import outputs, prepared
from .registry import MetricData, register_metric

NORMS: dict[str, Callable] = {"fro": lambda v: v.norm(dim=1), "l2": lambda v: v.norm(dim=1),
                              "linf": lambda v: v.abs().amax(1)}


def _norm(norm) -> Callable:
    return norm if callable(norm) else NORMS[choice("norm", norm, NORMS)]


def second_moment(maps: torch.Tensor) -> torch.Tensor:
    """Quantus's ``normalise_by_average_second_moment_estimate`` per map: a / sqrt(mean(a²))."""
    a = maps.double()
    rms = a.flatten(1).pow(2).mean(1).sqrt().view(-1, *([1] * (a.dim() - 1)))
    return torch.where(rms > 0, a / torch.where(rms > 0, rms, torch.ones_like(rms)), a).float()


def explained(data: MetricData, x: torch.Tensor, rows: torch.Tensor, batch_size: int, model=None,
              classes: torch.Tensor | None = None) -> torch.Tensor:
    """Maps (N, 1 or C, H, W) of copies (N, C, H, W) of the images ``rows`` (N,), each for its
    image's class (or ``classes``), by ``model`` (default the data's)."""
    classes = data.classes if classes is None else classes
    if classes is None:
        raise BadValue("this metric explains again for a class: give class targets (indices or names)")
    model = data.model if model is None else model
    out = []
    for s in range(0, len(x), batch_size):
        m = data.explain(model, x[s:s + batch_size], classes[rows[s:s + batch_size]])
        out.append(m if m.dim() == 4 else m[:, None])
    return torch.cat(out)


def _sampled(data: MetricData, nr_samples: int, noise: Callable, abs: bool, normalise, batch_size: int,
             measure: Callable, check_change: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``nr_samples`` noisy copies per image through ``explain``: ((B, S) values of
    ``measure(x, x', a, a', rows)``, (B, S) True where the copy's predicted class differs; all
    False without ``check_change``, which spares the forward passes of the copies)."""
    x = data.images
    b = len(x)
    base = outputs(data.model, x, False, batch_size).argmax(1) if check_change else None
    per = max(1, batch_size // b)
    values, changed = [], []
    for s in range(0, nr_samples, per):
        n = min(nr_samples, s + per) - s
        rows = torch.arange(b).repeat(n)  # sample-major: copies of the whole batch
        xp = noise(x.repeat(n, 1, 1, 1))
        ap = explained(data, xp, rows, batch_size)
        ap = normalise(ap) if callable(normalise) else prepared(ap, False, normalise)
        ap = ap.abs() if abs else ap
        values.append(measure(x[rows], xp, rows, ap).view(n, b).T)
        changed.append((outputs(data.model, xp, False, batch_size).argmax(1) != base[rows]).view(n, b).T
                       if check_change else torch.zeros(b, n, dtype=torch.bool))
    return torch.cat(values, 1).double(), torch.cat(changed, 1)


def _reduce(values: torch.Tensor, changed: torch.Tensor, nan_on_change: bool, how: str) -> torch.Tensor:
    """Max or mean over samples; with ``nan_on_change`` an image with any changed prediction is NaN."""
    if nan_on_change:
        values = torch.where(changed, torch.full_like(values, float("nan")), values)
    return values.amax(1) if how == "max" else values.mean(1)


def _uniform(lower_bound: float, upper_bound: float | None, gen: torch.Generator) -> Callable:
    """Quantus's ``uniform_noise``: U(−lower, lower) without ``upper_bound``, else U(lower, upper), added."""
    lo, hi = (-lower_bound, lower_bound) if upper_bound is None else (lower_bound, upper_bound)
    return lambda x: x + lo + (hi - lo) * torch.rand(x.shape, generator=gen)


def _sensitivity(data, how, nr_samples, lower_bound, upper_bound, abs, normalise, norm_numerator,
                 norm_denominator, return_nan_when_prediction_changes, seed, batch_size) -> torch.Tensor:
    a = prepared(data.maps, abs, normalise)
    flat = a.flatten(1).double()
    num, den = _norm(norm_numerator), _norm(norm_denominator)
    noise = _uniform(lower_bound, upper_bound, torch.Generator().manual_seed(seed))
    values, changed = _sampled(data, nr_samples, noise, abs, normalise, batch_size,
                               lambda x, xp, rows, ap: num(flat[rows] - ap.flatten(1).double()) / den(flat[rows]),
                               return_nan_when_prediction_changes)
    return _reduce(values, changed, return_nan_when_prediction_changes, how)


@register_metric("max_sensitivity", family="robustness", higher_is_better=False, needs=("model", "explain"),
                 stochastic=True, quantus="MaxSensitivity")
def max_sensitivity(data: MetricData, nr_samples: int = 200, lower_bound: float = 0.2,
                    upper_bound: float | None = None, norm_numerator="fro", norm_denominator="fro",
                    abs: bool = False, normalise: bool = False, return_nan_when_prediction_changes: bool = False,
                    seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) max over ``nr_samples`` uniform perturbations of ‖Φ(x) − Φ(x')‖ / ‖Φ(x)‖ (Yeh et al. 2019)."""
    return _sensitivity(data, "max", nr_samples, lower_bound, upper_bound, abs, normalise, norm_numerator,
                        norm_denominator, return_nan_when_prediction_changes, seed, batch_size)


@register_metric("avg_sensitivity", family="robustness", higher_is_better=False, needs=("model", "explain"),
                 stochastic=True, quantus="AvgSensitivity")
def avg_sensitivity(data: MetricData, nr_samples: int = 200, lower_bound: float = 0.2,
                    upper_bound: float | None = None, norm_numerator="fro", norm_denominator="fro",
                    abs: bool = False, normalise: bool = False, return_nan_when_prediction_changes: bool = False,
                    seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) mean over ``nr_samples`` uniform perturbations of ‖Φ(x) − Φ(x')‖ / ‖Φ(x)‖ (Yeh et al. 2019)."""
    return _sensitivity(data, "mean", nr_samples, lower_bound, upper_bound, abs, normalise, norm_numerator,
                        norm_denominator, return_nan_when_prediction_changes, seed, batch_size)


@register_metric("local_lipschitz_estimate", family="robustness", higher_is_better=False,
                 needs=("model", "explain"), stochastic=True, quantus="LocalLipschitzEstimate")
def local_lipschitz_estimate(data: MetricData, nr_samples: int = 200, perturb_mean: float = 0.0,
                             perturb_std: float = 0.1, abs: bool = False, normalise: bool = True,
                             return_nan_when_prediction_changes: bool = False, seed: int = 0,
                             batch_size: int = 64) -> torch.Tensor:
    """(B,) max over ``nr_samples`` Gaussian perturbations of ‖Φ(x) − Φ(x')‖₂ / (‖x − x'‖₂ + 1e-10)
    (Alvarez-Melis & Jaakkola 2018)."""
    flat = prepared(data.maps, abs, normalise).flatten(1).double()
    gen = torch.Generator().manual_seed(seed)
    noise = lambda x: x + perturb_mean + perturb_std * torch.randn(x.shape, generator=gen)  # noqa: E731

    def lipschitz(x, xp, rows, ap):
        return (flat[rows] - ap.flatten(1).double()).norm(dim=1) / ((x - xp).flatten(1).double().norm(dim=1) + 1e-10)

    values, changed = _sampled(data, nr_samples, noise, abs, normalise, batch_size, lipschitz,
                               return_nan_when_prediction_changes)
    return _reduce(values, changed, return_nan_when_prediction_changes, "max")


def translated(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Images (B, C, H, W) moved ``shift`` pixels right (left if negative), the uncovered columns
    filled with each image's minimum (Quantus's ``batched_translation`` with ``"black"``)."""
    w = x.shape[-1]
    out = x.amin((1, 2, 3), keepdim=True).expand_as(x).clone()
    k = min(abs(shift), w)
    if shift >= 0:
        out[..., k:] = x[..., :w - k]
    else:
        out[..., :w - k] = x[..., k:]
    return out


@register_metric("continuity", family="robustness", higher_is_better=False, needs=("model", "explain"),
                 quantus="Continuity")
def continuity(data: MetricData, nr_steps: int = 28, abs: bool = True, normalise: bool = True,
               return_nan_when_prediction_changes: bool = False, softmax: bool = False,
               batch_size: int = 64) -> torch.Tensor:
    """(B,) max over ``nr_steps`` horizontal translations of ‖Φ(x) − Φ(x')‖₁ / (‖x − x'‖₂ + 1e-9)
    (Montavon et al. 2018); shifts from −W + d in steps of d = (2W + 1) // ``nr_steps``."""
    x = data.images
    b, w = len(x), x.shape[-1]
    d = (2 * w + 1) // int(nr_steps)
    shifts = [-w + d * (k + 1) for k in range(int(nr_steps))]
    a = explained(data, x, torch.arange(b), batch_size)
    a = prepared(a, abs, normalise).flatten(1).double()
    copies = torch.cat([translated(x, s) for s in shifts])  # shift-major
    rows = torch.arange(b).repeat(len(shifts))
    ap = prepared(explained(data, copies, rows, batch_size), abs, normalise).flatten(1).double()
    value = (a[rows] - ap).abs().sum(1) / ((x[rows] - copies).flatten(1).double().norm(dim=1) + 1e-9)
    value = value.view(len(shifts), b).T
    if return_nan_when_prediction_changes:
        pred = outputs(data.model, copies, softmax, batch_size).argmax(1).view(len(shifts), b).T
        value = torch.where(pred != data.classes[:, None], torch.full_like(value, float("nan")), value)
    return value.amax(1)


def _relative(x: torch.Tensor, xp: torch.Tensor, eps: float) -> torch.Tensor:
    """‖(x − x') / x‖ per row of (N, ...) (zeros of x replaced by ``eps``), in the inputs' precision
    (float32, as Quantus's numpy), the norm summed in float64."""
    x, xp = x.flatten(1), xp.flatten(1)
    ratio = (x - xp) / torch.where(x == 0, torch.full_like(x, eps), x)
    return torch.linalg.vector_norm(ratio, dim=1, dtype=torch.float64)


def _stability(data: MetricData, nr_samples: int, lower_bound: float, upper_bound: float, abs: bool,
               normalise: bool, eps_min: float, nan_on_change: bool, seed: int, batch_size: int,
               denominator: Callable) -> torch.Tensor:
    """max over samples of ‖(Φ(x) − Φ(x')) / Φ(x)‖ / denominator(x, x', rows), Agarwal et al.'s
    relative stabilities; maps ``normalise``d by their second moment (Quantus's default there)."""
    a = data.maps if not normalise else second_moment(data.maps)
    a = a.abs() if abs else a
    noise = _uniform(lower_bound, upper_bound, torch.Generator().manual_seed(seed))

    def measure(x, xp, rows, ap):
        den = denominator(x, xp, rows)
        return _relative(a[rows], ap, eps_min) / (den + (den == 0) * eps_min)

    values, changed = _sampled(data, nr_samples, noise, abs, second_moment if normalise else False, batch_size,
                               measure, nan_on_change)
    return _reduce(values, changed, nan_on_change, "max")


@register_metric("relative_input_stability", family="robustness", higher_is_better=False,
                 needs=("model", "explain"), stochastic=True, quantus="RelativeInputStability")
def relative_input_stability(data: MetricData, nr_samples: int = 200, lower_bound: float = 0.02,
                             upper_bound: float = 0.2, abs: bool = False, normalise: bool = False,
                             eps_min: float = 1e-6, return_nan_when_prediction_changes: bool = True,
                             seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) max over ``nr_samples`` perturbations x' = x + U(lower, upper) of the relative change of
    the map over the relative change of the input, ‖(x − x') / x‖ (Agarwal et al. 2022)."""
    return _stability(data, nr_samples, lower_bound, upper_bound, abs, normalise, eps_min,
                      return_nan_when_prediction_changes, seed, batch_size,
                      lambda x, xp, rows: _relative(x, xp, eps_min))


@register_metric("relative_output_stability", family="robustness", higher_is_better=False,
                 needs=("model", "explain"), stochastic=True, quantus="RelativeOutputStability")
def relative_output_stability(data: MetricData, nr_samples: int = 200, lower_bound: float = 0.02,
                              upper_bound: float = 0.2, abs: bool = False, normalise: bool = False,
                              eps_min: float = 1e-6, return_nan_when_prediction_changes: bool = True,
                              seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(B,) as :func:`relative_input_stability`, over the change of the logits ‖h(x) − h(x')‖₂."""
    logits = outputs(data.model, data.images, False, batch_size).double()
    return _stability(data, nr_samples, lower_bound, upper_bound, abs, normalise, eps_min,
                      return_nan_when_prediction_changes, seed, batch_size,
                      lambda x, xp, rows: (logits[rows] - outputs(data.model, xp, False, batch_size).double()
                                           ).norm(dim=1))


def hidden_layers(model, layer_names=None, layer_indices=None) -> list[str]:
    """Quantus's internal representation: every module but the network's own class and
    ``Sequential`` containers, or those named, or those at ``layer_indices`` in that list.
    ``ModuleList``/``ModuleDict`` containers are never called (Quantus's hooks on them never fire):
    left out."""
    if layer_names is not None and layer_indices is not None:
        raise BadValue("give layer_names or layer_indices, not both")
    net = model.net
    containers = (type(net), torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)
    layers = [n for n, m in net.named_modules() if not isinstance(m, containers)]
    if layer_names is not None:
        return [n for n in layers if n in set(layer_names)]
    if layer_indices is not None:
        return [layers[i] for i in layer_indices]
    return layers


def representations(tap: Tap, x: torch.Tensor, layers: list[str]) -> list[torch.Tensor]:
    """Each named layer's output on ``x`` (N, C, H, W) through an open ``tap``, flattened: [(N, D_l)]."""
    acts = tap(x.to(tap.model.device))
    return [acts[n].flatten(1).float().cpu() for n in layers]


def _relative_representation(model, rep: list[torch.Tensor], xp: torch.Tensor, rows: torch.Tensor,
                             layers: list[str], eps: float) -> torch.Tensor:
    """:func:`_relative` of the joined representations of the images (``rep``, per layer (B, D_l))
    and of their copies ``xp`` (N, C, H, W) (of images ``rows``): the squared norms summed layer by
    layer, a few copies at a time (every layer's output is millions of values an image)."""
    step = max(1, 2 ** 25 // sum(r.shape[1] for r in rep))
    out = []
    with torch.no_grad(), Tap(model, layers, truncate=False, spatial=False) as tap:
        for s in range(0, len(xp), step):
            sq = sum(_relative(r[rows[s:s + step]], c, eps) ** 2
                     for r, c in zip(rep, representations(tap, xp[s:s + step], layers)))
            out.append(sq.sqrt())
    return torch.cat(out)


@register_metric("relative_representation_stability", family="robustness", higher_is_better=False,
                 needs=("model", "explain"), stochastic=True, quantus="RelativeRepresentationStability")
def relative_representation_stability(data: MetricData, nr_samples: int = 200, lower_bound: float = 0.02,
                                      upper_bound: float = 0.2, layer_names=None, layer_indices=None,
                                      abs: bool = False, normalise: bool = False, eps_min: float = 1e-6,
                                      return_nan_when_prediction_changes: bool = True, seed: int = 0,
                                      batch_size: int = 64) -> torch.Tensor:
    """(B,) as :func:`relative_input_stability`, over the relative change of the internal
    representation ‖(L(x) − L(x')) / L(x)‖ (``layer_names``/``layer_indices``; default every layer)."""
    layers = hidden_layers(data.model, layer_names, layer_indices)
    with torch.no_grad(), Tap(data.model, layers, truncate=False, spatial=False) as tap:
        rep = [torch.cat(parts) for parts in zip(*(representations(tap, data.images[s:s + batch_size], layers)
                                                  for s in range(0, len(data.images), batch_size)))]
    return _stability(data, nr_samples, lower_bound, upper_bound, abs, normalise, eps_min,
                      return_nan_when_prediction_changes, seed, batch_size,
                      lambda x, xp, rows: _relative_representation(data.model, rep, xp, rows, layers, eps_min))


DISCRETISE = {"top_n_sign": lambda a, n: torch.sign(a)[:, :n], "sign": lambda a, n: torch.sign(a),
              "rank": lambda a, n: a.argsort(1, descending=True), "floating_points": lambda a, n: a.round(decimals=n)}


@register_metric("consistency", family="robustness", higher_is_better=True, needs=("model",), quantus="Consistency")
def consistency(data: MetricData, discretise_func: str = "top_n_sign", n: int | None = None, abs: bool = True,
                normalise: bool = True, softmax: bool = True, batch_size: int = 64) -> torch.Tensor:
    """(B,) among the other images of the batch whose maps discretise alike (``discretise_func``:
    the signs of the first ``n`` = 5 values, all signs, the ranking, or the values rounded to
    ``n`` = 2 decimals), the share predicted as the same class (Dasgupta et al. 2022). A
    batch-level metric: ``normalise`` divides the batch by its largest |value|, as Quantus does."""
    fn = DISCRETISE[choice("discretise_func", discretise_func, DISCRETISE)]
    n = n if n is not None else (2 if discretise_func == "floating_points" else 5)
    a = data.maps.reshape(len(data.maps), -1).float()
    if normalise and bool((a != 0).any()):
        a = a / a.abs().max()
    labels = fn(a.abs() if abs else a, n)
    b = len(a)
    same_map = (labels[:, None] == labels[None]).all(-1) & ~torch.eye(b, dtype=torch.bool)
    pred = outputs(data.model, data.images, softmax, batch_size).argmax(1)
    same = (pred[None] == pred[:, None]) & same_map
    return same.sum(1).double() / (same_map.sum(1).double() + 1e-9)
