"""`python -m reluscope.cli`: the same as the `reluscope` script."""

from . import main

main()
