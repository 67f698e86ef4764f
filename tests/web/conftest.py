"""The real app, database, mail outbox and model behind the web pages."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from removeany import i18n
from removeany.app import create_app
from removeany.context import Context
from tests.conftest import REPO

PASSWORD = "correct horse battery"
LINK_RE = re.compile(r"https?://\S+/verify\?token=[\w.\-]+")
ARTIFACTS = REPO / "test-artifacts"
# The site's languages: browser flows run in each (`@both_languages`).
LANGUAGES = i18n.LOCALES
both_languages = pytest.mark.parametrize("lang", LANGUAGES)


@pytest.fixture
def lang(request: pytest.FixtureRequest) -> str:
    """The language the browser (the `page` fixture) asks the site for: English unless the
    test is parametrized over `LANGUAGES` (`@both_languages`)."""
    return str(getattr(request, "param", i18n.DEFAULT))


@pytest.fixture
def tr(lang: str) -> Callable[..., str]:
    """`tr("English source text", **values)`: what the page says in the test's language,
    from the same catalogue the site uses (placeholders filled in when values are given).
    An untranslated template string then fails the expectation on the Chinese page."""

    def translated(text: str, /, **values: object) -> str:
        out = i18n.translate(text, lang)
        return out.format(**values) if values else out

    return translated


def pattern(text: str, *, named: bool = True, **groups: str) -> re.Pattern[str]:
    """A translated text with `{placeholders}` as a regular expression that finds it, each
    placeholder a group (any text, or the regular expression given for it in `groups`):
    `pattern(tr("{n} credits charged")).search(...)["n"]`. Playwright's expectations
    (JavaScript regular expressions) need `named=False`."""
    parts = re.split(r"\{(\w+)\}", text)
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
            continue
        last = i == len(parts) - 2 and not parts[-1]
        inner = groups.get(part, ".+" if last else ".+?")
        regex += f"({f'?P<{part}>' if named else ''}{inner})"
    return re.compile(regex)


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


def outbox_messages(outbox: Path) -> list[EmailMessage]:
    """Mail the embedded default wrote, oldest first."""
    files = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    messages = []
    for path in files:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        messages.append(msg)
    return messages


def verification_link(outbox: Path, to: str) -> str:
    """The confirmation link of the newest message to `to`."""
    for msg in reversed(outbox_messages(outbox)):
        if msg["To"] != to:
            continue
        part = msg.get_body(("plain",))
        found = LINK_RE.search(part.get_content() if part is not None else "")
        if found:
            return found.group(0)
    raise AssertionError(f"no verification email to {to} in {outbox}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each phase's report on the test item, so fixtures can see a failure; when a
    browser test fails, keep a full-page screenshot as test-artifacts/<test name>.png."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
    if report.when == "call" and report.failed:
        _screenshot(item)


def _is_page(value: object) -> bool:
    kind = type(value)
    return kind.__name__ == "Page" and kind.__module__.startswith("playwright.")


def _screenshot(item: pytest.Item) -> None:
    """The page as it was when the test failed (its fixtures are not torn down yet)."""
    funcargs: dict[str, object] = getattr(item, "funcargs", {})
    pages = [value for value in funcargs.values() if _is_page(value)]
    if not pages:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', item.name)}.png"
    try:
        pages[0].screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    except Exception as exc:  # a crashed browser must not hide the test's own failure
        print(f"could not save a screenshot of the failure: {exc}")
    else:
        print(f"screenshot of the failure: {path}")
