"""Regenerate docs/img/review-*.png from a published file (a demo's, by default).

.venv/bin/python docs/img/review_screenshots.py contacts-demo/contacts.duckdb
"""

import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from contacts.web import create_app
from dedup.service.admins import AdminError, add_admin, admins_path, remove_admin
from dedup.service.review import review_queue

OUT = Path(__file__).parent


def main(db: Path, port: int = 8799) -> None:
    server = uvicorn.Server(
        uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    queue = review_queue(db)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        # Signed in as a throwaway admin "ann", removed again afterwards.
        try:
            token = add_admin(admins_path(db), "ann")
        except AdminError:
            sys.exit("admin ann exists; remove it (contacts admin remove ann) or pick another name")
        page.goto(f"http://127.0.0.1:{port}/login")
        page.fill('input[name="name"]', "ann")
        page.fill('input[name="secret"]', token)
        page.locator('#signin button[type="submit"]').click()
        page.wait_for_url(f"http://127.0.0.1:{port}/proposals")
        if queue:
            page.goto(f"http://127.0.0.1:{port}/proposals/{queue[0]['proposal_id']}")
            page.screenshot(path=str(OUT / "review-card.png"), full_page=True)
        page.goto(f"http://127.0.0.1:{port}/proposals")
        page.screenshot(path=str(OUT / "review-queue.png"), full_page=True)
        browser.close()
    remove_admin(admins_path(db), "ann")
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "contacts-demo/contacts.duckdb"))
