"""The MLflow UI as a user meets it: ``cropsearch ui``'s printed link in headless Chromium.

Checks what ``docs/results.md`` promises ("Browsing results"): the link opens the study in
MLflow's "Model training" mode (the bare experiment link opens the GenAI overview, checked first
so the mode check can fail), the trial runs fold under the study's parent run, a metric column
shows their values, and a trial's ``crop_samples.png`` is displayed. Screenshots go to
``<tmp>/screenshots``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); without them
the test is skipped with that reason, and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError

import pytest
from conftest import SearchRun, require_program
from mlflow.tracking import MlflowClient
from PIL import Image
from servers import free_port

pytestmark = pytest.mark.slow  # trains real models, starts a server and a browser

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 60  # seconds for a page or an element (the UI's first load is ~5-15 s here)

require_program(
    os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK),
    "Debian's chromium and chromium-driver",
    "apt-get install -y chromium chromium-driver",
)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

EXPANDER = 'button[data-component-id*="runnamecellrenderer"]'
RUN_NAMES = '[role="gridcell"][col-id="attributes.`Run Name`"]'
LEFT = ".ag-pinned-left-cols-container"  # the rows' pinned part, with the run names
METRIC = "val_accuracy"


@pytest.fixture
def ui_link(tiny_search: SearchRun, tmp_path: Path) -> Iterator[str]:
    """``cropsearch ui`` on the tiny search's store: the runs link it prints, once it serves."""
    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-c", "import sys; from search.cli import main; sys.exit(main())",
                "ui", "--tracking-uri", tiny_search.tracking_uri, "--storage", tiny_search.storage,
                "--port", str(port),
            ],
            stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.read() == b"OK":
                        break
            except (URLError, ConnectionError):
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "MLflow UI did not start in 90 s"
            time.sleep(0.5)
        printed = re.search(r"runs of study 'tiny': (\S+)", log.read_text())
        assert printed is not None, log.read_text()
        yield printed.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager look for downloads
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--window-size=1600,900",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, condition: object, what: str) -> object:
    return WebDriverWait(driver, WAIT).until(condition, f"waited {WAIT} s for {what}")


def _sidebar(driver: WebDriver) -> list[str]:
    return driver.find_element(By.TAG_NAME, "nav").text.splitlines()


def _rows(driver: WebDriver) -> dict[str, str]:
    """Run id -> row index of the rows the runs table shows (rows are keyed by run id)."""
    rows = driver.find_elements(By.CSS_SELECTOR, f'{LEFT} [role="row"][row-id]')
    return {row.get_attribute("row-id"): row.get_attribute("row-index") for row in rows}


def _click(driver: WebDriver, element: WebElement) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _close_assistant(driver: WebDriver) -> None:
    selector = 'button[data-component-id="mlflow.assistant.chat_panel.close"]'
    for button in driver.find_elements(By.CSS_SELECTOR, selector):
        button.click()


def test_ui_link_shows_the_study_in_model_training_mode(
    tiny_search: SearchRun, ui_link: str, browser: WebDriver, tmp_path: Path
) -> None:
    client = MlflowClient(tiny_search.tracking_uri)
    experiment = client.get_experiment_by_name(tiny_search.study)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("cropsearch.role") == "study")
    trials = [r for r in runs if r.data.tags.get("cropsearch.role") == "trial"]
    assert sum(r.data.tags.get("stage") == "search" for r in trials) == 2  # and confirmation's
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    base, _, route = ui_link.partition("/#/")
    assert route == f"experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    shots = tmp_path / "screenshots"
    shots.mkdir()

    # Control: the bare experiment link lands in the GenAI mode (no Runs in the sidebar).
    browser.get(f"{base}/#/experiments/{experiment.experiment_id}")
    _wait(browser, lambda d: "Overview" in _sidebar(d), "the GenAI overview")
    assert "Runs" not in _sidebar(browser)

    # The printed link, opened afresh as a user opens it (not as a hash change of the page
    # above, which the app may still be loading): the runs table in the Model training mode.
    browser.get("about:blank")
    browser.get(ui_link)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, EXPANDER), "the runs table")
    sidebar = _sidebar(browser)
    assert {"Runs", "Models"} <= set(sidebar) and "Overview" not in sidebar, sidebar
    crumb = browser.find_element(By.CSS_SELECTOR, 'a[data-testid="experiment-link"]')
    assert crumb.text == tiny_search.study
    _close_assistant(browser)

    # Trial runs are folded under the parent run: hidden, then shown below it by its expander.
    assert _rows(browser) == {parent.info.run_id: "0"}
    browser.find_element(By.CSS_SELECTOR, EXPANDER).click()
    expected = {parent.info.run_id, *(r.info.run_id for r in trials)}
    _wait(browser, lambda d: set(_rows(d)) == expected, "the trial runs under the parent")
    assert _rows(browser)[parent.info.run_id] == "0"
    names = browser.find_elements(By.CSS_SELECTOR, f"{LEFT} {RUN_NAMES} a")
    assert {a.text for a in names} == {r.info.run_name for r in [parent, *trials]}

    # A metric column: MLflow 3.17 shows none by default; add it as a user would.
    columns = next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == "Columns")
    columns.click()
    choice = f'//*[@role="dialog"]//*[text()="{METRIC}"]'
    _wait(browser, lambda d: d.find_elements(By.XPATH, choice), "the column chooser")
    browser.find_element(By.XPATH, choice).click()
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    header = f'[role="columnheader"][col-id="metrics.`{METRIC}`"]'
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, header), "the metric column")
    for trial in trials:
        cell = f'[row-id="{trial.info.run_id}"] [col-id="metrics.`{METRIC}`"]'
        shown = browser.find_element(By.CSS_SELECTOR, cell).text
        assert float(shown) == pytest.approx(trial.data.metrics[METRIC])
    browser.execute_script(
        "arguments[0].scrollIntoView({inline: 'center'})",
        browser.find_element(By.CSS_SELECTOR, header),
    )
    browser.save_screenshot(str(shots / "runs.png"))

    # A trial run's crop_samples.png, from its page's Artifacts tab.
    trial = next(r for r in trials if r.data.tags.get("stage") == "search")
    _click(browser, browser.find_element(By.LINK_TEXT, trial.info.run_name))
    tab = '//button[@role="tab"][text()="Artifacts"]'
    _wait(browser, lambda d: d.find_elements(By.XPATH, tab), "the run page")
    assert trial.info.run_id in browser.current_url
    browser.find_element(By.XPATH, tab).click()
    entry = '//*[text()="crop_samples.png"]'
    _wait(browser, lambda d: d.find_elements(By.XPATH, entry), "the artifact list")
    browser.find_element(By.XPATH, entry).click()
    picture = 'img[src^="blob:"]'
    size = "return [arguments[0].complete, arguments[0].naturalWidth, arguments[0].naturalHeight]"

    def displayed(driver: WebDriver) -> list[int] | None:
        for image in driver.find_elements(By.CSS_SELECTOR, picture):
            complete, width, height = driver.execute_script(size, image)
            if complete and width and image.is_displayed():
                return [width, height]
        return None

    shown_size = _wait(browser, displayed, "crop_samples.png")
    local = client.download_artifacts(trial.info.run_id, "crop_samples.png", str(tmp_path))
    with Image.open(local) as png:
        assert shown_size == list(png.size)
    _close_assistant(browser)
    browser.save_screenshot(str(shots / "crop_samples.png"))
    if folder := os.environ.get("CROPSEARCH_SCREENSHOTS"):  # docs/results.md's pictures
        shutil.copytree(shots, folder, dirs_exist_ok=True)
