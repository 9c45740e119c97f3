"""``python -m gravity``: the same as the ``gravity`` command."""

import sys

from gravity.cli import main

sys.exit(main())
