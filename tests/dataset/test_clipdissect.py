"""CLIP-Dissect: soft-WPMI against the authors' formula written out here on a planted answer (images
of concept j look like word j, unit u fires on the images of concept u), and `synthviz label --clip`
with a tiny random OpenCLIP config (no download) on the planted index."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from clihelp import one_line_error
from clihelp import run as cli
from synthviz.dataset.clipdissect import soft_wpmi

open_clip = pytest.importorskip("open_clip")
TINY = "SynthvizTinyCLIPDissect"
CONFIG = {"embed_dim": 16,
          "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
          "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def reference(sims, acts, top_k, a=10.0, lam=1.0, p_start=0.998, p_end=0.97):
    """The authors' soft_wpmi, unit by unit."""
    probs = torch.softmax(a * sims.double(), 1)
    out = []
    for u in range(acts.shape[1]):
        order = np.argsort(-acts[:, u].numpy(), kind="stable")[:top_k]
        p = np.array([p_start - j / top_k * (p_start - p_end) for j in range(top_k)])
        out.append([sum(np.log(1 + p[j] * (float(probs[i, c]) - 1) + 1e-7) for j, i in enumerate(order))
                    for c in range(sims.shape[1])])
    given = torch.tensor(out)
    return given - lam * (torch.logsumexp(given, 0, keepdim=True) - np.log(len(given)))


def test_soft_wpmi_finds_the_planted_words():
    gen = torch.Generator().manual_seed(0)
    concept = torch.arange(4).repeat_interleave(10)  # 40 images, 4 concepts
    sims = 0.2 * torch.rand(40, 4, generator=gen) + 0.3 * torch.nn.functional.one_hot(concept, 4)
    acts = torch.rand(40, 4, generator=gen) + 2.0 * torch.nn.functional.one_hot(concept, 4)
    scores = soft_wpmi(sims, acts, top_k=8)
    assert scores.argmax(1).tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(scores.double(), reference(sims, acts, 8), rtol=1e-5, atol=1e-5)


def test_label_clip_command(planted_run, tmp_path):
    (tmp_path / f"{TINY}.json").write_text(json.dumps(CONFIG))
    open_clip.add_model_config(tmp_path)
    (tmp_path / "words.txt").write_text("stripes\nred disk\ncheckerboard\nnoise\n")
    result = cli("label", planted_run, "--clip", f"open_clip:{TINY}", "--clip-weights", "random", "--words",
                 tmp_path / "words.txt", "--top-k", 8, "--overwrite")
    assert result.exit_code == 0, result.output
    with open(planted_run / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["layer", "unit", "label", "score"] and len(rows) == 80
    assert {r["label"] for r in rows} <= {"stripes", "red disk", "checkerboard", "noise"}
    from synthviz.dataset import write_unit_pages  # the unit page names the label's source

    try:
        write_unit_pages(planted_run, tmp_path / "pages", units=[0], viz_steps=0)
    finally:
        (planted_run / "labels.csv").unlink()
    page = (tmp_path / "pages" / "units" / rows[0]["layer"] / "0.html").read_text()
    assert f"label: <b>{rows[0]['label']}</b> (CLIP-Dissect)" in page
    one_line_error(cli("label", planted_run, "--clip", f"open_clip:{TINY}"), "--clip with --words")
