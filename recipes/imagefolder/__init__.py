"""An image folder (``root/<class>/*.jpg``, torchvision's ImageFolder layout) → MDS
(``streaming-lightning convert imagefolder``)."""
