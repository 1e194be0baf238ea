"""The contract every MDS column encoding fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from streaming_lightning.errors import EncodingError


class Coder(ABC):
    """Turns one column value into bytes and back.

    ``size`` is the encoded size in bytes when it is the same for every value (then the sample
    stores no per-value length), else ``None``. ``safe`` is False for encodings whose decoding can
    execute code; readers refuse those unless the user opts in.
    """

    size: int | None = None
    safe: ClassVar[bool] = True
    #: The decoded value is the stored bytes themselves (readers skip the call).
    identity: ClassVar[bool] = False
    #: A ``struct`` format whose single unpacked field is the decoded value (readers unpack
    #: it in place, without slicing the bytes out first).
    struct_format: ClassVar[str | None] = None
    #: Python types accepted by :meth:`encode`, for the error message when a value has another.
    accepts: ClassVar[tuple[type, ...]] = ()

    @abstractmethod
    def encode(self, obj: Any) -> bytes:
        """The stored bytes of ``obj``; EncodingError if it does not fit this encoding."""

    @abstractmethod
    def decode(self, data: bytes) -> Any:
        """The value stored in ``data``; EncodingError if the bytes are corrupt."""

    def decode_rows(self, rows: np.ndarray) -> Sequence[Any]:
        """Decode many values at once: ``rows`` is a ``(k, size)`` uint8 array, one value per
        row (fixed-size coders only). Readers use this to decode a whole batch with a few
        numpy operations instead of one Python call per value; coders with a vectorised form
        override it, the rest decode row by row."""
        return [self.decode(row.tobytes()) for row in rows]

    def decode_batch(self, rows: np.ndarray) -> np.ndarray | None:
        """The column of a whole batch as one stacked array (what ``default_collate`` would
        build from the decoded values), or None when values do not stack (then samples are
        decoded one by one)."""
        return None

    def _check_type(self, obj: Any, encoding: str) -> None:
        if self.accepts and not isinstance(obj, self.accepts):
            names = " or ".join(t.__name__ for t in self.accepts)
            raise EncodingError(
                f"Encoding {encoding!r} expects {names}, got {type(obj).__name__}: {obj!r:.80}"
            )


def no_config(name: str, config: str | None) -> None:
    """Raise if an encoding that takes no parameters was given some (``'int:5'``)."""
    if config is not None:
        raise EncodingError(f"Encoding {name!r} takes no parameters, got {name}:{config}.")
