"""Write files all-or-nothing: a temp file beside the target, renamed over it on success.

:func:`atomic_path` does it for one file; :func:`atomic_paths` for several outputs of one command
(a render's audio, scene and plot), which appear together or not at all.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

__all__ = ["atomic_path", "atomic_paths", "clobbered"]


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


def _temp_beside(p: Path, suffix: str) -> tuple[Path, int]:
    """A new hidden temp file in ``p``'s folder and the mode ``p`` should end with."""
    umask = os.umask(0)
    os.umask(umask)
    mode = (p.stat().st_mode & 0o777) if p.exists() else 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=p.parent)
    os.close(fd)
    return Path(tmp), mode


@contextmanager
def atomic_paths(
    paths: Sequence[str | os.PathLike[str]], suffixes: Sequence[str] | None = None
) -> Iterator[list[Path]]:
    """Yield one temp path per target; on success all replace their targets, else none does.

    Every target is checked before anything is written: its folder exists and it is not a
    folder itself. The temp files are hidden (``.name.XXXX``) beside their targets, so the
    final renames stay on one file system. A target that already exists is replaced only when
    the whole block succeeded; should a rename fail half-way (a target turned into a folder
    meanwhile), the targets already replaced get their previous files back (kept as hard links
    until the end) and the new ones are removed, so a failure leaves the folder as it was.

    Parameters
    ----------
    paths : sequence of path
        The outputs, distinct.
    suffixes : sequence of str, optional
        One per path, the temp file's ending (writers that pick a format by extension need the
        right one); default: each target's own suffix, or ``.tmp``.

    Raises
    ------
    FileNotFoundError
        A target's folder does not exist (before anything is written).
    IsADirectoryError
        A target is a folder (before anything is written).
    """
    targets = [Path(p) for p in paths]
    ends = list(suffixes) if suffixes is not None else [t.suffix or ".tmp" for t in targets]
    for t in targets:
        parent = t.parent if str(t.parent) else Path(".")
        if not parent.is_dir():
            raise FileNotFoundError(f"{t}: folder {parent} does not exist")
        if t.is_dir():
            raise IsADirectoryError(f"{t}: is a folder; name a file")
    temps: list[tuple[Path, int]] = []
    try:
        for t, end in zip(targets, ends, strict=True):
            temps.append(_temp_beside(t, end))
        yield [tmp for tmp, _ in temps]
        for tmp, mode in temps:
            os.chmod(tmp, mode)
        _replace_all(targets, [tmp for tmp, _ in temps])
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def _replace_all(targets: list[Path], temps: list[Path]) -> None:
    """``os.replace`` every temp over its target, all or none (see :func:`atomic_paths`)."""
    backups: dict[Path, Path | None] = {}  # target -> a hard link to its previous file
    done: list[Path] = []
    try:
        for t in targets:
            if t.exists():
                b = _temp_beside(t, ".bak")[0]
                b.unlink()
                try:
                    os.link(t, b)
                    backups[t] = b
                except OSError:  # no hard links here (FAT, some network mounts): no way back
                    backups[t] = None
        for t, tmp in zip(targets, temps, strict=True):
            os.replace(tmp, t)
            done.append(t)
    except BaseException:
        for t in done:  # undo: the previous file back, or no file where there was none
            if t not in backups:
                t.unlink(missing_ok=True)
            elif (prev := backups[t]) is not None:
                os.replace(prev, t)
        raise
    finally:
        for kept in backups.values():
            if kept is not None:
                kept.unlink(missing_ok=True)


def clobbered(
    outputs: Sequence[str | os.PathLike[str] | None], inputs: Sequence[str | os.PathLike[str] | None]
) -> tuple[Path, Path] | None:
    """The first (output, input) pair that are the same file, else None: writing that output
    would destroy that input.

    "Same file" is the same device and inode (``os.stat``, links followed), so a hard link or a
    symbolic link to an input is caught as well as its own name. An output that does not exist
    yet cannot be an input; a missing input is skipped (its own error comes when it is read).
    """
    ids: dict[tuple[int, int], Path] = {}
    for p in inputs:
        if p is not None and (key := _file_id(p)) is not None:
            ids.setdefault(key, Path(p))
    for out in outputs:
        if out is not None and (key := _file_id(out)) in ids:
            return Path(out), ids[key]
    return None


def _file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of an existing file, links followed; None when there is no such file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None
    return st.st_dev, st.st_ino
