"""End-to-end: headless Chromium opens every page, checks the plots drew data, and clicks through lineage and comparison."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str | None:
    path = os.environ.get("MODELYARD_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if path and os.path.exists(path) else None


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    if path is None:
        pytest.skip("Chromium not found: install Debian's chromium or set MODELYARD_TEST_CHROMIUM (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def site(app_factory, tools):
    with tools.LiveServer(app_factory()) as server:
        yield server


@pytest.fixture
def page(browser, site):
    context = browser.new_context()
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # a 4xx the test provokes is logged as "Failed to load resource"; anything else is a bug
    pg.on("console", lambda m: errors.append(m.text)
          if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    pg.set_default_timeout(15000)
    yield pg
    context.close()
    assert not errors, f"browser errors: {errors}"


def points(page, selector: str) -> int:
    """The data-points count of the plot under ``selector`` (0 when none drew)."""
    return int(page.locator(f"{selector} svg.plot").first.get_attribute("data-points") or 0)


def test_studies_list_to_study_page_plots(page, site):
    page.goto(site.url + "/#/studies")
    page.get_by_role("link", name="demo").click()
    page.wait_for_selector("#plot-history svg.plot[data-kind=history]")
    assert points(page, "#plot-history") > 10
    assert page.locator("#plot-history circle.pt").count() == points(page, "#plot-history")
    assert page.locator("#plot-history path.best").count() == 1
    assert points(page, "#plot-parallel") > 5
    assert page.locator("#plot-parallel path.pc-line").count() == points(page, "#plot-parallel")
    assert page.locator("#plot-curves path.curve[data-state=pruned]").count() > 0
    assert page.locator("#plot-curves path.curve[data-state=complete]").count() > 0
    assert page.locator("table tbody tr").count() == 26
    page.locator("select[aria-label='state filter']").select_option("pruned")
    page.wait_for_function("() => [...document.querySelectorAll('table tbody tr td:nth-child(2)')]"
                           ".every(td => td.textContent === 'pruned')")


def test_study_page_updates_while_trials_arrive(page, site, seeded, tools):
    yard, _, _ = seeded
    tools.make_study(yard, name="live", n=4)
    page.goto(site.url + "/#/studies/live")
    page.wait_for_selector("#plot-history svg.plot")
    before = points(page, "#plot-history")
    worker = threading.Thread(target=tools.add_trials, args=(yard.studies, "live", 6), kwargs={"seed": 5})
    worker.start()
    worker.join()
    page.wait_for_function(
        f"() => +document.querySelector('#plot-history svg.plot').getAttribute('data-points') > {before}",
        timeout=15000)
    assert points(page, "#plot-history") > before


def test_registry_version_lineage_click_through(page, site, seeded):
    _, _, refs = seeded
    page.goto(site.url + "/#/models")
    page.get_by_role("link", name="iris-lr", exact=True).click()
    page.wait_for_selector("text=Aliases")
    assert page.get_by_text("production").first.is_visible()
    page.get_by_role("link", name="iris-lr/2").first.click()
    page.wait_for_selector("#plot-lineage svg.plot[data-kind=lineage]")
    assert points(page, "#plot-lineage") >= 3
    assert int(page.locator("#plot-lineage svg.plot").get_attribute("data-edges")) >= 2
    labels = page.locator("#plot-lineage text.edge-label").all_text_contents()
    assert any("learning_rate" in t for t in labels) and any("weight_decay" in t for t in labels)
    assert points(page, "#plot-training") >= 3  # train and validation loss per epoch
    page.locator(f"#plot-lineage a.node[data-id='{refs['v3'].id}']").click()
    page.wait_for_function(f"() => location.hash.includes('{refs['v3'].id}')")
    page.wait_for_selector("h1:has-text('iris-lr/3')")
    assert page.locator("#plot-lineage a.node.current").get_attribute("data-id") == refs["v3"].id


def test_alias_history_page(page, site):
    page.goto(site.url + "/#/models/iris-lr/history?alias=production")
    page.wait_for_selector("table tbody tr")
    assert page.locator("table tbody tr").first.locator("td").nth(3).text_content() == "rollback"
    assert page.get_by_text("decay hurt").is_visible()


def test_compare_from_registry_selection(page, site):
    page.goto(site.url + "/#/models/iris-lr")
    page.get_by_label("select iris-lr/1").check()
    page.get_by_label("select iris-lr/2").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_selector("#refs")
    assert page.locator("#refs").input_value() == "iris-lr/1,iris-lr/2"
    page.fill("#dataset", "sklearn:iris")
    page.click("#run-compare")
    page.wait_for_selector("#leaderboard table", timeout=60000)
    assert page.locator("#leaderboard tbody tr").count() == 2
    assert page.locator("p.verdict").first.text_content().startswith("iris-lr/1 vs iris-lr/2: ")
    assert int(page.locator("svg.plot[data-kind=deltas]").first.get_attribute("data-points")) > 0
    assert page.locator("table.matrix").count() == 3  # McNemar's table and one confusion matrix per version
    assert page.locator("table.matrix").nth(1).locator("th", has_text="setosa").count() == 2  # true and predicted
    page.get_by_role("link", name="iris-lr/2").first.click()
    page.wait_for_selector("h1:has-text('iris-lr/2')")


def test_compare_error_is_shown(page, site):
    page.goto(site.url + "/#/compare?refs=iris-lr/1,iris-lr/2")
    page.fill("#dataset", "../outside.csv")
    page.click("#run-compare")
    page.wait_for_selector(".error")
    assert "outside the folders" in page.locator(".error").text_content()


def test_api_page_lists_endpoints(page, site):
    page.goto(site.url + "/#/api")
    page.get_by_text("/api/studies/{name}/history", exact=True).wait_for()
    assert page.locator("table tbody tr").count() >= 15
