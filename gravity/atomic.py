"""Write files all-or-nothing: a temp file beside the target, renamed over it on success."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path"]


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path in ``path``'s folder; on success it replaces ``path``, else it is removed.

    The result keeps an existing file's permissions (new files get the usual 0644 under the
    umask, not mkstemp's 0600). ``suffix`` lets writers that pick a format from the extension
    (soundfile) see the right one. A missing folder raises FileNotFoundError before anything
    is written.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{p}: folder {parent} does not exist")
    umask = os.umask(0)
    os.umask(umask)
    mode = (p.stat().st_mode & 0o777) if p.exists() else 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
