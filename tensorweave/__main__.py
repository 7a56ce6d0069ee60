"""``python -m tensorweave``: the ``tensorweave`` command."""

import sys

from .cli import main

sys.exit(main())
