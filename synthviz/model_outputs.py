"""Structured model outputs reduced to one tensor: a ``ModelOutput``, a dict or a dataclass read by
field name, a tuple or list by position (:func:`pick_output`), and the wrappers that do it inside a
network while keeping its ``named_modules()`` names (:class:`Adopted`, :class:`OutputField`).
Hugging Face models (:mod:`synthviz.hf_models`) and any user network with such an output use them."""

from __future__ import annotations

import torch
from torch import nn

from .errors import BadValue

# The fields a structured output is reduced to when ``output`` is not given, first present wins.
DEFAULT_OUTPUTS = ("logits", "image_embeds", "pooler_output", "last_hidden_state")

def pick_output(out, output: str | int | None = None) -> torch.Tensor:
    """One tensor of a model's output: a tensor as is; a ``ModelOutput``/dict field named ``output``
    (default: the first of :data:`DEFAULT_OUTPUTS` present); a tuple/list position ``output``."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(output, int) or (isinstance(output, str) and output.lstrip("-").isdigit()):
        seq = out.to_tuple() if hasattr(out, "to_tuple") else out
        if not isinstance(seq, (tuple, list)) or not -len(seq) <= int(output) < len(seq):
            raise BadValue(f"output position {output} does not exist; the output has {len(seq)} elements")
        return seq[int(output)]
    if isinstance(out, dict):
        fields = [k for k, v in out.items() if v is not None]
        name = output if output is not None else next((f for f in DEFAULT_OUTPUTS if f in fields), None)
        if name not in fields:
            raise BadValue(f"the model's output has no field {name!r}; pick one with --output (output=): "
                           f"{', '.join(fields)}")
        return out[name]
    if isinstance(out, (tuple, list)) and output is None:
        return out[0]
    raise BadValue(f"cannot read a tensor from an output of type {type(out).__name__}; pass --output (output=)")


class Adopted(nn.Module):
    """A module that runs another network (kept as the attribute named ``INNER``, outside its
    modules) and adopts that network's children, parameters and buffers as its own, so
    ``named_modules()`` keeps the network's names (``vit.layers.1.layernorm_before``)."""

    INNER = "inner"

    def __init__(self, net: nn.Module):
        super().__init__()
        object.__setattr__(self, self.INNER, net)  # not a submodule: its children are ours
        for name, child in net.named_children():
            self.add_module(name, child)
        for name, p in net.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, b in net.named_buffers(recurse=False):
            self.register_buffer(name, b)

    @property
    def training(self) -> bool:
        """The inner network's own flag (it is not among our modules, yet eval/train and restoring a
        user's mode must reach it)."""
        inner = self.__dict__.get(self.INNER)
        return inner.training if inner is not None else self.__dict__.get("_training", True)

    @training.setter
    def training(self, mode: bool) -> None:
        inner = self.__dict__.get(self.INNER)
        if inner is None:  # nn.Module.__init__, before the network is attached
            self.__dict__["_training"] = mode
        else:
            inner.training = mode


class OutputField(Adopted):
    """Any network whose output is structured (a dict, a dataclass, a tuple) reduced to the field or
    position ``output`` (:func:`pick_output`); its names are the network's."""

    def __init__(self, net: nn.Module, output: str | int):
        super().__init__(net)
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if isinstance(out, torch.Tensor):
            raise BadValue(f"the model's output is one tensor {tuple(out.shape)}, not a structure with fields; "
                           "drop --output (use --output-index for an element)")
        return pick_output(out, self.output)
