"""``python -m gradflow.cli``: the same as the ``gradflow`` command."""

import sys

from . import main

sys.exit(main())
