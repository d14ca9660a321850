"""The console in a real browser (the machine's Chromium through Playwright) against
pytest-django's live server: what a support person does on a ticket. These tests also save
docs/console.md's screenshots to docs/."""

import os
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from accounts.models import Membership
from demo.loader import seed_logs
from logs.services import event_record, notification_create
from tests.console.conftest import PASSWORD, SENDER, bounced_email, console_user
from tests.notifications.factories import UserPreferenceFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# The repository's docs/ (console.md shows these screenshots).
DOCS = Path(__file__).resolve().parents[2] / "docs"
# A loaded 2-core machine: waits are generous; they end as soon as the page is right.
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: install it (apt-get install chromium).")
    # WORKAROUND: Playwright's sync API runs an asyncio loop in this thread, and Django
    # refuses ORM calls from a thread with a running loop. The tests' ORM calls are plain
    # synchronous setup, never concurrent with the loop's work. Set only while the browser
    # runs: a subprocess started by another test (manage.py check --deploy) must not see it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(
        viewport={"width": 1360, "height": 900}, timezone_id="Europe/Paris"
    )
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/logs/notification/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    # The first page learns the browser's zone and reloads once to show times in it.
    expect(page.locator(".zone-note")).to_have_text("Times in Europe/Paris")


def demo_data(environment):
    """What the demo shows (`seed_logs --account`, demo/): traffic of every type and
    outcome in the support user's account, plus the ticket's bounce."""
    seed_logs(notifications=60, days=1, account=environment.account.name, seed=7, analyze=False)
    UserPreferenceFactory(environment=environment, user_id="usr_alice",
                          notification_type="newsletter")  # fmt: skip
    bounced_email(environment, created_at=timezone.now() - timedelta(days=2))
    return bounced_email(environment)


@pytest.mark.django_db(transaction=True)
def test_support_pastes_an_email_and_reads_the_bounce(page, live_server, tenants):
    mine, _ = tenants
    notification = demo_data(mine)
    log_in(page, live_server, console_user(mine))
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=DOCS / "console-list.png")

    page.fill("#id_q", "alice@example.com")
    page.keyboard.press("Enter")
    expect(page.locator(".searched-as")).to_contain_text("as email")
    page.click(f"a[href^='/admin/logs/notification/{notification.id}/change/']")

    expect(page.locator("#timeline")).to_contain_text("Failed - Bounce")
    card = page.locator(".channel-card[data-channel=email]")
    expect(card.locator(".subject")).to_have_text("Reset your password")
    expect(card).to_contain_text(SENDER)
    preview = page.frame_locator("iframe.email-preview")
    expect(preview.locator("h1")).to_have_text("Hi Alice")
    expect(page.locator("time").first).to_contain_text("CET")
    assert "tok_5ecr3t_abcdef" not in page.content()
    page.screenshot(path=DOCS / "console-notification.png", full_page=True)

    page.click("text=User usr_alice")
    expect(page.locator(".user-side")).to_contain_text("newsletter")
    expect(page.locator("table.results tbody tr")).to_have_count(2)
    page.screenshot(path=DOCS / "console-user.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/admin/logs/notification/{notification.id}/change/")
    expect(page.locator("#timeline")).to_contain_text("Failed - Bounce")
    page.screenshot(path=DOCS / "console-phone.png")


@pytest.mark.django_db(transaction=True)
def test_another_accounts_user_finds_nothing_and_gets_404(page, live_server, tenants):
    mine, theirs = tenants
    notification = bounced_email(mine)
    log_in(page, live_server, console_user(theirs, role=Membership.Role.ADMIN))
    page.fill("#id_q", "alice@example.com")
    page.keyboard.press("Enter")
    expect(page.locator(".empty")).to_contain_text("No notification matches")
    # The search's navigation is over before the next one starts (else Chromium may abort it).
    page.wait_for_load_state("load")
    response = page.goto(f"{live_server.url}/admin/logs/notification/{notification.id}/change/")
    assert response.status == 404
    assert "alice@example.com" not in page.content()


@pytest.mark.django_db(transaction=True)
def test_a_received_notification_shows_new_events_without_a_reload(page, live_server, tenants):
    mine, _ = tenants
    created_at = timezone.now()
    notification = notification_create(
        environment_id=mine.id,
        notification_type="order_shipped",
        user_id="usr_erin",
        number="+14155550142",
        created_at=created_at,
    )
    log_in(page, live_server, console_user(mine))
    page.goto(f"{live_server.url}/admin/logs/notification/{notification.id}/change/")
    expect(page.locator("#n-live")).to_be_visible()
    page.evaluate("window.__notReloaded = true")

    event_record(
        notification_id=notification.id,
        notification_created_at=created_at,
        channel="sms",
        kind="sending",
        source="pipeline",
    )
    expect(page.locator("#timeline")).to_contain_text("Sending")
    event_record(
        notification_id=notification.id,
        notification_created_at=created_at,
        channel="sms",
        kind="failed",
        sub_kind="undelivered",
        source="twilio",
        detail="Carrier rejected the message",
    )
    expect(page.locator("#timeline")).to_contain_text("Failed - Undelivered")
    expect(page.locator("#n-status")).to_have_text("Failure")
    expect(page.locator("#n-live")).to_have_text("● final")
    assert page.evaluate("window.__notReloaded") is True


# A 1 by 1 transparent GIF: the email's remote image, served once support asks for images.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@pytest.fixture
def image_host():
    """A server on this machine standing in for an email's remote image host; it notes every
    request. (Playwright's routing does not see the first load of a sandboxed srcdoc frame,
    so the requests are counted where they arrive.)"""
    hits = []

    class Pixel(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.send_header("Content-Length", str(len(PIXEL)))
            self.end_headers()
            self.wfile.write(PIXEL)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pixel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_the_email_preview_runs_no_script_and_loads_images_only_when_asked(
    page, live_server, tenants, image_host
):
    mine, _ = tenants
    host, hits = image_host
    notification = bounced_email(
        mine,
        html='<h1 id="hi">Hi Alice</h1>'
        '<script>document.getElementById("hi").textContent = "a script ran"</script>'
        f'<img alt="pixel" src="{host}/pixel.gif">',
    )
    log_in(page, live_server, console_user(mine))
    page.goto(f"{live_server.url}/admin/logs/notification/{notification.id}/change/")
    page.wait_for_load_state("load")  # the preview frame has loaded too
    preview = page.frame_locator("iframe.email-preview")
    expect(preview.locator("h1")).to_have_text("Hi Alice")  # the script did not run
    expect(preview.locator("img")).to_have_js_property("complete", True)
    expect(preview.locator("img")).to_have_js_property("naturalWidth", 0)
    assert hits == []  # the image host never heard of this email

    page.check(".load-images")
    expect(preview.locator("img")).to_have_js_property("naturalWidth", 1)
    assert hits == ["/pixel.gif"]
    expect(preview.locator("h1")).to_have_text("Hi Alice")


@pytest.mark.django_db(transaction=True)
def test_the_copy_button_copies_the_tracking_id(page, live_server, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server, console_user(mine))
    page.goto(f"{live_server.url}/admin/logs/notification/{notification.id}/change/")
    page.click("button[data-copy='#tracking-id']")
    expect(page.locator("button[data-copy='#tracking-id']")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == str(notification.id)
