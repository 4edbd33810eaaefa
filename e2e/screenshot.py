"""Write docs/screenshot.png (the movie table, a movie's ratings open, a cell being
edited) and docs/keys.png (the grid's keys, as "?" shows them).

Run `.venv/bin/python -m e2e.screenshot` to refresh it. It serves the demo
catalogue from a temporary database, exactly as the browser tests do.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from e2e.browser import LAUNCH_ARGS, executable_path
from e2e.conftest import BIN, ROOT, flask, free_port, wait_until_up

OUTPUT = ROOT / "docs" / "screenshot.png"
KEYS = ROOT / "docs" / "keys.png"
EXPANDED = "2001: A Space Odyssey"


def main() -> None:
    """Serve the demo data, open the table, expand a row, take the picture."""
    chromium = executable_path()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": "sqlite:///" + str(Path(tmp) / "shot.sqlite3"),
            "SECRET_KEY": "screenshot",
        }
        flask(["db", "upgrade"], env)
        flask(["seed"], env)
        port = free_port()
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "--no-control-socket", "--bind",
             f"127.0.0.1:{port}", "app:create_app()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, server)
            with sync_playwright() as p:
                browser = p.chromium.launch(args=LAUNCH_ARGS, executable_path=chromium)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(url + "/movies")
                page.get_by_role("button", name=f"Show ratings for {EXPANDED}").click()
                expect(
                    page.get_by_role("table", name=f"Ratings of {EXPANDED}")
                ).to_be_visible()
                # A rating being typed over, as a person would (type to replace).
                page.locator("#movie-rows > tr.data-row").nth(1).locator(
                    'td[data-field="rating"]'
                ).focus()
                page.keyboard.type("8.7")
                page.mouse.move(0, 0)
                OUTPUT.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(OUTPUT), animations="disabled")
                page.keyboard.press("Escape")
                page.keyboard.press("?")
                keys = page.locator("details.grid-keys")
                expect(keys).to_have_attribute("open", "")
                keys.screenshot(path=str(KEYS), animations="disabled")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"Wrote {OUTPUT.relative_to(ROOT)} and {KEYS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
