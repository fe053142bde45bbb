"""Fast (feed-forward) style transfer: a transformation network trained on the same perceptual
loss as the optimisation-based ``style`` (Johnson et al. 2016), many styles in one network by
conditional instance normalisation (Dumoulin et al. 2017), masked styles and video.

Modules: :mod:`.net` (the network), :mod:`.loss` (the perceptual loss), :mod:`.train`,
:mod:`.stylize`, :mod:`.masks`, :mod:`.video`, :mod:`.checkpoint`.
"""
