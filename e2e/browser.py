"""Find (or install) a Chromium for Playwright: its own build, else Debian's package.

Run as `python -m e2e.browser` to make sure one exists; it prints the path used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

DEBIAN_CHROMIUM = "/usr/bin/chromium"

# Flags for a sandboxed CI container with no network beyond loopback: without the
# background-networking ones Chromium retries blocked connections at every start.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def slow_network(page: Any, latency_ms: int = 200) -> None:
    """Add `latency_ms` to every request of this page (Chromium's CDP emulation)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": latency_ms,
            "downloadThroughput": -1,
            "uploadThroughput": -1,
        },
    )


def playwright_chromium() -> str | None:
    """Path of Playwright's own Chromium if it is installed, else None."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        path = p.chromium.executable_path
    return path if path and Path(path).exists() else None


def executable_path() -> str | None:
    """The Chromium to launch: $CHROMIUM_PATH, Playwright's own, or Debian's.

    None means "let Playwright use its default" (its own build).
    """
    if os.environ.get("CHROMIUM_PATH"):
        return os.environ["CHROMIUM_PATH"]
    if playwright_chromium():
        return None
    if Path(DEBIAN_CHROMIUM).exists():
        return DEBIAN_CHROMIUM
    return None


def ensure() -> str:
    """Make sure a Chromium exists, installing one if needed; return its path."""
    own = playwright_chromium()
    if own:
        return own
    if Path(DEBIAN_CHROMIUM).exists():
        return DEBIAN_CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Debian's chromium package for the browser tests...")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        return DEBIAN_CHROMIUM
    print("Installing Playwright's Chromium for the browser tests...")
    subprocess.run(
        [sys.executable, "-m", "playwright", "install", "chromium"], check=True
    )
    own = playwright_chromium()
    if not own:
        raise SystemExit("No Chromium could be installed for the browser tests.")
    return own


if __name__ == "__main__":
    print(f"Browser tests use Chromium at {ensure()}")
