"""The demo page in a real browser (Debian's Chromium driven by Playwright) against a live server."""

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accounts.models import User
from referrals.models import Referral
from referrals.services import activate_invite_code
from tests.conftest import code_sent_to

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ROOT / "docs" / "demo.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE_SIZE = {"width": 400, "height": 860}

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an event loop open in this thread; Django then refuses the ORM
    # calls of the test and its database teardown, though none of them runs inside that loop.
    with pytest.MonkeyPatch.context() as patch, sync_api.sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, live_server):
    """A page at / in a fresh browser context (its own sessionStorage), like a second person's phone."""
    contexts, errors = [], []

    def open_(locale="en-US"):
        context = browser.new_context(locale=locale, timezone_id="UTC", viewport=PHONE_SIZE, device_scale_factor=2)
        context.set_default_timeout(5_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(error))
        # What the page's Content-Security-Policy refuses shows as a console error, not a page error.
        page.on("console", lambda message: refused_by_the_policy(message) and errors.append(message.text))
        page.goto(live_server.url + "/")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def refused_by_the_policy(message) -> bool:
    return message.type == "error" and "Content Security Policy" in message.text


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def sign_in(page, outbox, phone):
    page.get_by_label("Phone number").fill(phone)
    page.get_by_role("button", name="Get code").click()
    sync_api.expect(page.get_by_label("Code from the SMS")).to_be_focused()
    e164 = outbox[-1]["phone"]
    page.get_by_label("Code from the SMS").fill(code_sent_to(outbox, e164))
    page.get_by_label("Code from the SMS").press("Enter")  # a real <form>: Enter submits
    sync_api.expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    return e164


def test_invitee_activates_a_code_and_the_inviter_sees_them(open_page, outbox):
    inviter = open_page()
    sign_in(inviter, outbox, "+7 (911) 000-00-01")
    inviter_code = inviter.get_by_label("Your invite code").input_value()
    assert len(inviter_code) == 6
    sync_api.expect(inviter.locator("#no-invitees")).to_be_visible()

    invitee = open_page()
    sign_in(invitee, outbox, "8 911 000 00 02")
    invitee.get_by_label("First name").fill("Boris")
    invitee.get_by_role("button", name="Save").click()
    sync_api.expect(invitee.locator("#names-status")).to_have_text("Saved.")
    invitee.get_by_label("Invite code you received").fill(inviter_code.lower())
    invitee.get_by_role("button", name="Activate").click()
    sync_api.expect(invitee.locator("#inviter-info")).to_contain_text(f"invited by +79110000001 (code {inviter_code})")
    sync_api.expect(invitee.get_by_label("Invite code you received")).to_be_hidden()
    screenshot(invitee, "invitee-activated")

    inviter.reload()
    sync_api.expect(inviter.locator("#invitees li")).to_have_count(1)
    sync_api.expect(inviter.locator("#invitees li")).to_contain_text("+79110000002 Boris")
    sync_api.expect(inviter.locator("#invitees-count")).to_have_text("1")
    screenshot(inviter, "inviter-sees-invitee")
    write_readme_screenshot(inviter, inviter_code)


def write_readme_screenshot(page, invite_code):
    # A fixed code and fixed dates make the picture the same on every run, so the suite leaves
    # the committed docs/demo.png untouched on a given machine.
    moment = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    referral = Referral.objects.get(invite_code=invite_code)
    User.objects.filter(pk=referral.pk).update(date_joined=moment)
    Referral.objects.filter(pk=referral.pk).update(invite_code="K7QX3M")
    Referral.objects.filter(invited_by=referral).update(activated_at=moment)
    page.reload()
    sync_api.expect(page.get_by_label("Your invite code")).to_have_value("K7QX3M")
    sync_api.expect(page.locator("#invitees li")).to_have_count(1)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_wrong_invite_code_shows_its_error_next_to_the_field(open_page, outbox):
    page = open_page()
    sign_in(page, outbox, "+79110000003")

    page.get_by_label("Invite code you received").fill("zzzzzz")
    page.get_by_role("button", name="Activate").click()

    field = page.get_by_label("Invite code you received")
    error = page.locator("#invite-code-error")
    sync_api.expect(error).to_have_text("No user has this invite code.")
    sync_api.expect(field).to_have_attribute("aria-invalid", "true")
    sync_api.expect(field).to_have_attribute("aria-describedby", "invite-code-error")
    sync_api.expect(field).to_be_focused()
    assert error.evaluate("(e, f) => e.parentElement === f.parentElement", field.element_handle())
    screenshot(page, "wrong-invite-code")


