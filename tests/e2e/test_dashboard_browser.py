"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium)
against `make dev` in a subprocess, with the receiver on 127.0.0.1.

One stack and one browser for the module; the tests run in file order, as a customer would: sign in,
create a hook, verify it, test it, watch deliveries, replay, rotate the secret, sign out.
Screenshots go to $DASHBOARD_SCREENSHOTS (`make screenshots` sets docs/), else to a temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import running_receiver
from tests.e2e.test_local_stack import DevStack, running
from tests.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

XSS = "<img src=x onerror=alert(1)>"
WAIT = 20  # seconds any one thing may take to show
WIDE, NARROW = (1280, 900), (375, 800)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    yield from running(DevStack(tmp_path_factory.mktemp("stack") / "stack.log"), ready=True)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("DASHBOARD_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[WebDriver]:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        if not (binary and driver):
            raise WebDriverException(
                "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
            )
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={WIDE[0]},{WIDE[1]}", "--lang=en-US"):  # fmt: skip
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        chrome = webdriver.Chrome(options=options, service=Service(driver))
    except WebDriverException as exc:
        # In CI a browser test that cannot run fails; on a developer's machine without the browser it skips.
        if os.environ.get("CI"):
            pytest.fail(f"the browser cannot start: {exc}")
        pytest.skip(f"no browser here: {exc.msg}")
    chrome.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield chrome
    finally:
        chrome.quit()


# -- helpers --------------------------------------------------------------------------------------


def wait(browser: WebDriver, what: str, check: Any, timeout: float = WAIT) -> Any:
    # Views re-render as answers arrive: an element found a moment ago may be gone; look again.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(browser, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(
        lambda _: check(), message=what
    )


def one(browser: WebDriver | WebElement, css: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, css)


def field(browser: WebDriver | WebElement, label: str) -> WebElement:
    """The control a visible label names (what a person reads, not an id)."""
    element = browser.find_element(By.XPATH, f"//label[normalize-space()={label!r}]")
    return browser.find_element(By.ID, element.get_attribute("for") or "")


def button(browser: WebDriver | WebElement, text: str) -> WebElement:
    return browser.find_element(By.XPATH, f".//button[normalize-space()={text!r}]")


def section(browser: WebDriver, title: str) -> WebElement:
    return browser.find_element(By.XPATH, f"//section[h2[normalize-space()={title!r}]]")


def notice(browser: WebDriver) -> str:
    return one(browser, "#notice").text


def log_rows(browser: WebDriver) -> list[list[str]]:
    # Read in one script: the log refreshes by itself, so elements found earlier may be gone.
    return list(
        browser.execute_script(
            """
            const log = [...document.querySelectorAll('section')].find(
              (s) => s.querySelector('h2')?.textContent === 'Delivery log');
            return [...log.querySelectorAll('tbody tr')].map(
              (row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent));
            """
        )
    )


def until_logged(browser: WebDriver, what: str, check: Any, timeout: float = WAIT) -> Any:
    """Waits for the log to show something, pressing Refresh rather than waiting for the page's own
    refresh (tested once, on the first delivery) to keep the run short."""

    def refreshed() -> Any:
        found = check()
        if not found:
            refresh = button(section(browser, "Delivery log"), "Refresh")
            if refresh.is_enabled():
                refresh.click()
        return found

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(browser, timeout, poll_frequency=0.5, ignored_exceptions=ignored).until(
        lambda _: refreshed(), message=what
    )


def no_alert(browser: WebDriver) -> bool:
    try:
        browser.switch_to.alert  # noqa: B018 (raises when there is none)
    except NoAlertPresentException:
        return True
    return False


def shot(browser: WebDriver, shots: Path, name: str, at: WebElement | None = None) -> None:
    browser.execute_script("arguments[0] ? arguments[0].scrollIntoView() : window.scrollTo(0, 0)", at)
    browser.save_screenshot(str(shots / f"dashboard-{name}.png"))


def send_event(stack: DevStack) -> None:
    click = {
        "type": "click",
        "id": "msg-1",
        "recipient": "jane@example.com",
        "original": "https://shop.example.com",
    }
    assert stack.call("POST", "/events", {"events": [click]}).status_code == 202


def unlabelled_controls(browser: WebDriver) -> list[str]:
    """Every visible control without an accessible name (label, aria-label, or its own text)."""
    return list(
        browser.execute_script(
            """
            return [...document.querySelectorAll('input, select, textarea, button, a[href]')]
              .filter((el) => el.offsetParent !== null)
              .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                              && !(el.textContent || '').trim())
              .map((el) => el.outerHTML.slice(0, 80));
            """
        )
    )


