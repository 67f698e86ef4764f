"""Languages of the site and its emails: English (the source) and Simplified Chinese.

How a request's language is chosen (`LocaleMiddleware`, registered in `app.py`):

1. `?lang=en` or `?lang=zh-CN` on any URL: used for this request and remembered in the `lang`
   cookie for a year (a GET that only sets a preference cookie needs no CSRF protection);
2. else the `lang` cookie;
3. else the browser's `Accept-Language` header (any `zh*` tag picks Simplified Chinese);
4. else English.

The choice lives in a context variable for the request, so `t()` (used by every template, page
and email) needs no argument. Catalogues map the English source text to its translation:
`locales/zh_CN.json`. A missing or empty entry falls back to English. `N_("...")` marks
text that is translated later (labels in tables); `tn(singular, plural, n)` picks the form
that fits a count. `scripts/extract_strings.py` finds the literals of all three in templates
and Python code.

Emails are written in the recipient's stored language (`User.locale`, set at registration and
updated when a signed-in person uses the language switch), falling back to the language of the
request that sends them, then English: `with use(user.locale): ...`.

Error messages shown on pages (`error_text`): the exact English message, or a catalogue entry
with `{placeholders}` that matches it, is translated; otherwise a sentence chosen by the
error's stable `code` (`ERROR_MESSAGES`); otherwise the English message. JSON API errors stay
in English: clients match on the code, and logs and support tickets quote one text.

It imports nothing else from RemoveAny and sits beside `errors.py`, so domain packages use it
for emails without reaching into `web/`.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

DEFAULT = "en"
LOCALES = ("en", "zh-CN")
LABELS = {"en": "English", "zh-CN": "简体中文"}
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
LOCALES_DIR = Path(__file__).parent / "locales"

_current: ContextVar[str] = ContextVar("removeany_locale", default=DEFAULT)
_switched: ContextVar[bool] = ContextVar("removeany_locale_switched", default=False)


def N_(text: str, /) -> str:
    """Mark text for extraction without translating it yet (it is passed to t() later)."""
    return text


# --- choosing a language --------------------------------------------------------------------


def normalize(value: str | None) -> str | None:
    """A supported locale for an explicit choice (`en`, `zh-CN`, any case, `_` or `-`)."""
    if not value:
        return None
    wanted = value.strip().replace("_", "-").lower()
    for locale in LOCALES:
        if locale.lower() == wanted:
            return locale
    return None


def _from_tag(tag: str) -> str | None:
    primary = tag.split("-", 1)[0].lower()
    if primary == "zh":
        return "zh-CN"  # the only Chinese we have: Simplified
    if primary == "en":
        return "en"
    return None


def negotiate(accept_language: str | None, cookie: str | None = None) -> str:
    """The cookie's choice if valid, else the best supported `Accept-Language` match."""
    chosen = normalize(cookie)
    if chosen:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        fields = part.strip().split(";")
        tag = fields[0].strip().replace("_", "-")
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = _from_tag(tag) if tag and tag != "*" else None
        if locale and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else DEFAULT


def current() -> str:
    """The locale of the request being handled (English outside a request)."""
    return _current.get()


def switched() -> bool:
    """Whether this request chose a language explicitly (`?lang=`)."""
    return _switched.get()


@contextmanager
def use(locale: str | None) -> Iterator[str]:
    """Translate in `locale` inside the block; None keeps the current one (emails)."""
    chosen = normalize(locale) or current()
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


# --- catalogues -----------------------------------------------------------------------------


def catalogue_path(locale: str) -> Path:
    return LOCALES_DIR / f"{locale.replace('-', '_')}.json"


@cache
def catalogue(locale: str) -> dict[str, str]:
    """English source text → translation; only non-empty entries count."""
    if locale == DEFAULT:
        return {}
    path = catalogue_path(locale)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str) and v.strip()}


