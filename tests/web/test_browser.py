"""The dashboard in a real headless Chromium (Debian's), driven by Playwright, against a real `exp ui`.

Screenshots of each case go to the test's tmp folder (shown by pytest on failure).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from expledger.models import Status
from expledger.store import open_store

from .conftest import served

CHROMIUM = "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (pip install playwright)")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"the browser tests need Debian's Chromium at {CHROMIUM} (apt install chromium)")

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_SUMMARY = "<script>window.pwned = 1; alert(2)</script> 中文摘要"
NAMES = ["delta", "alpha", "echo", "charlie", "bravo"]

# A training loop under the Python API: logs a point every 50 ms until told to stop.
LIVE = """
import sys, time, pathlib, expledger
stop = pathlib.Path(sys.argv[2])
with expledger.start(name="live run", task="asr", store=sys.argv[1]) as run:
    step = 0
    while not stop.exists() and step < 20000:
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        step += 1
        time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A ledger: five runs named out of order (EXP-001..005, acc 0.1..0.5, with loss curves), one queued,
    one whose name and summary try to inject HTML."""
    folder = tmp_path_factory.mktemp("ui")
    url = str(folder / "memory" / "experiments" / "experiments.jsonl")
    with open_store(url) as store:
        for n, name in enumerate(NAMES, start=1):
            exp = store.add(name=name, task="asr", model="m", params={"lr": n / 100}, command="python train.py")
            store.result(exp.id, status=Status.SUCCESS, metrics={"acc": n / 10})
            steps = list(range(5000))
            store.append_steps(exp, {"loss": (steps, [math.exp(-s / (500 * n)) for s in steps])})
            if n == len(NAMES):  # output kept in the store, as a runner on another machine sends it
                store.put_output(store.get(exp.id), 3000, "".join(f"epoch {i}\n" for i in range(60)).encode())
        store.add(name="waiting", task="asr", command="python train.py")  # EXP-006
        xss = store.add(name=XSS_NAME, task="asr")  # EXP-007
        store.result(xss.id, status=Status.FAILED, summary=XSS_SUMMARY)
    return folder, url


@pytest.fixture(scope="module")
def server(workspace):
    folder, url = workspace
    with served("--store", url, cwd=folder) as started:
        yield started["url"].rstrip("/")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.dialogs = []
    opened.errors = []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    opened.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    context.close()
    assert not opened.errors, opened.errors


def shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def until(page, expression: str, timeout: float = 30) -> None:
    """Wait until a JavaScript expression holds. (Playwright's wait_for_function evaluates with
    eval(), which the dashboard's CSP rightly refuses; page.evaluate goes through the debugger.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def column(page, css: str) -> list[str]:
    return page.locator(f"#experiments tbody {css}").all_inner_texts()


def test_the_table_loads_and_filters_with_a_where_expression(page, server, tmp_path):
    page.goto(server + "/")
    page.wait_for_selector("#experiments tbody tr")
    assert page.title() == "Experiments · expledger"
    assert len(column(page, "td.id")) == 7
    assert page.locator(".chip[aria-pressed=true]").inner_text().startswith("All")
    page.fill("#where", "metrics.acc >= 0.3 and task = asr")
    page.press("#where", "Enter")
    until(page, "document.querySelectorAll('#experiments tbody tr').length === 3")
    assert column(page, "td.id") == ["EXP-005", "EXP-004", "EXP-003"]
    assert "where=metrics.acc" in page.url
    shot(page, tmp_path, "filtered")
    page.reload()  # the filter lives in the URL
    page.wait_for_selector("#experiments tbody tr")
    assert page.input_value("#where") == "metrics.acc >= 0.3 and task = asr"
    assert len(column(page, "td.id")) == 3


def test_a_bad_expression_shows_its_error(page, server, tmp_path):
    page.goto(server + "/")
    page.wait_for_selector("#experiments tbody tr")
    page.fill("#where", "metrics.acc >= ")
    page.press("#where", "Enter")
    error = page.locator("#where-error")
    error.wait_for(state="visible")
    assert "column" in error.inner_text() and "expected a value" in error.inner_text()
    assert page.get_attribute("#where", "aria-invalid") == "true"
    shot(page, tmp_path, "bad-where")


def test_sorting_by_a_column(page, server, tmp_path):
    page.goto(server + "/?status=success")
    page.wait_for_selector("#experiments tbody tr")
    page.click("button.sort[data-field=name]")
    until(page, "location.search.includes('sort=name')")
    until(page, "document.querySelector('#experiments tbody td.name').textContent === 'alpha'")
    assert column(page, "td.name") == sorted(NAMES)
    page.click("button.sort[data-field=name]")  # again: descending
    until(page, "document.querySelector('#experiments tbody td.name').textContent === 'echo'")
    assert column(page, "td.name") == sorted(NAMES, reverse=True)
    assert page.get_attribute("th[aria-sort=descending] button", "data-field") == "name"
    shot(page, tmp_path, "sorted")


def test_an_experiment_page_charts_its_points(page, server, tmp_path):
    page.goto(server + "/exp/EXP-002")
    chart = page.locator(".chart[data-metric=loss]")
    chart.wait_for()
    until(page, "document.querySelector('.chart[data-metric=loss]').dataset.total === '5000'")
    assert page.title() == "EXP-002 alpha · expledger"
    drawn = int(chart.get_attribute("data-points"))
    assert 100 < drawn <= 2000  # downsampled on the server
    assert chart.locator("canvas").count() == 1
    page.click(".full-toggle")
    until(page, "document.querySelector('.chart[data-metric=loss]').dataset.points === '5000'")
    shot(page, tmp_path, "experiment")


def test_an_experiment_page_shows_the_output_kept_in_the_store(page, server, tmp_path):
    """No log files here (the run was on another machine): the page shows what `exp logs` reads."""
    page.goto(server + "/exp/EXP-005")
    block = page.locator("section.output pre")
    block.wait_for()
    lines = block.inner_text().splitlines()
    assert lines[0] == "epoch 20" and lines[-1] == "epoch 59" and len(lines) == 40
    assert "of 3000 bytes" in page.locator("section.output").inner_text()
    shot(page, tmp_path, "output")


def test_two_runs_compared_with_overlaid_curves(page, server, tmp_path):
    page.goto(server + "/")
    page.wait_for_selector("#experiments tbody tr")
    page.check("input[aria-label='Select EXP-001']")
    page.check("input[aria-label='Select EXP-003']")
    page.click("#compare-selected")
    page.wait_for_url("**/compare?ids=*")
    chart = page.locator(".chart[data-metric=loss]")
    chart.wait_for()
    assert chart.get_attribute("data-runs") == "2"
    assert chart.locator(".u-legend .u-series").count() == 3  # the step axis and two runs
    assert page.locator("#comparison td.best").inner_text().startswith("0.3")  # acc: higher is better
    assert page.locator("#comparison tr.differ th").all_inner_texts() == ["lr"]
    shot(page, tmp_path, "compare")


def test_a_queued_experiment_cancelled_from_the_page(page, server, workspace, tmp_path):
    folder, url = workspace
    page.goto(server + "/exp/EXP-006")
    page.click("button[data-action=cancel]")
    page.wait_for_selector(".exp-head .badge.st-CANCELLED")
    shot(page, tmp_path, "cancelled")
    shown = subprocess.run([sys.executable, "-m", "expledger", "show", "EXP-006", "--json", "--store", url],
                           capture_output=True, text=True, cwd=folder, check=True)
    assert json.loads(shown.stdout)["experiment"]["status"] == "CANCELLED"


def running_with_steps(url: str, runner: subprocess.Popen) -> str:
    """The ID of the live run once it has logged steps."""
    with open_store(url) as store:
        for _ in range(600):
            assert runner.poll() is None, "the live run ended early"
            found = store.search(status=(Status.RUNNING,), sort="-id", limit=1)
            if found and store.read_steps(found[0]).get("loss"):
                return found[0].id
            time.sleep(0.1)
    raise AssertionError("the live run logged no step in 60 s")


def test_a_running_experiment_updates_without_a_reload(page, server, workspace, tmp_path):
    folder, url = workspace
    stop = tmp_path / "stop"
    runner = subprocess.Popen([sys.executable, "-c", LIVE, url, str(stop)], cwd=folder)
    try:
        exp_id = running_with_steps(url, runner)
        page.goto(f"{server}/exp/{exp_id}")
        page.wait_for_selector(".exp-head .badge.st-RUNNING")
        page.wait_for_selector(".chart[data-metric=loss]")
        first = int(page.get_attribute(".chart[data-metric=loss]", "data-total"))
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        until(page, f"Number(document.querySelector('.chart[data-metric=loss]').dataset.total) > {first}")
        assert page.evaluate("window.__sameDocument") is True
        shot(page, tmp_path, "live")
        stop.touch()
        runner.wait(timeout=60)
        page.wait_for_selector(".exp-head .badge.st-SUCCESS", timeout=30_000)
    finally:
        stop.touch()
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_user_text_is_inert(page, server, tmp_path):
    page.goto(server + "/")
    page.wait_for_selector("#experiments tbody tr")
    assert XSS_NAME in column(page, "td.name")
    assert page.locator("main img").count() == 0
    page.goto(server + "/exp/EXP-007")
    page.wait_for_selector("p.summary")
    assert page.inner_text("p.summary") == XSS_SUMMARY
    assert page.inner_text(".exp-head h1 .name") == XSS_NAME
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.title() == f"EXP-007 {XSS_NAME} · expledger"
    shot(page, tmp_path, "inert")
    assert page.dialogs == []
