"""Grad-CAM on a Hugging Face ViT-B/16 (transformers' ``ViTForImageClassification``, the config of
google/vit-base-patch16-224, random weights: nothing is downloaded): synthviz against
pytorch-grad-cam's Hugging Face recipe (a wrapper returning ``.logits``, a ``reshape_transform``
dropping the class token, the last block's ``layernorm_before``), in the same process on the same
network and images, and the ratio of the two.

    python benchmarks/hf_vit.py [--device cpu] [--threads 2] [--repeat 3] [--batch 1]

Each figure is the best of --repeat calls after one warm-up call; the maps are compared too
(Spearman rank correlation of the two, which should be ≥ 0.99).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

import synthviz
from machine import best_of, machine


class HuggingfaceToTensorModelWrapper(nn.Module):
    """pytorch-grad-cam's Hugging Face tutorial: the model's logits as a tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


def reshape_transform(tensor: torch.Tensor, height: int = 14, width: int = 14) -> torch.Tensor:
    """pytorch-grad-cam's tutorial: drop the class token, tokens to a (B, C, 14, 14) map."""
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def main() -> None:
    import transformers
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = transformers.ViTForImageClassification(transformers.ViTConfig(num_labels=1000)).eval().to(args.device)
    model = synthviz.load_model(net)  # the mean/std of the vit-base processor: 0.5, 0.5
    model.mean.fill_(0.5), model.std.fill_(0.5)
    x = torch.rand(args.batch, 3, 224, 224, device=model.device)
    classes = list(range(args.batch))
    cam = GradCAM(model=HuggingfaceToTensorModelWrapper(net), target_layers=[net.vit.layers[-1].layernorm_before],
                  reshape_transform=reshape_transform)
    theirs = lambda: cam(input_tensor=model.normalize(x), targets=[ClassifierOutputTarget(k) for k in classes])  # noqa: E731
    ours = lambda: synthviz.saliency(model, x, method="gradcam", target=classes)  # noqa: E731
    print(f"HF ViT-B/16 (vit-base-patch16-224 config), random weights, {args.batch} x 224 x 224, on {machine(model.device)}; "
          f"best of {args.repeat}")
    t_theirs = best_of(theirs, args.repeat, warm=True)
    t_ours = best_of(ours, args.repeat, warm=True)
    rho = spearmanr(np.asarray(ours().cpu(), dtype=np.float64).ravel(), np.asarray(theirs(), dtype=np.float64).ravel())
    print(f"  pytorch-grad-cam (Hugging Face recipe) {t_theirs:7.3f} s per call")
    print(f"  synthviz gradcam                       {t_ours:7.3f} s per call")
    print(f"  ratio synthviz / pytorch-grad-cam      {t_ours / t_theirs:7.2f}  (maps: rank correlation {rho.statistic:.4f})")


if __name__ == "__main__":
    main()
