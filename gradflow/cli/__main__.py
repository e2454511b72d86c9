"""``python -m gradflow.cli``: the same as the ``gradflow`` command."""

import sys

from . import main

if __name__ == "__main__":  # the demo's worker processes import this module again under another name
    sys.exit(main())
