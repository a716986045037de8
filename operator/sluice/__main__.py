"""``python -m sluice``: the ``sluice`` command, for children started with this interpreter."""

import sys

from sluice.cli import main

sys.exit(main())
