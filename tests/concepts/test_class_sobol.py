"""importance.csv of a concepts run follows the issue's rule: CRAFT's total Sobol indices for an NMF
(estimated per class on at most `sobol_images` images predicted as the class), gradient × coefficient
for an SAE; resumes keep working, old runs included.

Known answer: TinyNet's logits are a linear head on the mean over positions of `relu3`. With the
head's rows for classes 0 and 1 set to the pseudo-inverse columns of the run's dictionary (fitted
here as the run fits it, on the activations it collected before a Ctrl-C; the run resumes), class j's
logit under the Sobol perturbation (U ⊙ m) · W is m_j · mean(u_j) + const: it depends on concept j
alone, so concept j's total index is 1 and every other concept's exactly 0. And the run's value for a
class is the mean of concept-map's Sobol indices (the same `concepts/sobol.py`) over the first
`sobol_images` images the model predicts as the class, computed here independently."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import synthviz
from synthviz.concepts import Dictionary, concept_map, learn, read_importance
from synthviz.concepts.hyper import SAE_DEFAULTS
from synthviz.concepts.learn import fit
from synthviz.dataset.sources import find_images, read_image
from synthviz.errors import BadValue
from synthviz.io import save_image
from synthviz.layers import capture
from tests.tiny import TinyNet


def _data(folder, n: int, seed: int = 0):
    torch.manual_seed(seed)
    for i in range(n):
        save_image(torch.rand(3, 32, 32), folder / f"{i:02d}.png")
    return folder


def test_sobol_importance_ranks_the_concept_a_class_reads_first_and_equals_concept_maps(tmp_path):
    model = synthviz.load_model(TinyNet())
    data = _data(tmp_path / "data", 12)
    out = tmp_path / "run"
    kwargs = dict(model=model, layer="relu3", method="nmf", concepts=3, size=32, batch_size=2, workers=0,
                  progress=False, pages=False, sobol_images=2, keep_activations=True)  # importance: NMF's default

    def stop(done):  # Ctrl-C after the activations (6 batches), then during the Sobol stage, after its first batch
        if (done == 6 and not (out / "dictionary.pt").exists()) or (out / "sobol-share.npy").exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        learn(data, out, on_batch=stop, **kwargs)
    acts = np.load(out / "collect-activations.npy", mmap_mode="r")  # the dictionary the run will fit: the head's
    atoms = fit("nmf", acts, np.arange(len(acts)), 3, 1, batch_size=2, hyper=SAE_DEFAULTS, seed=0, out=out,
                progress=False, checkpoint_every=30)[0]
    paths = find_images(data).paths
    images = torch.stack([read_image(p, 32) for p in paths])
    fc = model.net.fc
    with torch.no_grad():
        pooled = capture(model, images, ["relu3"])["relu3"].mean((2, 3))  # (12, 16): what the head reads
        inverse = torch.linalg.pinv(atoms)  # (16, 3): <atom_k, inverse[:, j]> = δ_kj
        ratio = (pooled @ inverse[:, 0]) / (pooled @ inverse[:, 1])
        fc.weight.zero_()
        fc.bias.fill_(-100.0)
        fc.bias[:2] = 0.0
        fc.weight[0] = inverse[:, 0]
        fc.weight[1] = inverse[:, 1] * ratio.median()  # about half the images predicted as each
        classes = model(images).argmax(1)
    assert set(classes.tolist()) == {0, 1} and min(int((classes == c).sum()) for c in (0, 1)) > 2  # the cap bites

    with pytest.raises(KeyboardInterrupt):
        learn(data, out, on_batch=stop, **kwargs)  # resumed, stopped in the Sobol stage
    assert json.loads((out / "sobol.state.json").read_text())["batches_done"] == 1
    run = learn(data, out, **kwargs)  # resumed again, to the end
    assert torch.equal(Dictionary.load(run / "dictionary.pt").atoms, atoms)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["importance"] == "sobol total index" and metrics["sobol_images"] == 2
    settings = json.loads((run / "manifest.json").read_text())["settings"]
    assert settings["importance"] == "sobol" and settings["sobol_images"] == 2

    importance = read_importance(run)
    chosen = {c: np.flatnonzero(classes.numpy() == c)[:2] for c in (0, 1)}  # the first 2 of each class
    estimated = np.load(run / "sobol-share.npy")
    assert sorted(np.flatnonzero(~np.isnan(estimated[:, 0]))) == sorted(np.concatenate(list(chosen.values())))
    for c in (0, 1):
        values = torch.tensor(importance[model.class_name(c)])
        assert int(values.argmax()) == c  # the concept the class reads ranks first ...
        assert 0.8 < float(values[c]) < 1.2 and float(values[[k for k in range(3) if k != c]].abs().max()) < 1e-4
        maps = [concept_map(run, paths[i], model=model, target=c, importance="sobol")["importance"] for i in chosen[c]]
        torch.testing.assert_close(values, torch.stack(maps).mean(0), rtol=1e-4, atol=1e-5)  # ... as concept-map's


def test_the_default_follows_the_method_and_runs_made_before_it_resume_as_they_were(tmp_path):
    model = synthviz.load_model(TinyNet())
    data = _data(tmp_path / "data", 4)
    common = dict(model=model, layer="relu3", concepts=2, size=32, batch_size=2, workers=0, progress=False,
                  pages=False)

    def stop(done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a run interrupted in its first pass ...
        learn(data, tmp_path / "old", on_batch=stop, **common)
    path = tmp_path / "old" / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest["settings"].pop("importance") == "sobol" and manifest["settings"].pop("sobol_images") == 16
    path.write_text(json.dumps(manifest))  # ... as a run made before the field: gradient × coefficient
    old = learn(data, tmp_path / "old", **common)
    assert json.loads((old / "metrics.json").read_text())["importance"] == "gradient x coefficient"
    sae = learn(data, tmp_path / "sae", method="topk", k=1, epochs=1, **common)
    assert json.loads((sae / "metrics.json").read_text())["importance"] == "gradient x coefficient"
    with pytest.raises(BadValue, match="sobol_images"):
        learn(data, tmp_path / "bad", sobol_images=-1, **common)
    with pytest.raises(BadValue, match="importance"):
        learn(data, tmp_path / "bad", importance="shap", **common)
