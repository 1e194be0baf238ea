"""ADE20K (MIT Scene Parsing, ``ADEChallengeData2016``): convert the image/annotation pairs to
MDS (the files unchanged), stream them as jointly augmented image and label tensors, train a
small FCN (``python train.py yamls/ade20k.yaml``)."""

from recipes.ade20k.dataset import StreamingADE20K

__all__ = ["StreamingADE20K"]
