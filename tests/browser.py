"""The real browser the UI tests drive (Debian's chromium under Playwright; `.ci/run` installs it), and the question
every test that serves the app asks first: does it answer yet?"""

from __future__ import annotations

import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root, and quiet: without the networking flags Chromium keeps dialling hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def healthy(url: str) -> bool:
    """Whether the Streamlit server at `url` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