def test_wrong_phone_and_wrong_code_show_their_errors_next_to_their_fields(open_page, outbox):
    page = open_page()

    page.get_by_label("Phone number").fill("12345")
    page.get_by_role("button", name="Get code").click()
    sync_api.expect(page.locator("#phone-error")).to_have_text("Enter a valid phone number, e.g. +7 911 000-00-00.")

    page.get_by_label("Phone number").fill("+79110000004")
    page.get_by_role("button", name="Get code").click()
    sync_api.expect(page.get_by_label("Code from the SMS")).to_be_focused()
    wrong = "1111" if code_sent_to(outbox, "+79110000004") == "0000" else "0000"
    page.get_by_label("Code from the SMS").fill(wrong)
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("#code-error")).to_have_text("The code is wrong.")
    sync_api.expect(page.locator("#phone-error")).to_be_empty()


def test_expired_access_token_is_refreshed_and_the_new_refresh_token_kept(open_page, outbox, live_server):
    page = open_page()
    sign_in(page, outbox, "+79110000005")
    first_refresh = page.evaluate("sessionStorage.getItem('refresh')")
    page.evaluate("sessionStorage.setItem('access', 'expired')")

    page.reload()
    sync_api.expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    sync_api.expect(page.get_by_label("Your invite code")).not_to_have_value("")

    second_refresh = page.evaluate("sessionStorage.getItem('refresh')")
    assert second_refresh != first_refresh
    rotated_out = page.request.post(f"{live_server.url}/api/v1/auth/token/refresh/", data={"refresh": first_refresh})
    assert rotated_out.status == 401


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"code": "service_unavailable", "detail": "The service is temporarily unavailable."}),
        (429, {"code": "throttled", "detail": "Too many requests. Try again in 9 seconds."}),
    ],
)
def test_a_refresh_that_fails_for_a_while_keeps_the_session(open_page, outbox, status, body):
    page = open_page()
    sign_in(page, outbox, "+79110000006")
    refresh = page.evaluate("sessionStorage.getItem('refresh')")
    page.evaluate("sessionStorage.setItem('access', 'expired')")
    page.route("**/api/v1/auth/token/refresh/", lambda route: route.fulfill(status=status, json=body))

    page.reload()
    sync_api.expect(page.get_by_text(body["detail"])).to_be_visible()

    assert page.evaluate("sessionStorage.getItem('refresh')") == refresh
    sync_api.expect(page.get_by_text("Your session has ended")).to_have_count(0)
    page.unroute("**/api/v1/auth/token/refresh/")
    page.reload()
    sync_api.expect(page.get_by_label("Your invite code")).not_to_have_value("")


def test_sign_out_revokes_the_refresh_token(open_page, outbox, live_server):
    page = open_page()
    sign_in(page, outbox, "+79110000006")
    refresh = page.evaluate("sessionStorage.getItem('refresh')")

    page.get_by_role("button", name="Sign out").click()

    sync_api.expect(page.get_by_label("Phone number")).to_be_visible()
    sync_api.expect(page.locator("#sign-in-status")).to_have_text("You have signed out.")
    assert page.evaluate("sessionStorage.length") == 0
    revoked = page.request.post(f"{live_server.url}/api/v1/auth/token/refresh/", data={"refresh": refresh})
    assert revoked.status == 401


