"""Files written atomically: into a temporary file beside the target, then renamed over it, so a
reader never sees half a file and an interrupted write (an error, a full disk, a kill) leaves the old
one as it was. Checkpoints, metrics and pictures are written this way."""

from __future__ import annotations

import glob
import os
import tempfile
from typing import IO, Callable, Optional

__all__ = ["atomic_write", "TMP_PREFIX", "remove_stale_temporaries"]

#: The name prefix of the temporary files; one left behind means its writer was killed mid-write.
TMP_PREFIX = ".tmp-"


def atomic_write(path: str, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write`` with a binary file object, then move what it wrote to ``path`` in one rename
    (flushed and fsynced first, the directory fsynced after, so the new file survives a crash).

    An OSError while writing (a full disk, a read-only or vanished directory) is raised again with a
    message naming ``path`` and saying that the file there, if any, is unchanged."""
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=directory)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        _discard(tmp)
        kept = "the previous file is unchanged" if os.path.exists(path) else "nothing was written"
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e} ({kept})") from e
    except BaseException:
        _discard(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _discard(tmp: Optional[str]) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def remove_stale_temporaries(directory: str) -> None:
    """Remove the temporary files that writes killed before their rename left in ``directory``."""
    for tmp in glob.glob(os.path.join(glob.escape(directory), TMP_PREFIX + "*")):
        if os.path.isfile(tmp):
            os.unlink(tmp)
