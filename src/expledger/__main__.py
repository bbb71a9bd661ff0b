"""`python -m expledger` is the `exp` command."""

import sys

from .cli import main

sys.exit(main())
