"""`python -m bazaar`: the `bazaar` command."""

from bazaar.tools.cli import main

raise SystemExit(main())
