"""Where things are, for a test in any subfolder of tests/ (or a helper here)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent  # the checkout (or an unpacked sdist)
GUESTS = TESTS / "guests"  # the WAT test guests
APPS = TESTS / "apps"  # the held-back apps: leaky, atlas
SUPPORT = TESTS / "support"  # these helpers; also scripts run as child processes
