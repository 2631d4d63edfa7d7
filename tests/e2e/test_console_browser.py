"""The operator console in a real headless browser: the distribution's Chromium driven by Selenium
(`chromium` and `chromium-driver` from apt; `make test` installs them). It loads, asks for the
admin key, shows the numbers `/metrics` shows, and updates after traffic.

With `AINFERA_CONSOLE_SCREENSHOT=<path>` it also saves a screenshot of the console after the
traffic (how docs/console.png is made)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.e2e.conftest import ADMIN_KEY, System

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), (
        "the browser test needs the distribution's chromium and chromium-driver (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1600"):
        options.add_argument(arg)
    # An explicit driver: Selenium then downloads nothing.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(check: Callable[[], Any], timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "the console did not show it in time"
        time.sleep(0.2)


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def scraped(system: System) -> dict[str, float]:
    """From /metrics: API requests (the /v1/ routes, as the console counts them) and each queue's depth."""
    body = httpx.get(f"{system.base_url}/metrics", timeout=10).text
    found: dict[str, float] = {"requests": 0.0}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == "ainfera_http_requests_total" and s.labels.get("route", "").startswith("/v1/"):
                found["requests"] += s.value
            elif s.name == "ainfera_queue_depth":
                found[f"queue:{s.labels['queue']}"] = s.value
    return found


def shown_queues(driver: webdriver.Chrome) -> dict[str, float]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#queues tr")
    return {f"queue:{cells[0].text}": float(cells[1].text)
            for r in rows if len(cells := r.find_elements(By.TAG_NAME, "td")) == 3}


def test_the_console_shows_what_metrics_shows_and_updates_after_traffic(system: System, browser):
    browser.get(f"{system.base_url}/console")
    # No data without the admin key: the page asks for it first.
    assert browser.find_element(By.ID, "login").is_displayed()
    assert not browser.find_element(By.ID, "console").is_displayed()
    browser.find_element(By.ID, "key").send_keys(ADMIN_KEY)
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    until(lambda: text(browser, "status").startswith("updated"))

    # What it shows is what /metrics says (read again on each try: a call another test left
    # running may still end meanwhile).
    until(lambda: float(text(browser, "requests-total")) == scraped(system)["requests"])
    until(lambda: shown_queues(browser) == {k: v for k, v in scraped(system).items() if k.startswith("queue:")})

    tenant = system.new_tenant("console")
    client = system.openai_client(tenant["api_key"])
    before = float(text(browser, "requests-total"))
    pinned = client.chat.completions.create(model="llama-3.3-70b@groq", max_tokens=16,
                                            messages=[{"role": "user", "content": "Name a river."}])
    auto = client.chat.completions.create(model="ainfera-auto", max_tokens=16,
                                          messages=[{"role": "user", "content": "Name a mountain."}])
    routed = auto.model  # the slug that answered

    # After the traffic, the next refresh shows it: two more requests, the decisions, the spend.
    until(lambda: float(text(browser, "requests-total")) >= before + 2)
    until(lambda: float(text(browser, "requests-total")) == scraped(system)["requests"])
    decisions = until(lambda: [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#decisions tr")
                               if "llama-3.3-70b@groq" in r.text or routed in r.text])
    assert any("ainfera-auto" in d and routed in d for d in decisions), decisions
    assert any("is first of" in d for d in decisions)  # the router's own reason is shown
    until(lambda: [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#spend tr") if pinned.model in r.text])
    assert text(browser, "p50") not in ("", "\u2013")  # a figure, not the placeholder dash

    if path := os.environ.get("AINFERA_CONSOLE_SCREENSHOT"):
        browser.save_screenshot(path)
