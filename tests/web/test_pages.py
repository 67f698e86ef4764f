"""The web pages over the real app: sign-up by email, sign-in, CSRF, workspace, API keys."""

from __future__ import annotations

import html
import io
import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from PIL import Image

from removeany.api.auth import SESSION_COOKIE
from removeany.context import Context
from tests.conftest import eval_image
from tests.helpers import make_user
from tests.web.conftest import PASSWORD, outbox_messages, verification_link

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
META_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
BALANCE_RE = re.compile(r"<span data-balance>(\d+)</span>")


def form_token(page: str) -> str:
    found = TOKEN_RE.search(page)
    assert found, "the form has no CSRF token"
    return html.unescape(found.group(1))


def balance_on(page: str) -> int:
    found = BALANCE_RE.search(page)
    assert found, "the page shows no balance"
    return int(found.group(1))


def text_of(page: str) -> str:
    """The page as a person reads it: no tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def register(client: TestClient, email: str, password: str = PASSWORD) -> str:
    token = form_token(client.get("/register").text)
    response = client.post(
        "/register", data={"email": email, "password": password, "csrf_token": token}
    )
    return response.text


def login(client: TestClient, email: str, password: str = PASSWORD, next: str = "") -> str:
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": next},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


def session_csrf(client: TestClient) -> str:
    found = META_RE.search(client.get("/app").text)
    assert found, "the workspace has no session CSRF token"
    return html.unescape(found.group(1))


def test_register_verify_login_logout(client: TestClient, ctx: Context) -> None:
    home = client.get("/")
    assert home.status_code == 200 and "Sign up" in home.text

    page = register(client, "Grace@Example.com")
    assert "Check your email" in page and "grace@example.com" in page
    messages = outbox_messages(ctx.settings.outbox_dir)
    assert [m["To"] for m in messages] == ["grace@example.com"]

    link = verification_link(ctx.settings.outbox_dir, "grace@example.com")
    parts = urlsplit(link)
    verified = client.get(f"{parts.path}?{parts.query}")
    assert verified.status_code == 200
    assert "Your email is confirmed" in verified.text
    assert "Your balance is 10 credits" in text_of(verified.text)
    # Opening the link again grants nothing more.
    assert "Your balance is 10 credits" in text_of(client.get(f"/verify?{parts.query}").text)

    assert login(client, "grace@example.com") == "/app"
    cookie = next(c for c in client.cookies.jar if c.name == SESSION_COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    workspace = client.get("/app")
    assert workspace.status_code == 200
    assert balance_on(workspace.text) == 10
    assert 'id="file-input"' in workspace.text and "grace@example.com" in workspace.text

    out = client.post("/logout", data={"csrf_token": session_csrf(client)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert SESSION_COOKIE not in client.cookies
    after = client.get("/app", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"] == "/login?next=/app"


def test_session_cookie_flags(client: TestClient, ctx: Context) -> None:
    make_user(ctx, "ada@example.com")
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    header = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    assert "Secure" not in header  # settings.cookie_secure is off for plain-HTTP tests
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_wrong_password_shows_a_sentence(client: TestClient, ctx: Context) -> None:
    make_user(ctx, "ada@example.com")
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": "not the password", "csrf_token": token},
    )
    assert response.status_code == 401
    assert "Email or password is wrong." in response.text
    assert "Traceback" not in response.text
    assert 'value="ada@example.com"' in response.text
    assert SESSION_COOKIE not in client.cookies


def test_register_errors_are_sentences(client: TestClient, ctx: Context) -> None:
    short = register(client, "lin@example.com", "short")
    assert "Choose a password of at least 8 characters." in short
    bad = register(client, "not-an-email")
    assert "not a valid email address" in html.unescape(bad)
    make_user(ctx, "ada@example.com")
    taken = register(client, "ada@example.com")
    assert "An account with this email already exists." in taken
    assert outbox_messages(ctx.settings.outbox_dir) == []


def test_forms_without_csrf_are_refused(client: TestClient, ctx: Context) -> None:
    make_user(ctx, "ada@example.com")
    client.get("/login")  # sets the form cookie, but the token is left out below
    for path, data in (
        ("/register", {"email": "x@example.com", "password": PASSWORD}),
        ("/login", {"email": "ada@example.com", "password": PASSWORD}),
        ("/login", {"email": "ada@example.com", "password": PASSWORD, "csrf_token": "forged"}),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 403, path
        assert "The form expired or came from another site." in response.text
    assert SESSION_COOKIE not in client.cookies
    assert outbox_messages(ctx.settings.outbox_dir) == []

    # A token signed for one browser's cookie does not work with another browser's cookie.
    token = form_token(client.get("/login").text)
    client.cookies.clear()
    client.cookies.set("removeany_form", "another-browsers-nonce-123456")
    response = client.post(
        "/login", data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 403

    # Signed-in forms check the session's own token.
    client.cookies.clear()
    login(client, "ada@example.com")
    for path in ("/logout", "/account/api-keys", "/verify/resend"):
        response = client.post(path, data={"csrf_token": "wrong"}, follow_redirects=False)
        assert response.status_code == 403, path
    assert client.get("/app").status_code == 200  # still signed in


def test_bad_verification_link(client: TestClient) -> None:
    response = client.get("/verify?token=not-a-real-token")
    assert response.status_code == 400
    assert "This confirmation link is not valid." in response.text
    assert client.get("/verify").status_code == 400


def test_login_only_redirects_to_this_site(client: TestClient, ctx: Context) -> None:
    make_user(ctx, "ada@example.com")
    assert login(client, "ada@example.com", next="//evil.example/") == "/app"
    client.cookies.clear()
    assert login(client, "ada@example.com", next="/account/api-keys") == "/account/api-keys"
    signed_in = client.get("/login?next=https://evil.example/", follow_redirects=False)
    assert signed_in.headers["location"] == "/app"


def test_unverified_user_sees_how_to_confirm(client: TestClient, ctx: Context) -> None:
    register(client, "new@example.com")
    login(client, "new@example.com")
    workspace = client.get("/app").text
    assert "Confirm your email address" in workspace
    assert balance_on(workspace) == 0
    resent = client.post(
        "/verify/resend", data={"csrf_token": session_csrf(client)}, follow_redirects=False
    )
    assert resent.status_code == 303
    assert len(outbox_messages(ctx.settings.outbox_dir)) == 2
    link = urlsplit(verification_link(ctx.settings.outbox_dir, "new@example.com"))
    page = client.get(f"{link.path}?{link.query}").text
    assert "Open your workspace" in page  # already signed in: straight to work
    assert "Confirm your email address" not in client.get("/app").text


def test_workspace_upload_result_and_job_page(client: TestClient, ctx: Context) -> None:
    """What the page's script does: the JSON API with the session cookie and CSRF header."""
    make_user(ctx, "ada@example.com", credits=10)
    login(client, "ada@example.com")
    csrf = session_csrf(client)
    photo = eval_image("object", "alphamatting_GT03")
    upload = {"file": (photo.name, photo.read_bytes(), "image/png")}

    refused = client.post("/api/v1/jobs", files=upload)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"

    response = client.post(
        "/api/v1/jobs",
        headers={"X-CSRF-Token": csrf},
        data={"wait": "true", "format": "png"},
        files=upload,
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "succeeded", job

    workspace = client.get("/app").text
    assert balance_on(workspace) == 9
    assert f'href="/jobs/{job["id"]}"' in workspace and photo.name in workspace

    page = client.get(f"/jobs/{job['id']}")
    assert page.status_code == 200
    assert "Download PNG" in page.text and "data-compare" in page.text
    assert f"/api/v1/jobs/{job['id']}/result" in page.text
    result = client.get(job["result_url"])
    image = Image.open(io.BytesIO(result.content))
    assert image.mode == "RGBA" and image.size == Image.open(photo).size

    other = make_user(ctx, "eve@example.com")
    assert other.id
    client.cookies.clear()
    login(client, "eve@example.com")
    missing = client.get(f"/jobs/{job['id']}")
    assert missing.status_code == 404 and "No such job." in missing.text


def test_api_keys_page(client: TestClient, ctx: Context) -> None:
    make_user(ctx, "ada@example.com")
    assert client.get("/account/api-keys", follow_redirects=False).headers["location"] == (
        "/login?next=/account/api-keys"
    )
    login(client, "ada@example.com")
    page = client.get("/account/api-keys")
    assert page.status_code == 200 and "You have no API keys yet." in page.text

    created = client.post(
        "/account/api-keys", data={"name": "Shop pipeline", "csrf_token": form_token(page.text)}
    )
    assert created.status_code == 201
    key = re.search(r'value="(rak_[^"]+)"', created.text)
    assert key, "the new key is shown"
    plaintext = key.group(1)
    assert "shown only once" in created.text
    assert created.headers["cache-control"] == "no-store"

    listing = client.get("/account/api-keys").text
    assert plaintext not in listing  # never shown again
    assert "Shop pipeline" in listing and plaintext[:12] in listing
    assert "Never" in listing

    assert client.get("/api/v1/me", headers={"X-Api-Key": plaintext}).status_code == 200
    listing = client.get("/account/api-keys").text
    assert "Never" not in listing  # last use is shown

    key_id = re.search(r'action="/account/api-keys/(\d+)/revoke"', listing)
    assert key_id
    revoked = client.post(
        f"/account/api-keys/{key_id.group(1)}/revoke",
        data={"csrf_token": form_token(listing)},
    )
    assert revoked.status_code == 200 and "The key was revoked." in revoked.text
    assert "Revoked" in revoked.text
    assert client.get("/api/v1/me", headers={"X-Api-Key": plaintext}).status_code == 403


def test_unverified_user_cannot_create_keys(client: TestClient) -> None:
    register(client, "new@example.com")
    login(client, "new@example.com")
    page = client.get("/account/api-keys").text
    response = client.post("/account/api-keys", data={"name": "x", "csrf_token": form_token(page)})
    assert response.status_code == 403
    assert "Confirm your email address first" in response.text


def test_static_assets_are_served(client: TestClient) -> None:
    page = client.get("/").text
    for asset in re.findall(r'(?:href|src)="(/static/[^"?]+)', page):
        response = client.get(asset)
        assert response.status_code == 200, asset
    assert "https://" not in re.sub(r'content="[^"]*"', "", page.split("<body")[0])
