"""Known answers for the dictionary methods: images with planted patterns (stripes, a red disk, a
checkerboard on noise), the embedded model's `_blocks.5` at 128 px. Each method must find each
pattern as a concept whose top-10 images are at least 9/10 that pattern (the labels of the
generator are the independent answer). Activations are computed once for the module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthviz.concepts import Dictionary, get_method
from synthviz.concepts.nmf import fit_nmf, nnls_codes
from synthviz.concepts.train import train_sae
from synthviz.evaluation.planted import PATTERNS, planted_images
from synthviz.layers import capture

PER_PATTERN, SIZE, LAYER = 20, 128, "_blocks.5"


@pytest.fixture(scope="module")
def planted(embedded):
    images, labels, _ = planted_images(PER_PATTERN, SIZE)
    with torch.no_grad():
        act = capture(embedded, images, [LAYER])[LAYER]  # (80, 80, 8, 8)
    x = act.permute(0, 2, 3, 1).reshape(-1, act.shape[1]).contiguous()  # every position a sample
    return x, labels.numpy(), act.shape[2] * act.shape[3]


def recovered(codes: torch.Tensor, labels: np.ndarray, per_image: int, top: int = 10) -> dict[str, int]:
    """Per planted pattern, the most top-``top`` images of it any one concept has (value per image:
    the concept's largest coefficient over the image's positions)."""
    best = codes.reshape(len(labels), per_image, -1).amax(1).numpy()
    found = {}
    for k in range(best.shape[1]):
        if best[:, k].max() <= 0:
            continue
        counts = np.bincount(labels[np.argsort(-best[:, k], kind="stable")[:top]], minlength=len(PATTERNS))
        name = PATTERNS[int(counts.argmax())]
        found[name] = max(found.get(name, 0), int(counts.max()))
    return found


def assert_recovers(found: dict[str, int]) -> None:
    for pattern in ("stripes", "red disk", "checkerboard"):
        assert found.get(pattern, 0) >= 9, found


def test_nmf_recovers_each_planted_pattern(planted):
    x, labels, per_image = planted
    assert float(x.min()) < 0  # `_blocks.5` is a linear bottleneck: the method must take the semi-NMF path
    atoms, facts = fit_nmf(x, 8)
    assert facts["semi"] and atoms.shape == (8, x.shape[1])
    codes = nnls_codes(x, atoms)
    assert (codes >= 0).all()
    assert_recovers(recovered(codes, labels, per_image))


@pytest.mark.parametrize("method", ["sae", "topk", "batchtopk", "jumprelu", "archetypal"])
def test_every_sae_recovers_each_planted_pattern(planted, method):
    x, labels, per_image = planted
    data = x.numpy()
    net, scale, facts = train_sae(get_method(method), data, np.arange(len(data)), 16, 4, epochs=6,
                                  batch_size=256, lr=3e-3, progress=False)
    with torch.no_grad():
        _, codes = net.encode(x / scale)
    if method in ("topk", "archetypal"):
        assert int((codes > 0).sum(1).max()) <= 4  # k codes at most, per position
    assert_recovers(recovered(codes, labels, per_image))


def test_sae_training_resumes_to_the_same_weights(planted, tmp_path):
    x, _, _ = planted
    data, rows = x[:2048].numpy(), np.arange(2048)
    whole, _, _ = train_sae(get_method("topk"), data, rows, 8, 2, epochs=2, batch_size=256, progress=False)

    def stop(step):
        if step == 5:
            raise KeyboardInterrupt

    ckpt = tmp_path / "train.pt"
    with pytest.raises(KeyboardInterrupt):
        train_sae(get_method("topk"), data, rows, 8, 2, epochs=2, batch_size=256, progress=False,
                  checkpoint=ckpt, on_step=stop)
    assert torch.load(ckpt, weights_only=True)["done"] == 5
    resumed, _, _ = train_sae(get_method("topk"), data, rows, 8, 2, epochs=2, batch_size=256, progress=False,
                              checkpoint=ckpt)
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=1e-6)


def test_dictionary_round_trips_weights_only(planted, tmp_path):
    x, _, _ = planted
    data = x[:1024].numpy()
    net, scale, facts = train_sae(get_method("jumprelu"), data, np.arange(1024), 8, None, epochs=1, progress=False)
    d = Dictionary("jumprelu", LAYER, "efficientnet_lite0", net.dictionary().detach(), net.bias.detach(), scale,
                   net.state_dict(), facts)
    d.save(tmp_path / "dictionary.pt")
    raw = torch.load(tmp_path / "dictionary.pt", weights_only=True)
    assert raw["method"] == "jumprelu" and raw["dictionary"].shape == (8, x.shape[1])
    back = Dictionary.load(tmp_path / "dictionary.pt")
    with torch.no_grad():
        expected = net.encode(x[:64] / scale)[1]
    torch.testing.assert_close(back.encode(x[:64]), expected)
