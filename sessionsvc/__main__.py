"""``python -m sessionsvc``: the same as the ``sessionsvc`` command."""

import sys

from sessionsvc.cli.main import main

sys.exit(main())
