"""Files named over OSC: the one gate that every command naming a file reads through.

A path that arrives in a packet (``/gravity/scene PATH``, and any future command that names a
file) is untrusted input: ``/dev/zero`` never ends, a FIFO blocks its reader forever, ``../`` and
symlinks lead anywhere. :func:`read_command_file` is the only way such a path is read:

1. the path is resolved (:meth:`pathlib.Path.resolve`: every symlink and ``..`` followed) and must
   lie under one of the folders allowed at start (``gravity live --allow-dir``; default: the
   request's or the stems' folder), so neither ``../`` nor a symlink can lead out;
2. it must be a regular file (``os.stat`` + ``S_ISREG``): no FIFO, device, socket or folder;
3. its size must be at most the policy's limit (:data:`MAX_COMMAND_FILE_BYTES`);
4. it is opened with ``O_NONBLOCK | O_NOFOLLOW``, so a FIFO or symlink swapped in after the check
   can neither block the open nor redirect it, and checked again on the descriptor (``fstat``:
   the same inode, still regular, still small; on Linux its real path still inside the folders);
5. at most limit + 1 bytes are read, before a deadline (:data:`READ_DEADLINE_S`).

Anything else raises :class:`FileRefused` with a one-line reason; the caller logs it (the path
quoted to at most :data:`QUOTE_CHARS` characters, :func:`quote`) and goes on. :func:`load_json_file`
adds the JSON layer (UTF-8 only, nesting at most :data:`MAX_JSON_DEPTH`) and :func:`load_scene_file`
the scene validation.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from gravity.errors import QUOTE_LIMIT, ValidationError, quote
from gravity.schema import MAX_JSON_BYTES, MAX_JSON_DEPTH, parse_json
from gravity.scene import Scene

from .errors import BridgeError

__all__ = [
    "MAX_COMMAND_FILE_BYTES",
    "READ_DEADLINE_S",
    "MAX_PATH_CHARS",
    "MAX_JSON_DEPTH",
    "QUOTE_CHARS",
    "FileRefused",
    "FilePolicy",
    "quote",
    "one_line",
    "read_bounded",
    "read_command_file",
    "parse_json_bytes",
    "load_json_file",
    "load_scene_file",
]

MAX_COMMAND_FILE_BYTES = MAX_JSON_BYTES
"""Largest file a command may name, bytes (4 MiB). A real scene is tens of kB; one at every schema
maximum (128 objects of 256 member stems and 129 keyframes each), written compactly, is 3.1 MiB."""

READ_DEADLINE_S = 2.0
"""Longest time one command's file may take to open and read, seconds (a local 4 MiB read takes
milliseconds). It is checked between 64 KiB reads; a single read the kernel never returns from (a
hung network mount) is ended by the planning process's answer deadline, which kills that process
(:class:`bridge.planning.PlanProcess`)."""

MAX_PATH_CHARS = 4096
"""Longest path accepted, characters (Linux's PATH_MAX)."""


QUOTE_CHARS = QUOTE_LIMIT
"""Longest quotation of an untrusted value (a path, a prompt) in a log line, characters
(:func:`gravity.errors.quote`, the house's one quoting rule)."""

_CHUNK = 1 << 16  # read size, bytes: the deadline is checked between chunks


def one_line(value: object, limit: int = 2 * QUOTE_CHARS) -> str:
    """The first line of ``str(value)`` (an error listing many issues), cut to ``limit`` characters."""
    lines = str(value).strip().splitlines() or [""]
    head = lines[0] if len(lines[0]) <= limit else lines[0][:limit] + "..."
    return head + (f" (and {len(lines) - 1} more line(s))" if len(lines) > 1 else "")


class FileRefused(BridgeError):
    """A file named by a command was not read (or not accepted); :attr:`reason` says why, in one line.

    Attributes
    ----------
    path : str
        The path as the command gave it.
    reason : str
        Why it was refused (``"not a regular file (a FIFO)"``...).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{quote(path)}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by (path, reason): the planning process sends refusals back to the bridge."""
        return (FileRefused, (self.path, self.reason))


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _kind(mode: int) -> str:
    """What a file is, in words (for refusals)."""
    for test, name in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return name
    return "not a file"


@dataclass(frozen=True)
class FilePolicy:
    """Which files commands may read, and how much of them.

    Attributes
    ----------
    allow_dirs : tuple of Path or None
        Resolved folders; a file must lie under one of them (subfolders included). ``None``: any
        folder, for in-process callers whose paths are trusted (``gravity live`` always confines:
        see :meth:`confined`); ``()``: no folder at all, every file refused.
    max_bytes : int
        Largest file accepted, bytes.
    deadline_s : float
        Longest time to open and read one file, seconds.
    """

    allow_dirs: tuple[Path, ...] | None = None
    max_bytes: int = MAX_COMMAND_FILE_BYTES
    deadline_s: float = READ_DEADLINE_S

    @classmethod
    def confined(
        cls,
        dirs: Iterable[str | Path],
        *,
        max_bytes: int = MAX_COMMAND_FILE_BYTES,
        deadline_s: float = READ_DEADLINE_S,
    ) -> FilePolicy:
        """A policy allowing only files under ``dirs`` (resolved now: later symlink changes to a
        folder's own path do not widen it). A folder that does not exist is a :class:`BridgeError`.
        """
        out: list[Path] = []
        for d in dirs:
            try:
                p = Path(d).expanduser().resolve(strict=True)
            except (OSError, RuntimeError, ValueError) as exc:
                raise BridgeError(f"--allow-dir {quote(str(d))}: {getattr(exc, 'strerror', None) or exc}") from None
            if not p.is_dir():
                raise BridgeError(f"--allow-dir {quote(str(d))}: not a folder")
            out.append(p)
        return cls(tuple(dict.fromkeys(out)), max_bytes, deadline_s)

    def contains(self, resolved: Path) -> bool:
        """True when the resolved path ``resolved`` lies under an allowed folder (or any folder is allowed)."""
        if self.allow_dirs is None:
            return True
        return any(resolved.is_relative_to(d) for d in self.allow_dirs)

    def where(self) -> str:
        """The allowed folders in words (``"under '/song', '/scenes'"``)."""
        if self.allow_dirs is None:
            return "in any folder"
        if not self.allow_dirs:
            return "nowhere (no folder allowed: start gravity live with --allow-dir DIR)"
        names = ", ".join(quote(str(d), 80) for d in self.allow_dirs[:4])
        more = f" and {len(self.allow_dirs) - 4} more" if len(self.allow_dirs) > 4 else ""
        return f"under {names}{more}"

    def describe(self) -> str:
        """The whole rule in words, for the start-up log."""
        return f"regular files up to {_mib(self.max_bytes)}, read within {self.deadline_s:g} s, {self.where()}"


def _fd_path(fd: int) -> Path | None:
    """The real path of an open descriptor (Linux ``/proc``), or None where that is unknown."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def read_bounded(
    fd: int,
    *,
    max_bytes: int,
    deadline_s: float,
    path: str = "",
    started_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """Read ``fd`` to its end: at most ``max_bytes + 1`` bytes, until ``deadline_s`` seconds after
    ``started_s`` (a ``clock`` time; default: now).

    A descriptor that would block (a non-blocking pipe without data) is polled until the deadline.

    Raises
    ------
    FileRefused
        More than ``max_bytes`` bytes, the deadline passed, or a read error; ``path`` names it.
    """
    end = (clock() if started_s is None else started_s) + deadline_s
    chunks: list[bytes] = []
    total = 0
    while True:
        if clock() > end:
            raise FileRefused(path, f"not read within {deadline_s:g} s (read {_mib(total)})")
        try:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
        except BlockingIOError:  # only a non-regular file says this: wait, but not past the deadline
            time.sleep(0.01)
            continue
        except OSError as exc:
            raise FileRefused(path, f"read failed ({exc.strerror or exc})") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise FileRefused(path, f"more than the {_mib(max_bytes)} limit")


def read_command_file(path: str, policy: FilePolicy, *, clock: Callable[[], float] = time.monotonic) -> bytes:
    """The bytes of the file a command names, if the policy allows it (see the module notes).

    Parameters
    ----------
    path : str
        As the command gave it; relative paths are relative to the current folder.
    policy : FilePolicy
        Allowed folders, size limit (bytes) and deadline (seconds).

    Raises
    ------
    FileRefused
        With a one-line reason: outside the allowed folders, not a regular file, too large,
        too slow, unreadable, changed between the check and the open.
    """
    start = clock()
    if not path:
        raise FileRefused(path, "empty path")
    if len(path) > MAX_PATH_CHARS:
        raise FileRefused(path, f"path longer than {MAX_PATH_CHARS} characters")
    try:
        resolved = Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise FileRefused(path, "file not found") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13), no permission
        raise FileRefused(path, f"cannot resolve the path ({getattr(exc, 'strerror', None) or exc})") from None
    except ValueError:  # a NUL character
        raise FileRefused(path, "not a valid path") from None
    if not policy.contains(resolved):
        via = f"resolves to {quote(str(resolved), 100)}, " if str(resolved) != os.path.abspath(path) else ""
        raise FileRefused(path, f"{via}outside the folders allowed at start (files are read {policy.where()})")
    try:
        st = os.stat(resolved)
    except OSError as exc:
        raise FileRefused(path, f"cannot stat ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(path, f"not a regular file ({_kind(st.st_mode)})")
    if st.st_size > policy.max_bytes:
        raise FileRefused(path, f"{_mib(st.st_size)}, over the {_mib(policy.max_bytes)} limit")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(resolved, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:  # ELOOP: a symlink was swapped in after the check
        raise FileRefused(path, f"cannot open ({exc.strerror or exc})") from None
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise FileRefused(path, f"changed between the check and the open (now {_kind(now.st_mode)})")
        if now.st_size > policy.max_bytes:
            raise FileRefused(path, f"{_mib(now.st_size)}, over the {_mib(policy.max_bytes)} limit")
        real = _fd_path(fd)
        if real is not None and real.is_absolute() and not policy.contains(real):
            raise FileRefused(path, "changed between the check and the open (now outside the allowed folders)")
        return read_bounded(
            fd, max_bytes=policy.max_bytes, deadline_s=policy.deadline_s, path=path, started_s=start, clock=clock
        )
    finally:
        os.close(fd)


def parse_json_bytes(data: bytes, path: str = "") -> Any:
    """Parse a command file's bytes as JSON (:func:`gravity.schema.parse_json`: UTF-8, nesting at
    most :data:`~gravity.schema.MAX_JSON_DEPTH`); anything else raises :class:`FileRefused`.
    """
    if not data.strip():
        raise FileRefused(path, "empty file")
    try:
        return parse_json(data, path)
    except ValidationError as exc:
        raise FileRefused(path, "; ".join(i.message for i in exc.issues)) from None


def load_json_file(path: str, policy: FilePolicy) -> Any:
    """A JSON document from the file a command names (:func:`read_command_file` + :func:`parse_json_bytes`)."""
    return parse_json_bytes(read_command_file(path, policy), path)


def load_scene_file(path: str, policy: FilePolicy) -> Scene:
    """A validated scene from the file a command names.

    Raises
    ------
    FileRefused
        The gate said no, or the file is not JSON or not a JSON object.
    gravity.errors.ValidationError
        A JSON object that is not a valid scene (every issue listed).
    """
    doc = load_json_file(path, policy)
    if not isinstance(doc, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(doc), "number")
        raise FileRefused(path, f"not a scene: a JSON {kind}, not an object")
    return Scene.from_dict(doc, source=quote(path))