def overflows(browser: WebDriver) -> bool:
    return bool(browser.execute_script("return document.documentElement.scrollWidth > window.innerWidth + 1"))


# -- the customer's way through --------------------------------------------------------------------


class State:
    hook_url = ""


def test_the_page_carries_the_security_headers(stack: DevStack) -> None:
    for path in ("/", "/dashboard/app.js", "/dashboard/style.css"):
        answer = requests.get(stack.url + path, timeout=10)
        assert answer.status_code == 200
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_a_wrong_token_is_refused_and_the_right_one_signs_in(
    stack: DevStack, browser: WebDriver, shots: Path
) -> None:
    browser.get(stack.url + "/")
    token = wait(browser, "the sign-in form", lambda: field(browser, "Bearer token"))
    shot(browser, shots, "sign-in")
    token.send_keys("not-the-token", Keys.ENTER)
    wait(browser, "the refusal", lambda: "wrong or has expired" in one(browser, ".field-error").text)
    assert browser.execute_script("return sessionStorage.length") == 0
    token.clear()
    token.send_keys(stack.token, Keys.ENTER)  # the keyboard is enough
    wait(browser, "the hooks list", lambda: one(browser, "h1").text == "Hooks")
    # The token lives in this tab's sessionStorage only: not in the address, not in a cookie.
    assert browser.execute_script("return sessionStorage.getItem('webhooks.token')") == stack.token
    assert stack.token not in browser.current_url
    assert browser.get_cookies() == []


def test_create_shows_the_apis_errors_by_their_fields_then_creates(
    stack: DevStack, browser: WebDriver, receiver: Receiver, shots: Path
) -> None:
    one(browser, "a[href='#/new']").click()
    url = wait(browser, "the form", lambda: field(browser, "URL of your script"))
    button(browser, "Create hook").click()  # nothing filled in
    # The API's 422 names url and events; each message sits under its control.
    url_error = wait(browser, "the url error", lambda: url.find_element(By.XPATH, "following-sibling::p[1]"))
    wait(browser, "the url error's text", lambda: url_error.is_displayed() and "url" in url_error.text)
    assert url.get_attribute("aria-invalid") == "true"
    assert "events" in one(browser, "fieldset.events .field-error").text
    shot(browser, shots, "new-hook")

    url.clear()
    State.hook_url = f"{receiver.url}/dir/script.php"
    url.send_keys(State.hook_url)
    for event in ("click", "open"):
        one(browser, f"input[name=events][value={event}]").click()
    field(browser, "Description (optional)").send_keys(XSS)  # shown back as text
    button(browser, "Create hook").click()
    wait(browser, "the hook's page", lambda: one(browser, "h1").text == State.hook_url)
    assert "Publish its verification file" in notice(browser)
    assert one(browser, ".description").text == XSS


def test_the_downloaded_file_verifies_the_hook_without_a_reload(
    stack: DevStack, browser: WebDriver, receiver: Receiver, downloads: Path, shots: Path
) -> None:
    name = one(browser, ".file-name").text
    contents = one(browser, ".file-contents").text
    links = [
        a.get_attribute("href")
        for a in section(browser, "Verification").find_elements(By.CSS_SELECTOR, ".urls a")
    ]
    assert links == [f"{receiver.url}/dir/{name}", f"{receiver.url}/{name}"]
    button(browser, "Download the file").click()
    saved = downloads / name
    wait(browser, "the download", lambda: saved.exists() and saved.stat().st_size > 0)
    assert saved.read_text() == contents  # exactly that file
    receiver.files[urlsplit(links[0]).path] = saved.read_text()

    page = browser.execute_script("return performance.timeOrigin")
    check = section(browser, "Verification").find_elements(
        By.XPATH, ".//button[normalize-space()='Check now']"
    )
    if check:  # still there while the hook is not active
        check[0].click()
    wait(browser, "the status turns active", lambda: one(browser, ".heading .badge").text == "Active")
    assert browser.execute_script("return performance.timeOrigin") == page  # no reload
    wait(browser, "the last delivery read", lambda: "reading" not in one(browser, ".facts").text)
    shot(browser, shots, "hook")


