"""WebVid: convert the metadata CSV and a crawl of its mp4 files to MDS, stream clips as
decoded frames with byte-level caption tokens, train a tiny video-text contrastive model
(``python train.py yamls/webvid.yaml``)."""

from recipes.webvid.dataset import StreamingWebVid

__all__ = ["StreamingWebVid"]
