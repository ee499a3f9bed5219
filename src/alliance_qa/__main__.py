"""`python -m alliance_qa`: the same as the `alliance-qa` command."""

import sys

from .cli import main

sys.exit(main())
