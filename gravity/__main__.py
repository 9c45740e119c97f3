import sys

from gravity.cli import main

sys.exit(main())
