"""``python -m modelyard`` (also what torchrun launches)."""

import sys

from modelyard.cli.main import main

sys.exit(main())