def test_sign_out_during_an_outage_keeps_the_session_and_says_so(open_page, outbox, live_server):
    page = open_page()
    sign_in(page, outbox, "+79110000008")
    refresh = page.evaluate("sessionStorage.getItem('refresh')")
    body = {"code": "service_unavailable", "detail": "The service is temporarily unavailable."}
    page.route("**/api/v1/auth/logout/", lambda route: route.fulfill(status=503, json=body))

    page.get_by_role("button", name="Sign out").click()

    sync_api.expect(page.get_by_text(body["detail"])).to_be_visible()
    sync_api.expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('refresh')") == refresh  # still the person's to revoke


def test_the_next_person_in_the_tab_sees_nothing_of_the_last(open_page, outbox):
    page = open_page()
    sign_in(page, outbox, "+79110000009")
    page.get_by_label("First name").fill("Anna")
    page.get_by_role("button", name="Save").click()
    sync_api.expect(page.locator("#names-status")).to_have_text("Saved.")
    page.get_by_label("Invite code you received").fill("zzzzzz")
    page.get_by_role("button", name="Activate").click()
    sync_api.expect(page.locator("#invite-code-error")).to_have_text("No user has this invite code.")
    page.get_by_role("button", name="Sign out").click()
    sync_api.expect(page.get_by_label("Phone number")).to_have_value("")
    sync_api.expect(page.locator("#code-sent")).to_have_text("")

    sign_in(page, outbox, "+79110000010")

    sync_api.expect(page.locator("#names-status")).to_have_text("")
    sync_api.expect(page.locator("#invite-code-error")).to_have_text("")
    sync_api.expect(page.get_by_label("Invite code you received")).to_have_value("")
    sync_api.expect(page.get_by_label("First name")).to_have_value("")


def test_an_activation_whose_inviter_was_deleted_is_shown_as_spent(open_page, outbox, make_user):
    inviter = make_user("+79110000011")
    page = open_page()
    sign_in(page, outbox, "+79110000012")
    activate_invite_code(
        user=User.objects.get(phone="+79110000012"), code=Referral.objects.get(user=inviter).invite_code
    )
    inviter.delete()

    page.reload()

    sync_api.expect(page.locator("#inviter-info")).to_contain_text("its owner's account no longer exists")
    sync_api.expect(page.get_by_label("Invite code you received")).to_be_hidden()


def test_a_disabled_account_is_sent_back_to_the_sign_in_form_with_the_reason(open_page, outbox, live_server):
    page = open_page()
    sign_in(page, outbox, "+79110000013")
    refresh = page.evaluate("sessionStorage.getItem('refresh')")
    User.objects.filter(phone="+79110000013").update(is_active=False)

    page.reload()

    sync_api.expect(page.get_by_label("Phone number")).to_be_visible()
    sync_api.expect(page.locator("#sign-in-status")).to_have_text("This account is disabled.")
    assert page.evaluate("sessionStorage.length") == 0
    User.objects.filter(phone="+79110000013").update(is_active=True)
    revoked = page.request.post(f"{live_server.url}/api/v1/auth/token/refresh/", data={"refresh": refresh})
    assert revoked.status == 401  # enabled again, the account's old session stays ended


