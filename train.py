"""Train a recipe: ``python train.py yamls/<recipe>.yaml [dotted.key=value ...]``.

The YAML (merged with the overrides) is checked before anything starts; ``trainer.kind`` picks
Lightning (default) or Composer. Rerunning the same command continues from the last
checkpoint in ``checkpoint.dir``, mid-epoch, with no sample repeated or skipped.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    from recipes.common.config import load_config
    from streaming_lightning.errors import StreamingError

    try:
        config, task = load_config(argv[0], argv[1:])
        if config.trainer.kind == "composer":
            from recipes.common.composer_run import train as run
        else:
            from recipes.common.lightning_run import train as run
        run(config, task)
    except StreamingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
