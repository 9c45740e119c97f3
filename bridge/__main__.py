"""``python -m bridge ARGS`` runs gravity-live (see :func:`bridge.live.main`)."""

import sys

from .live import main

sys.exit(main())
