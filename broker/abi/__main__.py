"""`python -m broker.abi [--check]`: write the generated C files, or report drift."""

import sys

from .codegen import main

sys.exit(main(sys.argv[1:]))
