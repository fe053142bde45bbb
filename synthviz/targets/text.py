"""Text targets for CLIP-like models: how much an image looks like a prompt."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import BadModel, BadValue
from .core import Target
from .kinds import cosine


def text(model, prompts: str | Sequence[str], versus: str | Sequence[str] | None = None) -> Target:
    """Cosine similarity of the image embedding (the model's output, (B, D)) with the text embedding
    of ``prompts``: one prompt for every image, or one per image (``["a cat", "a dog"]``). The text
    embedding comes from the model's own text tower (``open_clip:ARCH`` models). ``versus``: a
    contrast, cos(image, prompt) − cos(image, versus) (one prompt, or one per image)."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise BadValue("a text target needs a non-empty prompt, like --text 'a photo of a cat'")
    embed = getattr(getattr(model, "net", None), "embed_text", None)
    if embed is None:
        raise BadModel(f"text targets need a CLIP-like model with a text tower, not {getattr(model, 'name', model)}; "
                       "use --model open_clip:ARCH")
    label = " / ".join(f"'{p}'" for p in prompts)
    first = cosine(embed(prompts), f"similarity to {label}")
    if versus is None:
        return first
    other = text(model, versus)
    name = f"{label} versus {other.name.removeprefix('similarity to ')}"
    return Target(lambda out, rows: first.fn(out, rows) - other.fn(out, rows), name, per_image=True)