@pytest.mark.parametrize(
    ("field", "value", "button"),
    [("Invite code you received", "zzzzzz", "Activate"), ("First name", "Anna", "Save")],
)
def test_an_account_disabled_during_the_session_is_sent_back_to_the_sign_in_form(
    open_page, outbox, live_server, field, value, button
):
    page = open_page()
    sign_in(page, outbox, "+79110000014")
    refresh = page.evaluate("sessionStorage.getItem('refresh')")
    User.objects.filter(phone="+79110000014").update(is_active=False)

    page.get_by_label(field).fill(value)
    page.get_by_role("button", name=button).click()

    sync_api.expect(page.get_by_label("Phone number")).to_be_visible()
    sync_api.expect(page.locator("#sign-in-status")).to_have_text("This account is disabled.")
    sync_api.expect(page.get_by_role("heading", name="Your profile")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    User.objects.filter(phone="+79110000014").update(is_active=True)
    revoked = page.request.post(f"{live_server.url}/api/v1/auth/token/refresh/", data={"refresh": refresh})
    assert revoked.status == 401  # enabled again, the account's old session stays ended


def test_a_disabled_accounts_refused_refresh_ends_the_session_and_revokes_it(open_page, outbox, live_server):
    page = open_page()
    sign_in(page, outbox, "+79110000015")
    refresh = page.evaluate("sessionStorage.getItem('refresh')")
    User.objects.filter(phone="+79110000015").update(is_active=False)
    page.evaluate("sessionStorage.setItem('access', 'expired')")

    page.get_by_label("First name").fill("Anna")
    page.get_by_role("button", name="Save").click()

    # The refresh is refused (401) like any dead token's: the page cannot tell why the session ended.
    sync_api.expect(page.locator("#sign-in-status")).to_have_text("Your session has ended. Please sign in again.")
    assert page.evaluate("sessionStorage.length") == 0
    User.objects.filter(phone="+79110000015").update(is_active=True)
    revoked = page.request.post(f"{live_server.url}/api/v1/auth/token/refresh/", data={"refresh": refresh})
    assert revoked.status == 401


def test_more_button_pages_through_invitees_with_the_cursor(open_page, outbox):
    page = open_page()
    phone = sign_in(page, outbox, "+79110000007")
    inviter = User.objects.get(phone=phone)
    for number in range(12):
        invitee = User.objects.create_user(f"+7912000{number:04d}")
        activate_invite_code(user=invitee, code=inviter.referral.invite_code)

    page.reload()
    sync_api.expect(page.locator("#invitees li")).to_have_count(10)
    sync_api.expect(page.locator("#invitees-count")).to_have_text("12")
    sync_api.expect(page.locator("#invitees li").first).to_contain_text("+79120000011")  # newest first

    page.get_by_role("button", name="More").click()
    sync_api.expect(page.locator("#invitees li")).to_have_count(12)
    sync_api.expect(page.locator("#invitees li").last).to_contain_text("+79120000000")
    sync_api.expect(page.get_by_role("button", name="More")).to_be_hidden()


def test_copy_buttons_put_the_invite_code_and_link_on_the_clipboard(open_page, outbox, settings):
    settings.INVITE_URL_TEMPLATE = "https://app.example.com/i/{code}"
    page = open_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, outbox, "+79110000008")
    code = page.get_by_label("Your invite code").input_value()

    page.locator("#copy-code").click()
    sync_api.expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == code

    sync_api.expect(page.get_by_label("Invite link")).to_have_value(f"https://app.example.com/i/{code}")
    page.locator("#copy-url").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"https://app.example.com/i/{code}"


def test_invite_link_is_hidden_without_a_template(open_page, outbox):
    page = open_page()
    sign_in(page, outbox, "+79110000009")

    sync_api.expect(page.get_by_label("Invite link")).to_be_hidden()


