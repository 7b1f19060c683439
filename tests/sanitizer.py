"""Whether this test run is under AddressSanitizer (tests/native/run_sanitized.sh).

Under it every allocation has redzones and freed memory is quarantined, so
memory figures (RSS) say nothing about the core, and ASan's shadow memory
needs an address space that an RLIMIT_AS cap does not leave.
"""

import os

SANITIZED = "asan" in os.environ.get("LD_PRELOAD", "")
