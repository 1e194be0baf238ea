"""``python -m streaming_lightning.cli``: the same as the ``streaming-lightning`` script."""

import sys

from streaming_lightning.cli import main

sys.exit(main())
