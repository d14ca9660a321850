"""`python -m bench`: see bench/harness.py (`python -m bench --help`)."""

import sys

from bench.harness import main

sys.exit(main())