def test_russian_browser_gets_russian_labels_and_sends_its_language(open_page):
    page = open_page(locale="ru-RU")

    sync_api.expect(page.get_by_label("Номер телефона")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "ru"
    page.get_by_label("Номер телефона").fill("12345")
    with page.expect_request("**/api/v1/auth/code/") as request:
        page.get_by_role("button", name="Получить код").click()
    assert request.value.headers["accept-language"] == "ru-RU"
    sync_api.expect(page.locator("#phone-error")).not_to_be_empty()


def test_a_reload_while_the_code_is_on_its_way_keeps_the_code_entry(open_page, outbox):
    # A phone's browser may drop the tab while the person reads the SMS; asking again would be
    # refused for a minute, and the code that came could not be entered.
    page = open_page()
    page.get_by_label("Phone number").fill("+7 911 000-00-13")
    page.get_by_role("button", name="Get code").click()
    sync_api.expect(page.get_by_label("Code from the SMS")).to_be_focused()

    page.reload()

    sync_api.expect(page.locator("#code-sent")).to_have_text("Enter the code sent to +79110000013.")
    sync_api.expect(page.get_by_label("Code from the SMS")).to_be_focused()
    page.get_by_label("Code from the SMS").fill(code_sent_to(outbox, "+79110000013"))
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    page.reload()  # signed in: the code entry is not offered again
    sync_api.expect(page.get_by_label("Your invite code")).not_to_have_value("")


def test_a_reload_after_the_code_died_offers_no_code_entry(open_page, outbox, settings):
    settings.OTP_TTL_SECONDS = 1
    page = open_page()
    page.get_by_label("Phone number").fill("+79110000014")
    page.get_by_role("button", name="Get code").click()
    sync_api.expect(page.get_by_label("Code from the SMS")).to_be_focused()
    page.wait_for_timeout(1_100)

    page.reload()

    sync_api.expect(page.get_by_label("Phone number")).to_be_focused()
    sync_api.expect(page.get_by_label("Code from the SMS")).to_be_hidden()


@pytest.mark.parametrize(
    ("seconds", "locale", "said"), [(20, "en-US", "20 s"), (90, "en-US", "1 min 30 s"), (300, "ru-RU", "5 мин")]
)
def test_the_codes_lifetime_is_told_as_it_is(open_page, outbox, settings, seconds, locale, said):
    settings.OTP_TTL_SECONDS = seconds
    page = open_page(locale=locale)
    page.locator("#phone").fill("+79110000015")
    page.locator("#phone-form button").click()

    sync_api.expect(page.locator("#code-sent")).to_have_text(re.compile(rf" {said}\.$"))


UNAVAILABLE = {"code": "service_unavailable", "detail": "The service is temporarily unavailable."}


def reload_signed_in_while_unavailable(page, outbox, phone, path):
    """A reload of a signed-in page while `path` answers 503; the page is left offering to try again."""
    sign_in(page, outbox, phone)
    page.route(path, lambda route: route.fulfill(status=503, json=UNAVAILABLE))
    page.reload()
    sync_api.expect(page.get_by_text(UNAVAILABLE["detail"])).to_be_visible()
    sync_api.expect(page.get_by_role("button", name="Try again")).to_be_visible()
    page.unroute(path)


def test_a_profile_that_cannot_load_after_a_reload_can_be_tried_again(open_page, outbox):
    page = open_page()
    reload_signed_in_while_unavailable(page, outbox, "+79110000016", "**/api/v1/me/")

    page.get_by_role("button", name="Try again").click()

    sync_api.expect(page.get_by_label("Your invite code")).not_to_have_value("")
    sync_api.expect(page.get_by_role("button", name="Try again")).to_be_hidden()
    sync_api.expect(page.get_by_text(UNAVAILABLE["detail"])).to_be_hidden()


def test_the_try_again_button_goes_with_the_session(open_page, outbox):
    page = open_page()
    reload_signed_in_while_unavailable(page, outbox, "+79110000017", "**/api/v1/me/invitees/**")

    page.get_by_role("button", name="Sign out").click()

    sync_api.expect(page.get_by_text("You have signed out.")).to_be_visible()
    sync_api.expect(page.get_by_role("button", name="Try again")).to_be_hidden()
    sync_api.expect(page.get_by_text(UNAVAILABLE["detail"])).to_be_hidden()


@pytest.mark.parametrize("path", ["/", "/api/redoc/", "/api/docs/"])
def test_the_pages_ask_no_other_host_and_nothing_is_missing(browser, live_server, path):
    # The docs must work with no internet: Redoc's bundle draws its maker's logo from a CDN.
    context = browser.new_context()
    page = context.new_page()
    asked, refused, missing = [], [], []
    page.on("request", lambda request: asked.append(request.url))
    page.on("requestfailed", lambda request: request.failure == "csp" and refused.append(request.url))
    page.on("response", lambda response: response.status >= 400 and missing.append(response.url))
    page.goto(live_server.url + path)
    page.wait_for_load_state("networkidle")
    context.close()

    local = (live_server.url, "data:", f"blob:{live_server.url}")
    # A request the page's policy refused never left the browser.
    assert [url for url in asked if not url.startswith(local) and url not in refused] == []
    assert missing == []