def translate(text: str, locale: str | None = None) -> str:
    """`text` in `locale` (default: the current one), unformatted; English when missing."""
    return catalogue(locale or current()).get(text, text)


def t(text: str, /, **values: Any) -> str:
    """Translate to the current locale, then fill in `{placeholders}` (only when given)."""
    translated = translate(text)
    return translated.format(**values) if values else translated


def tn(singular: str, plural: str, n: int, /, **values: Any) -> str:
    """t() of the form that fits the count `n` ("1 credit", "3 credits"), with `{n}` filled in.
    English has one singular (n == 1); each form is its own catalogue entry, so Chinese,
    which has none, gives both the same translation."""
    return translate(singular if n == 1 else plural).format(n=n, **values)


def placeholders(text: str) -> set[str]:
    """The `{names}` a text formats (used to check that translations keep them)."""
    found: set[str] = set()
    for _literal, field, _spec, _conversion in string.Formatter().parse(text):
        if field is not None:
            found.add(field)
    return found


# --- error messages -------------------------------------------------------------------------

# Sentences by error code, for messages without an exact translation (they often carry
# numbers or names). Keep them true for every message the code is used with.
ERROR_MESSAGES: dict[str, str] = {
    "invalid_cursor": N_(
        "That page of older items is not one of yours. Go back to your newest ones and use "
        "the Older link."
    ),
    "csrf_failed": N_("The form expired or came from another site. Reload the page and try again."),
    "invalid_credentials": N_("Email or password is wrong."),
    "email_not_verified": N_(
        "Your email address is not confirmed yet: open the link we emailed you, or ask for a "
        "new one in the workspace."
    ),
    "insufficient_credits": N_(
        "You do not have enough credits for this. Buy more credits on the Credits page or wait "
        "for your free allowance."
    ),
    "terms_not_accepted": N_(
        "Accept the current Terms of Service and Privacy Policy before using the services."
    ),
    "terms_outdated": N_(
        "These terms are no longer the current version. Read the current version and accept that."
    ),
    "file_too_large": N_("The file is too large. Upload a smaller image."),
    "unsupported_format": N_(
        "The file is not a supported image. Upload a PNG, JPEG, WebP, GIF, BMP or TIFF image."
    ),
    "corrupt_image": N_(
        "The image is damaged and cannot be read. Upload the file again or export it anew."
    ),
    "too_many_pixels": N_("The image has too many pixels. Resize it and upload it again."),
    "output_too_large": N_(
        "The result would be too large for the chosen format (WebP holds at most 16,383 "
        "pixels per side, JPEG 65,500). Choose PNG, or a smaller size."
    ),
    "metadata_too_large": N_(
        "The photo's metadata (EXIF) is more than a JPEG can hold. Choose PNG or WebP, or "
        "leave out the photo's metadata."
    ),
    "animated_image": N_(
        "The image is an animation or has several pages, and only one picture can be "
        "processed. Save the frame you want as PNG or JPEG and upload that."
    ),
    "request_too_large": N_(
        "The upload is larger than this page accepts. Choose a smaller file, or fewer files "
        "at once, and try again."
    ),
    "empty_file": N_(
        "The file is empty. Choose the image again, and check that it opens on your device."
    ),
    "unknown_foreground": N_(
        "No foreground subject could be found. Upload a photo with a clear subject."
    ),
    "no_watermark": N_(
        "No watermark was found in this photo. Mark it with boxes or a mask and try again."
    ),
    "no_face": N_("No face was found. Upload a well-lit photo of one person facing the camera."),
    "several_faces": N_("The photo shows more than one face. Upload a photo of one person alone."),
    "face_cut_off": N_(
        "The head or shoulders are cut off by the edge of the photo. Upload a photo with "
        "space above the head and the shoulders in the frame."
    ),
    "face_too_small": N_(
        "The face is too small in this photo for a sharp ID photo. Upload a closer or larger photo."
    ),
    "weak_password": N_(
        "Choose a stronger password: at least 8 characters, not a common password and not "
        "your email address."
    ),
    "invalid_email": N_("Enter a valid email address, for example name@example.com."),
    "email_taken": N_(
        "An account with this email already exists. Sign in, or reset your password."
    ),
    "invalid_token": N_("This link is not valid or has expired. Ask for a new one."),
    "too_many_attempts": N_("Too many attempts. Wait a few minutes and try again."),
    "invalid_totp": N_(
        "That code is not right. Enter the current code from your app, or an unused recovery code."
    ),
    "reauth_failed": N_("Your current password is wrong. Enter it again to confirm."),
    "account_restricted": N_(
        "Your account may not process images at the moment. You can still download and "
        "export your data; contact the operator to appeal."
    ),
    "account_banned": N_(
        "This account has been banned for breaking the terms of service. Contact the operator "
        "of this site if you believe this is a mistake."
    ),
    "account_locked": N_(
        "This account is locked. Use the password reset link we emailed you to unlock it."
    ),
    "service_suspended": N_(
        "This service is paused for the moment. No credits were charged; try again later."
    ),
    "service_disabled": N_("This service is not available. No credits were charged."),
    "not_found": N_("There is nothing here. It may have been deleted; check the address."),
    "file_deleted": N_(
        "This file was deleted: images are kept only for a limited time, or until you delete "
        "them. Process the image again if you need it."
    ),
    "promo_not_found": N_("There is no such promo code. Check the spelling."),
    "promo_expired": N_("This promo code has expired."),
    "promo_already_redeemed": N_("You have already redeemed this promo code."),
    "promo_exhausted": N_("This promo code has been used up."),
    "payments_unavailable": N_("Payments are not configured on this server."),
    "throttle_unavailable": N_("This is unavailable for a moment. Please try again in a minute."),
    "storage_unavailable": N_(
        "File storage is unavailable right now. Nothing was charged; please try again in "
        "a few minutes."
    ),
    "payment_provider_error": N_(
        "The payment provider could not be reached. No money was taken; try again later."
    ),
    "admin_only": N_("Only administrators can do this."),
    "not_authenticated": N_("Sign in to continue."),
    "session_required": N_(
        "Sign in with your password to change how you sign in; API keys cannot do this."
    ),
    "cancelled": N_(
        "The batch was cancelled before this item started. You were not charged for it."
    ),
}

