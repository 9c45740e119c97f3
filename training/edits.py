"""The producer's own edits as training data (issue 20): ``gravity data OUT --from-edits DIR``.

The live UI logs every accepted hand edit (``bridge.ui.record``: files ``edits-NNNNNN.jsonl``,
one row per settled edit with the section's request, the proposed scene and the edited scene as
played). A section's later rows carry its earlier edits too, so only the **last row of each
(request, proposed scene)** counts. Each becomes:

* an SFT row (``train.jsonl`` / ``val.jsonl``, the shape ``gravity data`` writes): prompt = the
  runtime's model input for the request, completion = the edited scene in the output format;
* a preference pair (``pairs_train.jsonl`` / ``pairs_val.jsonl``, the shape ``gravity pairs``
  writes): chosen = the edited scene, rejected = the proposed one, so
  ``gravity train --method dpo`` tunes on them as on critic-ranked pairs. An edit that changed
  nothing the output format carries (e.g. a gain the format rounds away) makes no pair.

About one group in ten goes to validation, chosen by a hash of its prompt (deterministic, and
the same request never lands in both splits); with two or more pairs at least one pair is held
out (a DPO run evaluates on validation pairs). ``manifest.json`` records the counts, SHA-256 of
every file written and of every log file read.

Every file is hostile until checked: regular files only, at most :data:`MAX_FILE_BYTES` each and
:data:`MAX_FILES` files, every line through Gravity's bounded JSON parser
(:func:`gravity.schema.parse_json`); a row whose request or scenes are not valid is skipped with
a logged reason (the count of skips per reason goes to the manifest). The outputs are written
together after everything is read (temp files renamed), never half.

``training`` does not import ``bridge`` (the house's contracts): the log's row shape is read here
on its own terms, not through ``bridge.ui.record``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import stat
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from gravity.atomic import atomic_paths
from gravity.errors import GravityError, ValidationError, quote
from gravity.llm.format import FORMAT_VERSION, encode_scene, model_input
from gravity.request import Request
from gravity.schema import check_scene, parse_json

__all__ = ["edit_groups", "edit_examples", "edit_splits", "write_edit_data", "MAX_FILE_BYTES", "MAX_FILES", "VAL_EVERY"]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 << 20  # the UI's own cap on a log file
MAX_FILES = 10_000
VAL_EVERY = 10  # about one group in ten is held out
_NAME = re.compile(r"edits-\d{6}\.jsonl")


def _log_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GravityError(f"{folder}: not a folder of edit logs (edits-NNNNNN.jsonl)")
    files = sorted(f for f in folder.iterdir() if _NAME.fullmatch(f.name))
    if len(files) > MAX_FILES:
        raise GravityError(f"{folder}: {len(files)} edit logs, at most {MAX_FILES}")
    out = []
    for f in files:
        st = f.lstat()
        if not stat.S_ISREG(st.st_mode):
            log.warning("%s: not a regular file; skipped", f)
        elif st.st_size > MAX_FILE_BYTES:
            log.warning("%s: %d bytes, more than %d; skipped", f, st.st_size, MAX_FILE_BYTES)
        else:
            out.append(f)
    return out


def _example(row: Any) -> tuple[str, str, str]:
    """(prompt, edited text, proposed text) of one log row; raises ValueError saying why not."""
    if not isinstance(row, dict):
        raise ValueError("not an object")
    for key in ("request", "proposed", "edited"):
        if not isinstance(row.get(key), dict):
            raise ValueError(f"no {key}")
    request = Request.from_dict(row["request"], source="request")
    for key in ("proposed", "edited"):
        issues = check_scene(row[key])
        if issues:
            raise ValueError(f"{key}: {issues[0]}")
    return model_input(request), encode_scene(row["edited"], request), encode_scene(row["proposed"], request)


def edit_groups(folder: str | Path) -> tuple[list[tuple[str, str, str, str, dict[str, Any]]], dict[str, Any]]:
    """Read the edit logs in ``folder``: ``([(group id, prompt, edited, proposed, row)], stats)``,
    the last row of each (request, proposed scene), in the order the groups were first seen;
    ``row`` is that log row as parsed (request and both scenes checked).
    """
    files = _log_files(Path(folder))
    last: dict[str, tuple[str, str, str, dict[str, Any]]] = {}
    order: list[str] = []
    skipped: Counter[str] = Counter()
    rows = 0
    for f in files:
        for n, line in enumerate(f.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            rows += 1
            try:
                row = parse_json(line, f"{f.name}:{n}")
                prompt, edited, proposed = _example(row)
            except (ValidationError, ValueError, GravityError) as exc:
                reason = str(exc).split(":")[0] if not isinstance(exc, ValidationError) else "invalid request"
                skipped[reason] += 1
                log.warning("%s:%d: skipped (%s)", f, n, quote(str(exc)))
                continue
            if row.get("prompt_format") not in (None, FORMAT_VERSION):
                log.info(
                    "%s:%d: logged with prompt format %s, re-encoded as %s",
                    f,
                    n,
                    row.get("prompt_format"),
                    FORMAT_VERSION,
                )
            group = hashlib.sha256((prompt + "\0" + proposed).encode()).hexdigest()[:16]
            if group not in last:
                order.append(group)
            last[group] = (prompt, edited, proposed, row)
    groups = [(g, *last[g]) for g in order]
    stats = {"files": [f.name for f in files], "rows": rows, "groups": len(groups), "skipped": dict(skipped)}
    return groups, stats


def edit_examples(folder: str | Path) -> tuple[list[tuple[str, str, str, str]], dict[str, Any]]:
    """:func:`edit_groups` without the rows: ``([(group id, prompt, edited, proposed)], stats)``."""
    groups, stats = edit_groups(folder)
    return [g[:4] for g in groups], stats


def _split(prompt: str) -> str:
    return "val" if int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % VAL_EVERY == 0 else "train"


def edit_splits(examples: Sequence[Sequence[Any]]) -> list[str]:
    """``"train"`` or ``"val"`` for each ``(group, prompt, edited, proposed, ...)``: about one in
    :data:`VAL_EVERY` by a hash of its prompt; with two or more pairs at least one pair is held out
    (a DPO run evaluates on validation pairs). ``gravity eval --edits`` reads the same split.
    """
    splits = [_split(e[1]) for e in examples]
    paired = [i for i, e in enumerate(examples) if e[2] != e[3]]
    if len(paired) >= 2 and not any(splits[i] == "val" for i in paired):
        # hold out the pair whose prompt hashes lowest
        splits[min(paired, key=lambda i: hashlib.sha256(examples[i][1].encode()).hexdigest())] = "val"
    return splits


def write_edit_data(folder: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Write SFT rows and preference pairs from the edit logs in ``folder`` to ``out_dir`` (see
    the module docstring); returns the manifest. Raises GravityError when nothing usable is there.
    """
    examples, stats = edit_examples(folder)
    if not examples:
        raise GravityError(f"{folder}: no usable edits ({stats['rows']} rows, skipped: {stats['skipped'] or 'none'})")
    texts: dict[str, list[str]] = {n: [] for n in ("train", "val", "pairs_train", "pairs_val")}
    splits = edit_splits(examples)
    for i, (group, prompt, edited, proposed) in enumerate(examples):
        split = splits[i]
        rid = f"edit-{split}-{i:06d}-{group}"
        sft = {"id": rid, "prompt": prompt, "completion": edited, "source": "edits"}
        texts[split].append(json.dumps(sft, ensure_ascii=False, sort_keys=True) + "\n")
        if edited != proposed:
            pair = {"id": rid, "prompt": prompt, "chosen": edited, "rejected": proposed,
                    "chosen_from": "edited", "rejected_from": "proposed"}  # fmt: skip
            texts[f"pairs_{split}"].append(json.dumps(pair, ensure_ascii=False, sort_keys=True) + "\n")
    out = Path(out_dir)
    names = [f"{k}.jsonl" for k in texts] + ["manifest.json"]
    blobs = {f"{k}.jsonl": "".join(v).encode("utf-8") for k, v in texts.items()}
    manifest = {
        "source": "edits",
        "format": FORMAT_VERSION,
        "from": str(Path(folder)),
        "read": stats,
        "counts": {k: len(v) for k, v in texts.items()},
        "sha256": {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()},
    }
    blobs["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_paths([out / n for n in names]) as temps:
        for n, tmp in zip(names, temps, strict=True):
            tmp.write_bytes(blobs[n])
    log.info("%d edited sections -> %s (%s)", len(examples), out, manifest["counts"])
    return manifest
