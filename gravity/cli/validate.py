"""``gravity validate``: check request and scene files; exit 1 on any error."""

from __future__ import annotations

import argparse
import sys

from gravity.errors import MAX_ISSUES_SHOWN, ValidationError

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``gravity validate``'s arguments (the files to check) on ``p``."""
    p.add_argument("files", nargs="+")


def run(args: argparse.Namespace) -> int:
    """Check each request or scene file, one line per problem (at most 20 a file, then a count);
    returns 1 if any is invalid, else 0.
    """
    from gravity.request import Request
    from gravity.rules import check_feasible
    from gravity.schema import check_document, read_json

    bad = 0
    for path in args.files:
        try:
            doc = read_json(path)
        except ValidationError as exc:
            print(exc, file=sys.stderr)
            bad += 1
            continue
        kind, issues = check_document(doc)
        if kind == "request" and not issues:
            issues = check_feasible(Request.from_dict(doc, str(path)))
        for issue in issues[:MAX_ISSUES_SHOWN]:
            print(issue.format(str(path)), file=sys.stderr)
        if len(issues) > MAX_ISSUES_SHOWN:  # bounded output: 256 bad stems are not 256 lines
            print(f"{path}: ... and {len(issues) - MAX_ISSUES_SHOWN} more issues", file=sys.stderr)
        if issues:
            bad += 1
        else:
            print(f"{path}: valid {kind}")
    return 1 if bad else 0
