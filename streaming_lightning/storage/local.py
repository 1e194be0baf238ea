"""Local paths and ``file://`` URLs: a "remote" that is another directory (NFS, a mounted
bucket, or a dataset built on this machine)."""

from __future__ import annotations

import os
import shutil

from streaming_lightning.errors import RemoteNotFoundError, RemotePermissionError, StorageError
from streaming_lightning.storage.base import Backend, byte_span, checked_range


def local_path_of(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


class LocalBackend(Backend):
    schemes = ("file",)

    def download(self, url: str, path: str, timeout: float) -> None:
        source = local_path_of(url)
        try:
            shutil.copyfile(source, path)
        except FileNotFoundError:
            raise RemoteNotFoundError(f"No such file: {source}") from None
        except PermissionError:
            raise RemotePermissionError(f"Permission denied reading {source}") from None

    def read_range(self, url: str, start: int, length: int, timeout: float) -> bytes:
        span = byte_span(start, length)
        try:
            with open(local_path_of(url), "rb") as file:
                total = os.fstat(file.fileno()).st_size
                wanted = max(0, min(length, total - start))  # never allocate past the end
                chunks: list[bytes] = []
                got = 0
                while got < wanted:  # pread may return less than asked before the end
                    chunk = os.pread(file.fileno(), wanted - got, start + got)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
        except FileNotFoundError:
            raise RemoteNotFoundError(f"Cannot read {span} of {url}: no such file.") from None
        except PermissionError:
            raise RemotePermissionError(
                f"Cannot read {span} of {url}: permission denied."
            ) from None
        except OSError as err:  # e.g. a directory
            raise StorageError(f"Cannot read {span} of {url}: {err.strerror or err}.") from None
        return checked_range(b"".join(chunks), url, start, length, total=total)

    def upload(self, path: str, url: str, timeout: float) -> None:
        dest = local_path_of(url)
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = f"{dest}.tmp.{os.getpid()}"
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except PermissionError:
            raise RemotePermissionError(f"Permission denied writing {dest}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def list(self, url: str) -> list[str]:
        prefix = local_path_of(url)
        root = prefix if os.path.isdir(prefix) else os.path.dirname(prefix) or "."
        found = []
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                if path.startswith(prefix):
                    found.append(path)
        return sorted(found)

    def exists(self, url: str) -> bool:
        return os.path.isfile(local_path_of(url))

    def size(self, url: str) -> int | None:
        try:
            return os.path.getsize(local_path_of(url))
        except FileNotFoundError:
            return None
