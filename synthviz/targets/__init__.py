"""Targets: which scalar of a model's output to explain or to maximise.

A target is a :class:`Target`: a function of the model's output to one value per image,
``output -> (B,)``. The same targets drive saliency (``synthviz.saliency(model, x, target=...)``),
evaluation and synthesis (``objectives.target(...)``, ``synthviz.classviz(model, target)``)::

    from synthviz import targets as T
    T.class_index(285)                   # logit 285 (also a name: T.class_index(model.class_index("tabby")))
    T.predicted()                        # the predicted class, read from the first output it sees
    T.classes([1, 5, 9])                 # multi-label: the sum of the chosen logits
    T.output_index(0)                    # a regression output (the flattened output's element 0)
    T.similar_to(model, "photo.png")     # cosine similarity of the embedding to the photo's embedding
    T.in_mask(3, mask)                   # segmentation: class 3's scores summed inside mask (H, W)
    T.text(model, "a photo of a cat")    # CLIP: cosine similarity with the prompt's text embedding
    T.text(model, "a cat", versus="a dog")   # CLIP: cos(image, "a cat") - cos(image, "a dog")
    T.box((10, 10, 100, 100), 1)         # detection: IoU + score of the class-1 detection on the box
    T.segment(model, image, 15)          # segmentation: class 15's logits where it is predicted
    T.Target(lambda out: out[:, 2] - out[:, 7], "2 - 7")   # anything differentiable

Every other spelling (an int, a class name, a list or a tensor of them, one per image, None for
the prediction, a plain callable) becomes a :class:`Target` in one place, :func:`as_target`.

A :class:`Target` is batched like the tensor of class indices it generalises: ``t[idx]`` and
``t.repeat(k)`` follow images through expanded batches (SmoothGrad copies, IG paths), so a
per-image class, reference or mask stays with its image.
"""

from .convert import as_target, from_options
from .core import Target, class_index, main_output, predicted
from .kinds import classes, cosine, in_mask, output_index, similar_to
from .detection import box, detection_target, detections, segment
from .text import text

__all__ = ["Target", "as_target", "box", "class_index", "classes", "cosine", "detection_target", "detections", "from_options", "in_mask",
           "main_output", "output_index", "predicted", "segment", "similar_to", "text"]
