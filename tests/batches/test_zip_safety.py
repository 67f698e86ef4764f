"""Reading untrusted archives: no path may leave the batch, links are not followed, and no
member is read past the per-file limit whatever the archive declares."""

from __future__ import annotations

import io
import zipfile

import pytest

from removeany.batches import service
from removeany.batches.schemas import RejectedFile
from removeany.infra.settings import Settings
from tests.batches._images import plain_image


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.png", "a.png"),
        ("shoot/day 1/a.png", "shoot/day 1/a.png"),
        ("a/./b.png", "a/b.png"),
        ("a//b.png", "a/b.png"),
        ("a\\b.png", "a/b.png"),
        ("../a.png", None),
        ("a/../../b.png", None),
        ("a\\..\\..\\b.png", None),
        ("/etc/passwd", None),
        ("\\\\server\\share\\a.png", None),
        ("C:/Windows/a.png", None),
        ("c:a.png", None),
        # Control and invisible formatting characters go, as from a single upload's name,
        # and a part is judged after that: "..<U+202E>" leaves the batch as ".." does.
        ("a\x00.png", "a.png"),
        ("a/\nb.png", "a/b.png"),
        ("photo\u202egnp.jpg", "photognp.jpg"),
        ("shoot\u200b/\u2066a.png\u2069", "shoot/a.png"),
        ("a/\u200b/b.png", "a/b.png"),
        ("..\u202e/a.png", None),
        ("a/\u2067..\u2069/../b.png", None),
        ("\u200b", None),
        ("", None),
        (".", None),
    ],
)
def test_safe_relative_path(name: str, expected: str | None) -> None:
    assert service.safe_relative_path(name) == expected


def test_links_encrypted_and_duplicate_members_are_skipped() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("photos/link.png")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("photos/a.png", plain_image())
        zf.writestr("photos/./a.png", plain_image())
        zf.writestr("photos/.hidden.png", plain_image())
        zf.writestr("photos/", b"")
    buf.seek(0)
    entries = list(service.entries_from_zip(buf, Settings()))
    kept = [e.path for e in entries if isinstance(e, service.Entry)]
    rejected = {e.path: e.code for e in entries if isinstance(e, RejectedFile)}
    assert kept == ["photos/a.png"]
    assert rejected == {"photos/link.png": "unsupported_entry", "photos/a.png": "duplicate_path"}


def test_member_reads_are_bounded_even_when_sizes_lie() -> None:
    payload = b"\x89PNG\r\n\x1a\n" + bytes(5 * 1024 * 1024)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.png", payload)
    (entry,) = service.entries_from_zip(io.BytesIO(buf.getvalue()), Settings())
    assert isinstance(entry, service.Entry)
    entry.declared_size = 10  # an archive may claim anything; the read limit still holds
    assert len(entry.read(1000)) == 1000
    plan = service.plan(
        [entry, *service.entries_from_files([("ok.png", io.BytesIO(plain_image()))])],
        Settings(max_upload_bytes=1024 * 1024),
        service="remove_background",
        options={},
    )
    assert [i.entry.path for i in plan.items] == ["ok.png"]
    assert plan.rejected[0]["path"] == "big.png" and plan.rejected[0]["code"] == "file_too_large"
