"""The web console in a real browser: Debian's Chromium, headless, driven by Playwright.

An operator logs in with the admin key, creates a key, sees a chat request made with it in the
recent requests and its cost on the overview, revokes it and sees it refused. Screenshots of
each page go to ``$LLMRELAY_SCREENSHOTS`` (``docs/screenshots`` for the README), else to the
test's own directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import Server, configured_server
from tests.upstream import Upstream, relay_models

ADMIN_KEY = "sk-admin-console-" + "c" * 30
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    lines = [
        *relay_models(upstream, ["answer"]),
        "prices:",
        '  answer: {input: "2.00", output: "8.00"}',
    ]
    data = tmp_path_factory.mktemp("console")
    with configured_server(data, lines, {"LLMRELAY_ADMIN_KEY": ADMIN_KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("LLMRELAY_SCREENSHOTS")
    directory = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def log_in(page: Page, relay: Server) -> None:
    page.goto(f"{relay.root}/ui")
    expect(page).to_have_url(f"{relay.root}/ui/login")  # nothing without logging in
    page.fill("input[name=admin_key]", ADMIN_KEY)
    page.click("text=Log in")
    expect(page).to_have_url(f"{relay.root}/ui")


def test_an_operator_creates_a_key_sees_its_request_and_cost_then_revokes_it(
    relay: Server, page: Page, shots: Path
) -> None:
    page.goto(f"{relay.root}/ui/login")
    page.fill("input[name=admin_key]", "sk-wrong")
    page.click("text=Log in")
    expect(page.get_by_role("alert")).to_contain_text("not the admin key")
    page.screenshot(path=shots / "login.png")
    log_in(page, relay)
    cookie = next(c for c in page.context.cookies() if c["name"] == "llmrelay_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"

    page.click("text=Keys")
    page.fill("form[action='/ui/keys'] input[name=name]", "browser-key")
    page.fill("form[action='/ui/keys'] input[name=rpm]", "100")
    page.click("form[action='/ui/keys'] button")
    key = page.inner_text("#new-key")
    assert key.startswith("sk-")
    page.screenshot(path=shots / "keys.png", full_page=True)
    row = page.locator("tr", has_text="browser-key")
    key_id = row.get_attribute("data-key")
    assert key_id and row.locator(".status").inner_text() == "active"

    http = httpx2.Client(timeout=30)
    client = openai.OpenAI(base_url=relay.base_url, api_key=key, max_retries=0, http_client=http)
    with client:
        raw = client.chat.completions.with_raw_response.create(model="relay-answer", messages=HELLO)
        request_id = raw.headers["x-request-id"]

        page.click("text=Requests")
        page.fill("input[name=key_id]", key_id)
        page.click("text=Filter")
        listed = page.locator("tr", has_text=request_id)
        expect(listed).to_contain_text("200")
        expect(listed).to_contain_text("$0.000058000")  # 9 prompt tokens at $2, 5 at $8 a million
        page.screenshot(path=shots / "requests.png", full_page=True)

        page.click("text=Overview")
        page.click("a[href='/ui?window=hour']")
        expect(page.locator("#total-cost")).to_have_text("$0.000058000")
        cost_chart = page.locator("figure", has_text="Cost (USD)")
        heights = [
            float(h)
            for h in cost_chart.locator("rect").evaluate_all(
                "bars => bars.map(bar => bar.getAttribute('height'))"
            )
        ]
        assert sum(h > 0 for h in heights) == 1  # the request's minute
        expect(page.locator("section", has_text="By key")).to_contain_text(key_id)
        page.screenshot(path=shots / "overview.png", full_page=True)

        page.click("text=Usage")
        page.select_option("select[name=group_by]", "key")
        page.click("text=Show")
        expect(page.locator("table")).to_contain_text("browser-key")
        page.screenshot(path=shots / "usage.png", full_page=True)
        with page.expect_download() as download:
            page.click("text=Export CSV")
        csv = Path(download.value.path()).read_text()
        assert csv.splitlines()[0].startswith("key_id,requests,errors")
        assert any(line.startswith(f"{key_id},1,0,9,5,") for line in csv.splitlines())

        page.click("text=Deployments")
        expect(page.locator("table")).to_contain_text("relay-answer#0 (openai)")
        page.screenshot(path=shots / "deployments.png", full_page=True)

        page.click("text=Keys")
        page.locator("tr", has_text="browser-key").locator("text=Revoke").click()
        expect(page.locator("tr", has_text="browser-key").locator(".status")).to_have_text(
            "revoked"
        )
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="relay-answer", messages=HELLO)

    page.click("text=Log out")
    expect(page).to_have_url(f"{relay.root}/ui/login")
    page.goto(f"{relay.root}/ui/keys")
    expect(page).to_have_url(f"{relay.root}/ui/login")


def test_a_form_posted_from_another_site_is_refused(relay: Server, page: Page) -> None:
    log_in(page, relay)
    keys_before = page.context.request.get(
        f"{relay.root}/admin/keys", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    ).json()["data"]
    # a page of another site (served here by the browser itself) that posts a form to the
    # console at once: the browser does not send the session's cookie with it
    planted = (
        f'<form method="post" action="{relay.root}/ui/keys">'
        '<input name="name" value="planted"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    page.route(
        "http://elsewhere.example/**",
        lambda route: route.fulfill(body=planted, content_type="text/html"),
    )
    with page.expect_navigation(url=f"{relay.root}/ui/keys"):
        page.goto("http://elsewhere.example/")
    assert "Forbidden" in page.content()
    keys_after = page.context.request.get(
        f"{relay.root}/admin/keys", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    ).json()["data"]
    assert len(keys_after) == len(keys_before)

    # the console's own form without its token: refused too
    refused = page.context.request.post(f"{relay.root}/ui/keys", form={"name": "planted"})
    assert refused.status == 403


def test_nothing_of_the_console_is_readable_without_logging_in(relay: Server) -> None:
    for path in (
        "/ui",
        "/ui/keys",
        "/ui/usage",
        "/ui/usage.csv",
        "/ui/requests",
        "/ui/deployments",
    ):
        response = httpx2.get(f"{relay.root}{path}", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/ui/login", path
    refused = httpx2.post(f"{relay.root}/ui/keys", data={"name": "x"})
    assert refused.status_code == 403
    huge = httpx2.post(f"{relay.root}/ui/login", data={"admin_key": "x" * 100_000})
    assert huge.status_code == 413


def test_a_bad_setting_in_a_form_is_shown_not_a_500(relay: Server) -> None:
    with httpx2.Client(base_url=relay.root, timeout=10) as browser:
        browser.post("/ui/login", data={"admin_key": ADMIN_KEY})
        page = browser.get("/ui/keys").text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        for field, value in (("expires_at", "0001-01-01T00:00+14:00"), ("rpm", "many")):
            refused = browser.post("/ui/keys", data={"csrf": csrf, "name": "x", field: value})
            assert refused.status_code == 400 and 'class="error"' in refused.text, field
        odd_day = browser.get("/ui/usage", params={"since": "tomorrow"})
        assert odd_day.status_code == 400 and "`since` is not an ISO 8601 time" in odd_day.text
