"""The producer's accepted edits, recorded as training data (JSON Lines).

Every accepted hand edit becomes one row (:func:`edit_row`): the section's request, the scene the
proposer made (``proposed``), the scene with the producer's edits (``edited``), who proposed it and
the model/prompt format version, and the time. ``gravity data --from-edits DIR`` (issue 20's data
part) reads these rows: edited scenes are SFT targets, (edited, proposed) preference pairs.

Where: ``<data dir>/edits/edits-NNNNNN.jsonl`` with the data dir ``$GRAVITY_DATA``, else
``$XDG_DATA_HOME/gravity``, else ``~/.local/share/gravity`` (:func:`data_dir`).

Appends are atomic: one ``write`` of a whole line to a file opened ``O_APPEND``, under an
exclusive ``flock`` on the folder's lock file (several processes may record at once); a write
that fails part-way is cut back, so a reader never sees half a row. Sizes are bounded: a row at
most :data:`MAX_ROW_BYTES`, a file at most :data:`MAX_FILE_BYTES` (then the next number), the
folder at most :data:`MAX_TOTAL_BYTES` (then rows are refused, and that is logged, never deleted).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "MAX_ROW_BYTES",
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "data_dir",
    "edits_dir",
    "edit_row",
    "EditLog",
    "read_edits",
]

log = logging.getLogger(__name__)

MAX_ROW_BYTES = 8 * 2**20
"""Largest row recorded, bytes (two scenes at the schema's limits and their request fit)."""
MAX_FILE_BYTES = 64 * 2**20
"""A file grows to about this size, bytes; the next row starts the next file."""
MAX_TOTAL_BYTES = 2**30
"""The edits folder holds at most this much, bytes; past it rows are refused (and logged)."""

_NAME = re.compile(r"edits-(\d{6})\.jsonl")


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's Gravity data folder: ``$GRAVITY_DATA``, else ``$XDG_DATA_HOME/gravity``, else
    ``~/.local/share/gravity`` (the XDG base-directory default).

    Parameters
    ----------
    environ : mapping, optional
        The environment to read (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if env.get("GRAVITY_DATA"):
        return Path(env["GRAVITY_DATA"]).expanduser()
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]).expanduser() / "gravity"
    return Path("~/.local/share/gravity").expanduser()


def edits_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where edits are recorded: :func:`data_dir` ``/ "edits"``."""
    return data_dir(environ) / "edits"


def edit_row(
    *,
    request: Mapping[str, Any],
    proposed: Mapping[str, Any],
    edited: Mapping[str, Any],
    proposer: str,
    section: str | None,
    edit: Mapping[str, Any],
    model: Mapping[str, Any] | None = None,
    when: float | None = None,
) -> dict[str, Any]:
    """One row of the edits log (a JSON-ready dict).

    Parameters
    ----------
    request : mapping
        The section's request document (prompt and live hints included).
    proposed, edited : mapping
        The proposer's scene and the scene with every hand edit of the section, as played.
    proposer : str
        Who proposed ``proposed`` (``planner``, ``llm``, ``file:x.json``).
    section : str or None
        The song section (marker name); None = no markers.
    edit : mapping
        The edit that was accepted (object id and the fields it set).
    model : mapping, optional
        Model identity (planner setting, model and adapter paths) where known.
    when : float, optional
        Unix time in seconds (default: now).
    """
    from gravity import __version__
    from gravity.llm.format import FORMAT_VERSION

    t = time.time() if when is None else float(when)
    return {
        "time": _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds"),
        "unix_s": round(t, 3),
        "section": section,
        "edit": dict(edit),
        "proposer": proposer,
        "model": dict(model or {}),
        "prompt_format": FORMAT_VERSION,
        "gravity": __version__,
        "request": request,
        "proposed": proposed,
        "edited": edited,
    }


class EditLog:
    """Appends rows to ``<folder>/edits-NNNNNN.jsonl``, atomically, within the size bounds.

    Parameters
    ----------
    folder : path
        The edits folder (created on the first row, mode 0700: edits describe unreleased music).
    max_file_bytes, max_total_bytes, max_row_bytes : int
        The bounds (defaults :data:`MAX_FILE_BYTES`, :data:`MAX_TOTAL_BYTES`, :data:`MAX_ROW_BYTES`).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
        max_row_bytes: int = MAX_ROW_BYTES,
    ) -> None:
        self.folder = Path(folder)
        self.max_file_bytes, self.max_total_bytes, self.max_row_bytes = max_file_bytes, max_total_bytes, max_row_bytes
        self._lock = threading.Lock()
        self.rows = 0
        self.refused = 0
        self._full_logged = False

    def _files(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.folder.iterdir():
            m = _NAME.fullmatch(p.name)
            if m and p.is_file():
                out.append((int(m.group(1)), p))
        return sorted(out)

    def append(self, row: Mapping[str, Any]) -> Path | None:
        """Append one row; returns the file, or None when a bound refused it (logged, counted).

        Raises ``OSError`` when the folder cannot be written (the caller logs it).
        """
        line = (json.dumps(row, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
        if len(line) > self.max_row_bytes:
            self.refused += 1
            log.warning("edit not recorded: row of %d bytes over the %d-byte bound", len(line), self.max_row_bytes)
            return None
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock_fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)  # other processes recording into the same folder
                files = self._files()
                total = sum(p.stat().st_size for _, p in files)
                if total + len(line) > self.max_total_bytes:
                    self.refused += 1
                    if not self._full_logged:
                        self._full_logged = True
                        log.warning(
                            "edits folder %s holds %d bytes (bound %d): edits are no longer recorded; "
                            "move old edits-*.jsonl files away to record again",
                            self.folder,
                            total,
                            self.max_total_bytes,
                        )
                    return None
                n, path = files[-1] if files else (1, self.folder / "edits-000001.jsonl")
                if path.exists() and path.stat().st_size + len(line) > self.max_file_bytes:
                    n += 1
                    path = self.folder / f"edits-{n:06d}.jsonl"
                self._write(path, line)
            finally:
                os.close(lock_fd)  # (releases the flock)
        self.rows += 1
        return path

    @staticmethod
    def _write(path: Path, line: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = os.fstat(fd).st_size
            try:
                done = os.write(fd, line)
                if done != len(line):  # a full disk: no half rows
                    raise OSError(f"short write ({done} of {len(line)} bytes)")
            except OSError:
                os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)


def read_edits(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every row of every ``edits-*.jsonl`` file in ``folder``, oldest file first (lines that do not
    parse, e.g. from another tool, are skipped and logged).
    """
    out: list[dict[str, Any]] = []
    p = Path(folder)
    files = sorted(f for f in p.iterdir() if _NAME.fullmatch(f.name)) if p.is_dir() else []
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                try:
                    row = json.loads(line)
                except ValueError:
                    log.warning("%s:%d: not a JSON row; skipped", f, i)
                    continue
                if isinstance(row, dict):
                    out.append(row)
    return out
