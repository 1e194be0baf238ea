"""``python -m recipes.imagefolder convert --in ROOT --out DIR_OR_URL [...]`` (also
``streaming-lightning convert imagefolder ...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recipes.common.convert import converter_main
from recipes.imagefolder.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    return converter_main(
        argv,
        package="imagefolder",
        description=__doc__,
        what="root/<class>/<image> -> MDS",
        input_help="the folder of class folders",
        run=lambda args, options: convert(args.raw, options, split=args.split),
    )


if __name__ == "__main__":
    sys.exit(main())