# Refusals that quote the operator's own words (`{message}`: what a suspended service's
# status says): a page shows the sentence in its language around them, not the general
# sentence of ERROR_MESSAGES, which has to leave them out.
ERROR_FORMS: dict[str, str] = {
    "service_suspended": N_(
        "This service is temporarily suspended: {message} No credits were charged; try again later."
    ),
    "service_disabled": N_("This service is disabled: {message} No credits were charged."),
    "account_restricted": N_(
        "Processing is disabled on this account by an administrator ({message}). You can "
        "still download and export your data; contact the operator to appeal."
    ),
}

_FIELD = re.compile(r"\{(\w*)\}")


@cache
def _patterns(locale: str) -> list[tuple[re.Pattern[str], str, int]]:
    """Catalogue entries with placeholders, as regular expressions over the English text, with
    the length of their own (literal) text."""
    out: list[tuple[re.Pattern[str], str, int]] = []
    for source, target in catalogue(locale).items():
        if "{" not in source:
            continue
        parts = _FIELD.split(source)
        if len(parts) == 1:
            continue
        regex, seen = "", set()
        for index, part in enumerate(parts):
            if index % 2 == 0:
                regex += re.escape(part)
            elif part and part.isidentifier() and part not in seen:
                seen.add(part)
                regex += f"(?P<{part}>.*?)"
            else:
                regex = ""
                break
        if regex:
            literal = sum(len(part) for part in parts[::2])
            out.append((re.compile(regex + r"\Z", re.DOTALL), target, literal))
    return out


