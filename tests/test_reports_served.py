"""The run's reports open where people look: from `contacts serve`, offline, behind the sign-in.

One real night (generated exports, Dagster in process with a DAGSTER_HOME, so its metadata is
recorded), then: Splink's dashboards and the GX data docs open in Chromium with every request
outside 127.0.0.1 aborted; nothing is served without a sign-in or outside the two report
folders; the metadata links the served addresses.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlparse

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from assets.names import MATCHING_REPORTS, SNAPSHOT
from assets.quality import CHECK_QUALITY_SUITES, EXPORTS
from assets.report_links import report_link
from assets.resources import ContactsSettings
from contacts.runner import RunSummary
from contacts.web import create_app
from dedup.layout import StateLayout
from dedup.report_urls import DEFAULT_REPORTS_URL, REPORTS_URL_ENV, report_url
from pipelines.nightly import fill_counts
from quality.data_docs import CDN_FILES, VENDOR
from tests.conftest import copy_night
from tests.webauth import LOCAL, serving, sign_in_browser, signed_in_client

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def world(generated_night: Path, tmp_path_factory: pytest.TempPathFactory):
    """A published file after one night, and the Dagster metadata that night recorded.

    The night is the session's shared one (generated exports, run with DAGSTER_HOME and no
    CONTACTS_REPORTS_URL); these tests add admins and files beside the reports, so they serve
    a private copy of its published file and state folder."""
    root = tmp_path_factory.mktemp("reports")
    exports, db = root / "exports", root / "out" / "contacts.duckdb"
    copy_night(generated_night, exports, db)
    summary = RunSummary(db_path=db)
    fill_counts(summary)  # the run's summary: its counts are read from the published file
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(generated_night / "dagster"))
        instance = dg.DagsterInstance.get()
        try:
            metadata = {
                asset: instance.get_latest_materialization_event(
                    dg.AssetKey(asset)
                ).asset_materialization.metadata  # type: ignore[union-attr]
                for asset in (MATCHING_REPORTS, EXPORTS)
            }
            check = dg.AssetCheckKey(dg.AssetKey(SNAPSHOT), CHECK_QUALITY_SUITES)
            record = instance.event_log_storage.get_latest_asset_check_execution_by_key([check])
            evaluation = record[check].event.dagster_event.event_specific_data  # type: ignore[union-attr]
            metadata[CHECK_QUALITY_SUITES] = evaluation.metadata
        finally:
            instance.dispose()
    assert summary.pending_proposals > 0, "the dashboards need pending proposals"
    return db, metadata


@pytest.fixture
def server(world):
    db, _ = world
    with serving(create_app(db)) as base:
        yield base, db


class Offline:
    """A Chromium page that can reach only `base`: everything else is aborted and recorded,
    as are failed requests, script errors and console errors."""

    def __init__(self, browser, base: str) -> None:
        self.page = browser.new_context().new_page()
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.base = base

    def _route(self, route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def assert_clean(self) -> None:
        assert (self.blocked, self.failed, self.errors) == ([], [], [])


def test_splink_dashboards_and_data_docs_render_offline_in_chromium(server, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, db = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = Offline(browser, base)
        page = tab.page
        sign_in_browser(page, base, db)
        page.get_by_role("link", name="Reports").click()
        page.get_by_role("link", name=re.compile("Splink reports")).click()
        expect(page).to_have_url(f"{base}/reports/matching/")
        page.get_by_role("link", name=re.compile("Comparison viewer")).click()
        # Splink's own scripts (inline vega, d3, Observable runtime) drew the bar chart.
        expect(page.get_by_role("heading", name="Splink comparison viewer")).to_be_visible()
        chart = page.locator("#observablehq-comparison_vector_distribution_chart")
        expect(chart.locator("svg, canvas").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "comparison-viewer.png"))
        page.goto(f"{base}/reports/matching/cluster_studio.html")
        expect(page.locator("#observablehq-force-directed-chart svg, canvas").first).to_be_visible()

        page.goto(f"{base}/reports")
        page.get_by_role("link", name="Data docs: snapshot").click()
        # "Showing 1 to N of N rows" is written by bootstrap-table's script (jQuery, Bootstrap
        # before it): the page's scripts loaded and ran.
        expect(page.get_by_text(re.compile(r"Showing 1 to \d+ of \d+ rows")).first).to_be_visible()
        rows = page.locator("table tbody tr")
        expect(rows.first).to_be_visible()
        assert page.evaluate("typeof jQuery.fn.bootstrapTable") == "function"
        # Font Awesome's font loaded (the search box's trash icon).
        page.wait_for_function("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
        page.screenshot(path=str(tmp_path / "data-docs.png"))
        # A validation page (its address from the index; a click there navigates twice: GX's
        # row handler and the link, and the first navigation is reported as aborted).
        href = page.get_by_role("link", name="contacts", exact=True).first.get_attribute("href")
        page.goto(urljoin(page.url, href))
        expect(page.locator("body")).to_contain_text("must be greater than or equal to")

        page.goto(f"{base}/reports/quality/exports/contacts/")
        expect(page.get_by_text(re.compile(r"Showing 1 to \d+ of \d+ rows")).first).to_be_visible()
        tab.assert_clean()
        browser.close()


def test_reports_refused_without_sign_in(server) -> None:
    from playwright.sync_api import sync_playwright

    base, db = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        for path in ("/reports", "/reports/matching/comparison_viewer.html"):
            page.goto(base + path)
            assert urlparse(page.url).path == "/login"
            assert "Splink" not in page.content()
        browser.close()
    client = TestClient(create_app(db), base_url=LOCAL)
    for path in (
        "/reports/quality/snapshot/index.html",
        "/reports/quality/snapshot/static/vendor/jquery@3.7.1/dist/jquery.min.js",
    ):
        refused = client.get(path, follow_redirects=False)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")


def test_only_report_files_are_served(world) -> None:
    db, _ = world
    output = StateLayout(db).output_dir
    client = signed_in_client(db, name="paths")
    ok = client.get("/reports/matching/index.html")
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
    assert "connect-src 'none'" in ok.headers["content-security-policy"]
    assert client.get("/reports/matching/").text == ok.text
    folder = client.get("/reports/quality/snapshot", follow_redirects=False)
    assert (folder.status_code, folder.headers["location"]) == (
        307,
        "/reports/quality/snapshot/",
    )
    woff2 = client.get(
        "/reports/quality/snapshot/static/vendor/fontawesome-free@6.6.0/webfonts/fa-solid-900.woff2"
    )
    assert woff2.headers["content-type"] == "font/woff2"

    (output / "matching" / ".hidden.html").write_text("hidden")
    (output / "matching" / "decisions.html").symlink_to(StateLayout(db).decisions_path)
    (output / "quality" / "state").symlink_to(StateLayout(db).state_dir)
    try:
        for path in (
            "/reports/exports/contacts.csv",  # the exports folder is not a report
            "/reports/matching/%2e%2e/exports/contacts.csv",
            "/reports/matching/%2e%2e%2f%2e%2e%2fdecisions.duckdb",
            "/reports/quality/snapshot/..%5c..%5cexports%5ccontacts.csv",
            "/reports/matching/.hidden.html",
            "/reports/matching/decisions.html",  # a link to the decision log
            "/reports/quality/state/decisions.duckdb",  # through a linked folder
            "/reports/matching/nothing.html",
            "/reports/matching/index.html%00.png",
        ):
            assert client.get(path, follow_redirects=False).status_code == 404, path
    finally:
        for made in ("matching/.hidden.html", "matching/decisions.html", "quality/state"):
            (output / made).unlink()


def test_dagster_metadata_links_the_served_reports(world) -> None:
    db, metadata = world
    links = {
        name: value
        for entries in metadata.values()
        for name, value in entries.items()
        if isinstance(value, dg.UrlMetadataValue)
    }
    expected = {
        "comparison_viewer": "/reports/matching/comparison_viewer.html",
        "cluster_studio": "/reports/matching/cluster_studio.html",
        "match_weights": "/reports/matching/match_weights.html",
        "m_u_parameters": "/reports/matching/m_u_parameters.html",
        "index": "/reports/matching/index.html",
        "data_docs": "/reports/quality/snapshot/index.html",
        "contacts_data_docs": "/reports/quality/exports/contacts/index.html",
        "merge_proposals_data_docs": "/reports/quality/exports/merge_proposals/index.html",
    }
    assert {name: link.url for name, link in links.items()} == {
        name: DEFAULT_REPORTS_URL + path for name, path in expected.items()
    }
    # Each link opens (signed in) on the server `contacts serve` runs over this file.
    client = signed_in_client(db, name="metadata")
    for link in links.values():
        opened = client.get(urlparse(link.url).path)
        assert opened.status_code == 200 and opened.headers["content-type"].startswith("text/html")


def test_report_addresses_follow_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "contacts.duckdb"
    output = StateLayout(db).output_dir
    page = output / "quality" / "snapshot" / "index.html"
    monkeypatch.setenv(REPORTS_URL_ENV, "https://contacts.example.org/")
    assert (
        report_url(output, page)
        == "https://contacts.example.org/reports/quality/snapshot/index.html"
    )
    assert report_url(output, output / "exports" / "contacts.csv") is None
    # Reports written outside the state folder (`output_dir`) cannot be served: a path, not a URL.
    elsewhere = ContactsSettings(
        exports_dir=str(tmp_path), db_path=str(db), output_dir=str(tmp_path / "reports")
    )
    link = report_link(elsewhere, tmp_path / "reports" / "matching" / "index.html")
    assert isinstance(link, dg.PathMetadataValue)


def test_every_cdn_of_the_gx_templates_is_vendored() -> None:
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    named = {
        m.group(1)
        for t in templates.glob("*.j2")
        for m in re.finditer(r'(?:src|href)="(https://[^"]+)"', t.read_text(encoding="utf-8"))
        if not re.search(r"greatexpectations\.io|github\.com|\{\{", m.group(1))
    }
    assert named == set(CDN_FILES)
    assert all((VENDOR / path).is_file() for path in CDN_FILES.values())
