"""`reluscope reproduce`: each paper's claims checked by its own protocol, with a verdict per claim.

One runner module per paper (`reluscope.reproduce.<paper>`, listed in `PAPERS`) exposes
`run(ctx: RunContext) -> PaperResult`. See docs/methods.md for the protocols and every choice the
papers leave open.
"""

# The package's API is the framework's, listed once in `_framework.__all__`.
from ._framework import *  # noqa: F403
from ._framework import __all__  # noqa: F401
