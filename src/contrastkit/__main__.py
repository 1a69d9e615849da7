"""``python -m contrastkit``: the same as the ``contrastkit`` command."""

import sys

from contrastkit.cli.main import main

sys.exit(main())
