"""The web UI end to end in headless Chromium: ask and see a cited answer stream in; upload a document and see
the next answer use it. Skips when chromium/chromedriver/selenium are absent."""

from __future__ import annotations

import os
import shutil

import pytest
from serve_helpers import ADMIN_KEY, LiveServer, make_app

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)"),
]


@pytest.fixture()
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver, predicate, timeout: float = 20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: predicate(d))


def text_of(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def ask(driver, question: str) -> None:
    box = driver.find_element("id", "question")
    box.clear()
    box.send_keys(question)
    driver.execute_script("document.getElementById('status').textContent = ''")
    driver.find_element("id", "ask").click()
    wait_for(driver, lambda d: text_of(d, "status") in ("done",) or "error" in (d.find_element("id", "status").get_attribute("class") or ""))
    assert text_of(driver, "status") == "done"


def test_ask_then_upload_then_ask_again(tmp_path, browser):
    from selenium.webdriver.common.keys import Keys

    # whole passages: the hashing test embedder cuts them arbitrarily, and the scripted model repeats source [1]
    app, _, _ = make_app(tmp_path, arms=("rag", "base"), context_sentences=0)
    with LiveServer(app) as url:
        browser.get(url + "/")
        browser.find_element("id", "api-key").send_keys(ADMIN_KEY + Keys.TAB)  # 'change' → reload models and documents
        wait_for(browser, lambda d: text_of(d, "status") == "ready" and "leave.md" in text_of(d, "doc-list"))
        options = [o.get_attribute("value") for o in browser.find_elements("css selector", "#arm option")]
        assert options == ["rag", "base"]

        ask(browser, "How many days of annual leave do staff get?")
        assert text_of(browser, "answer").startswith("Staff get 27 days of annual leave")
        assert "[1]" in text_of(browser, "answer")
        assert "Leave policy" in text_of(browser, "sources") and "leave.md" in text_of(browser, "sources")

        note = tmp_path / "canteen-hours.md"
        note.write_text("# Canteen hours\n\nThe canteen opens at 7am on weekdays and closes at 3pm.\n", encoding="utf-8")
        browser.find_element("id", "doc-file").send_keys(str(note))
        browser.find_element("id", "upload").click()
        wait_for(browser, lambda d: "canteen-hours.md" in text_of(d, "doc-list"))
        assert text_of(browser, "status").startswith("added canteen-hours.md")

        ask(browser, "When does the canteen open on weekdays?")
        assert text_of(browser, "answer").startswith("The canteen opens at 7am")
        assert "Canteen hours" in text_of(browser, "sources")
        shot = os.environ.get("RAGTUNE_UI_SCREENSHOT") or str(tmp_path / "ui.png")
        assert browser.save_screenshot(shot)

        row = browser.find_element("css selector", '#doc-list li[data-id="canteen-hours.md"] button')
        row.click()
        wait_for(browser, lambda d: "canteen-hours.md" not in text_of(d, "doc-list"))
