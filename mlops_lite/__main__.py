"""``python -m mlops_lite``: the same as the ``mlops-lite`` command."""

import sys

from mlops_lite.cli import main

sys.exit(main())