def test_the_test_tool_shows_the_receivers_answer_as_text(
    stack: DevStack, browser: WebDriver, receiver: Receiver
) -> None:
    tool = section(browser, "Test tool")
    names = tool.find_elements(By.CSS_SELECTOR, "input[aria-label='Field name']")
    values = tool.find_elements(By.CSS_SELECTOR, "input[aria-label='Field value']")
    names[1].send_keys("recipient")
    values[1].send_keys("jane@example.com")
    before = len(receiver.posts)
    button(tool, "Send now").click()
    wait(browser, "the answer", lambda: tool.find_elements(By.CSS_SELECTOR, ".test-status"))
    assert one(tool, ".test-status").text == "200"
    assert one(tool, ".test-body").text == "ok"
    [post] = receiver.wait_for_posts(before + 1)[before:]
    assert b"recipient=jane%40example.com" in post.body

    # A receiver answering HTML: its characters are shown, nothing is run.
    receiver.replies.append((200, XSS.encode()))
    one(tool, "input[value=json]").click()
    data = field(tool, "Post data as JSON")
    data.clear()
    data.send_keys('{"type": "test", "n": 1}')
    button(tool, "Send now").click()
    wait(browser, "the HTML answer", lambda: one(tool, ".test-body").text == XSS)
    assert tool.find_elements(By.TAG_NAME, "img") == []
    assert no_alert(browser)


def test_a_delivery_shows_in_the_log_a_failure_too_and_replay_delivers_it(
    stack: DevStack, browser: WebDriver, receiver: Receiver, shots: Path
) -> None:
    send_event(stack)
    wait(browser, "the delivery in the log", lambda: any("succeeded" in r for r in log_rows(browser)))
    row = next(r for r in log_rows(browser) if "succeeded" in r)
    assert row[1:4] == ["click", "1 of 3", "200"]  # the stack's schedule allows three attempts

    # Every attempt (0, 1, 1 s apart) fails, answering HTML; then the delivery fails for good.
    receiver.replies.extend([(500, XSS.encode())] * 3)
    send_event(stack)
    until_logged(browser, "the failure in the log", lambda: any("failed" in r for r in log_rows(browser)))
    failures_only = field(browser, "Failures only")
    failures_only.click()
    outcomes = {"failed", "retrying"}
    wait(
        browser, "failures only", lambda: log_rows(browser) and {r[5] for r in log_rows(browser)} <= outcomes
    )
    assert any(r[3] == "500" for r in log_rows(browser))
    assert any(XSS in r[6] for r in log_rows(browser))  # the receiver's answer, as text
    assert section(browser, "Delivery log").find_elements(By.TAG_NAME, "img") == []
    assert no_alert(browser)
    shot(browser, shots, "log", section(browser, "Delivery log"))
    failures_only.click()
    wait(browser, "all outcomes again", lambda: any("succeeded" in r for r in log_rows(browser)))

    posts = len(receiver.posts)
    succeeded = sum("succeeded" in r for r in log_rows(browser))
    replay = section(browser, "Replay")
    # A range that ends before it starts: the API's 422 shows under "Until", nothing is queued.
    one(replay, "input[value=range]").click()
    since, until = field(replay, "From (UTC)"), field(replay, "Until (UTC)")
    browser.execute_script("arguments[0].value = '2026-01-02T00:00:00'", since)
    browser.execute_script("arguments[0].value = '2026-01-01T00:00:00'", until)
    button(replay, "Replay failed deliveries").click()
    wait(
        browser,
        "the range error",
        lambda: "later than since" in until.find_element(By.XPATH, "../p[@class='field-error']").text,
    )
    assert until.get_attribute("aria-invalid") == "true"
    one(replay, "input[value=all]").click()
    button(replay, "Replay failed deliveries").click()
    wait(
        browser,
        "how many were queued",
        lambda: one(replay, ".replay-result").text == "1 delivery queued again.",
    )
    until_logged(
        browser, "the replayed delivery", lambda: sum("succeeded" in r for r in log_rows(browser)) > succeeded
    )
    assert receiver.wait_for_posts(posts + 1)[posts:]  # the receiver got it
    replayed = next(r for r in log_rows(browser) if "succeeded" in r and "replay" in r[2])
    assert replayed[2] == "1 of 3 · replay 1"  # a replay is a run of its own, from its first attempt


def test_the_secret_is_hidden_until_revealed_and_rotates(browser: WebDriver) -> None:
    secret = section(browser, "Signing secret")
    assert "•" in one(secret, ".secret").text
    button(secret, "Reveal").click()
    wait(browser, "the secret", lambda: one(secret, ".secret").text.startswith("whsec_"))
    old = one(secret, ".secret").text
    button(secret, "Rotate…").click()
    wait(browser, "the rotation", lambda: "old one still signs too until" in one(secret, ".rotation").text)
    assert one(secret, ".secret").text.startswith("whsec_")
    assert one(secret, ".secret").text != old