def translate_message(message: str, locale: str | None = None) -> str | None:
    """A message's translation by exact text or by a `{placeholder}` entry, else None.

    Of the entries that match, the one with the most text of its own wins, and only if that
    text is at least half the message: placeholders match anything, so "{finished} of {total}"
    would otherwise take any sentence with " of " in it and translate that word alone."""
    locale = locale or current()
    table = catalogue(locale)
    if message in table:
        return table[message]
    best: tuple[int, str] | None = None
    for regex, target, literal in _patterns(locale):
        if 2 * literal < len(message) or (best is not None and literal <= best[0]):
            continue
        found = regex.match(message)
        if found:
            try:
                best = (literal, target.format(**found.groupdict()))
            except (KeyError, IndexError, ValueError):
                continue
    return best[1] if best else None


@cache
def _translations(locale: str) -> frozenset[str]:
    return frozenset(catalogue(locale).values())


def error_sentences() -> dict[str, str]:
    """Sentences by error code in the current language, for page scripts that read the JSON
    API (which answers in English). Empty in English: those pages show the API's own message."""
    if current() == DEFAULT:
        return {}
    return {code: translate(text) for code, text in ERROR_MESSAGES.items()}


def error_forms() -> dict[str, tuple[str, str]]:
    """For page scripts: (English, translation) of each ERROR_FORMS sentence, so a refusal
    the JSON API words in English is shown in the page's language with the operator's words
    kept (`localizedError` in app.js). Empty in English."""
    if current() == DEFAULT:
        return {}
    return {code: (text, translate(text)) for code, text in ERROR_FORMS.items()}


def error_text(error: BaseException | str, code: str | None = None) -> str:
    """What a page shows for an error: see the module docstring."""
    if isinstance(error, str):
        message = error
    else:
        message = str(getattr(error, "message", "") or error)
        code = code or getattr(error, "code", None)
    locale = current()
    if locale == DEFAULT or message in _translations(locale):
        return message
    found = translate_message(message, locale)
    if found is not None:
        return found
    if code and code in ERROR_MESSAGES:
        return translate(ERROR_MESSAGES[code], locale)
    return message


# --- the middleware -------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]
    return ", ".join(values) if name != b"cookie" else "; ".join(values)


def _cookie(header: str) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header from the client: ignore it
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def cookie_header(locale: str, *, secure: bool) -> bytes:
    value = f"{COOKIE}={locale}; Max-Age={COOKIE_MAX_AGE}; Path=/; SameSite=Lax"
    return (value + ("; Secure" if secure else "")).encode("latin-1")


def _asked(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    return normalize(next((v for k, v in parse_qsl(query) if k == "lang"), None))


def locale_of(scope: Scope) -> str:
    """The request's locale as LocaleMiddleware chooses it: for an answer made outside it
    (the server-error page, whose handler runs around every middleware)."""
    return _asked(scope) or negotiate(
        _header(scope, b"accept-language"), _cookie(_header(scope, b"cookie"))
    )


class LocaleMiddleware:
    """Sets the request's locale (see the module docstring) and remembers a `?lang=` choice."""

    def __init__(self, app: ASGIApp, *, secure: bool = False) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chosen = _asked(scope)
        locale = locale_of(scope)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and chosen:
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", cookie_header(chosen, secure=self.secure)))
                message["headers"] = headers
            await send(message)

        token = _current.set(locale)
        switch_token = _switched.set(chosen is not None)
        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            _switched.reset(switch_token)
            _current.reset(token)


def switch_url(path: str, query: list[tuple[str, str]], locale: str) -> str:
    """The current page with `lang=<locale>` (other query parameters kept). Always a path on
    this site: the page answering a request for `//other.example/x` (the 404 page) must not
    link to other.example, so leading slashes and backslashes collapse into one."""
    kept = [(k, v) for k, v in query if k != "lang"]
    here = "/" + path.lstrip("/\\")
    return f"{here}?{urlencode([*kept, ('lang', locale)])}"
