"""ADE20K (MIT Scene Parsing, ``ADEChallengeData2016``): convert the image/annotation pairs to
MDS (the files unchanged), stream them as jointly augmented image and label tensors, train a
small FCN (``python train.py yamls/ade20k.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.ade20k.dataset import StreamingADE20K

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(__name__, {"StreamingADE20K": "recipes.ade20k.dataset"})

__all__ = ["StreamingADE20K"]