def test_the_list_shows_the_hook_and_every_page_fits_375_px_with_labelled_controls(
    stack: DevStack, browser: WebDriver, shots: Path
) -> None:
    hook_page = browser.current_url
    for size, suffix in ((WIDE, ""), (NARROW, "-375px")):
        browser.set_window_size(*size)
        browser.get(stack.url + "/#/")
        wait(browser, "the list", lambda: browser.find_elements(By.CSS_SELECTOR, ".hooks .hook"))
        item = one(browser, ".hooks .hook")
        assert one(item, ".hook-url").text == State.hook_url
        assert one(item, ".badge").text == "Active"
        assert one(item, ".description").text == XSS
        last = item.find_elements(By.TAG_NAME, "dd")[2]
        wait(browser, "the last delivery", lambda: "at 20" in last.text)  # noqa: B023 (used at once)
        shot(browser, shots, f"hooks{suffix}")
        for url in (stack.url + "/#/", stack.url + "/#/new", hook_page):
            browser.get(url)
            wait(browser, "the view", lambda: one(browser, "h1").text not in ("", "Sign in"))
            assert not overflows(browser), f"{url} is wider than the window at {size}"
            assert unlabelled_controls(browser) == [], url
    browser.set_window_size(*WIDE)


def test_the_filters_find_the_hook_by_status_and_event(stack: DevStack, browser: WebDriver) -> None:
    browser.get(stack.url + "/#/")
    wait(browser, "the list", lambda: browser.find_elements(By.CSS_SELECTOR, ".hooks .hook"))
    status = field(browser, "Status")
    status.send_keys("Pending")  # the keyboard picks the option
    button(browser, "Filter").click()
    wait(browser, "the empty list", lambda: one(browser, ".hooks").text == "No hooks here yet.")
    status.send_keys("Active")
    field(browser, "Event").send_keys("open")
    button(browser, "Filter").click()
    wait(browser, "the hook again", lambda: len(browser.find_elements(By.CSS_SELECTOR, ".hooks .hook")) == 1)


def test_a_new_url_restarts_validation_pause_resume_and_delete_from_the_keyboard(
    stack: DevStack, browser: WebDriver, receiver: Receiver
) -> None:
    one(browser, ".hooks .hook-url").click()
    wait(browser, "the hook's page", lambda: one(browser, "h1").text == State.hook_url)
    old_file = one(browser, ".file-name").text
    button(browser, "Edit").click()
    url = field(browser, "URL of your script")
    url.clear()
    url.send_keys(f"{receiver.url}/other/script.php")
    button(browser, "Save changes").click()
    wait(browser, "validation restarts", lambda: "validation starts again" in notice(browser))
    assert one(browser, ".heading .badge").text == "Pending validation"
    assert one(browser, ".file-name").text != old_file  # a new URL needs a new proof

    button(browser, "Pause").click()
    wait(browser, "paused", lambda: one(browser, ".heading .badge").text == "Disabled")
    assert one(browser, ".reason").text == "Why: disabled by the customer"
    button(browser, "Resume").click()  # the new URL is not proven yet: validation again
    wait(browser, "resumed", lambda: one(browser, ".heading .badge").text == "Pending validation")

    delete = button(browser, "Delete…")
    delete.send_keys(Keys.ENTER)
    confirm = wait(browser, "the confirmation", lambda: one(browser, ".confirm"))
    assert "cannot be undone" in confirm.text
    assert browser.switch_to.active_element == button(confirm, "Delete for good")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser, "back to the list", lambda: notice(browser) == "Hook deleted.")
    wait(browser, "the empty list", lambda: one(browser, ".hooks").text == "No hooks here yet.")


def test_the_list_pages(stack: DevStack, browser: WebDriver, receiver: Receiver) -> None:
    for n in range(21):
        body = {"url": f"{receiver.url}/many/{n}.php", "events": ["abuse"]}
        assert stack.call("POST", "/hooks", body).status_code == 201
    browser.refresh()  # the list is shown already: read it again
    hooks = "return document.querySelectorAll('.hooks .hook').length"
    wait(browser, "a full page", lambda: browser.execute_script(hooks) == 20)
    button(browser, "Next page").click()
    wait(browser, "the last one", lambda: browser.execute_script(hooks) == 1)
    assert not button(browser, "Next page").is_enabled()
    button(browser, "Previous page").click()
    wait(browser, "the first page again", lambda: browser.execute_script(hooks) == 20)


def test_sign_out_forgets_the_token(stack: DevStack, browser: WebDriver) -> None:
    button(browser, "Sign out").click()
    wait(browser, "the sign-in form", lambda: field(browser, "Bearer token"))
    assert browser.execute_script("return sessionStorage.length") == 0
    errors = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert errors == []  # nothing the page does is blocked by its own policy
