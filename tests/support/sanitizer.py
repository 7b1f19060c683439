"""Whether tests run under AddressSanitizer (run_sanitized.sh); this process RSS.

Under it every allocation has redzones and freed memory is quarantined, so
memory figures (RSS) say nothing about the core, and ASan's shadow memory
needs an address space that an RLIMIT_AS cap does not leave.
"""

import os

SANITIZED = "asan" in os.environ.get("LD_PRELOAD", "")


def rss() -> int:
    """This process's resident memory in bytes (meaningless when SANITIZED)."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
