"""batches/zipdir.py: a ZIP's central directory found and counted by the PKWARE APPNOTE, before
zipfile reads it, without zipfile's private `_EndRecData` (which the count used before, with
a fallback to "no entries" where a Python lacked it: the entry limit then went unchecked).
Each archive is made by zipfile and changed byte by byte where a case needs what zipfile
will not write. The reader is strict: an archive two readers could read differently (a
comment cut off or followed by other bytes, end-record bytes in the comment, ZIP64 records
that disagree with the end record or point elsewhere, a directory holding other than its
records declare) is refused as `invalid_archive`, where before zipfile's reading was taken."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from removeany.batches import service, zipdir
from removeany.context import Context
from removeany.infra.settings import Settings
from tests.batches._images import photo_paths, small_photo
from tests.batches.test_hostile_zips import REFUSAL, _nothing_stored_or_charged
from tests.helpers import make_api_key, make_user

MEMBERS = [(f"{i}.jpg", b"x" * (i + 1)) for i in range(5)]


@contextmanager
def _always_zip64() -> Iterator[None]:
    """zipfile writes ZIP64 end records only past 65,535 entries, unless told otherwise."""
    limit = zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP_FILECOUNT_LIMIT = 0  # type: ignore[misc]
    try:
        yield
    finally:
        zipfile.ZIP_FILECOUNT_LIMIT = limit  # type: ignore[misc]


def _zip(members: list[tuple[str, bytes]] = MEMBERS, *, comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
        archive.comment = comment
    return buffer.getvalue()


def _zip64(members: list[tuple[str, bytes]] = MEMBERS) -> bytes:
    with _always_zip64():
        data = _zip(members)
    assert zipdir.END64_SIGNATURE in data and zipdir.LOCATOR_SIGNATURE in data
    return data


def _set(data: bytes, signature: bytes, offset: int, fmt: str, value: int) -> bytes:
    """One field of the last record with `signature` changed."""
    out = bytearray(data)
    struct.pack_into(fmt, out, out.rindex(signature) + offset, value)
    return bytes(out)


def _count(data: bytes, settings: Settings | None = None) -> int:
    return service.count_zip_images(io.BytesIO(data), settings or Settings())


def _refused(data: bytes) -> bool:
    with pytest.raises(service.BatchError) as refused:
        _count(data)
    assert refused.value.code == "invalid_archive" and refused.value.message == REFUSAL
    with pytest.raises(service.BatchError):
        list(service.entries_from_zip(io.BytesIO(data), Settings()))
    return True


def _as_zipfile_reads(data: bytes) -> None:
    """Counted as zipfile reads it, member for member, from the same offset."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    found = zipdir.find(io.BytesIO(data))
    assert found.start == archive.start_dir
    assert zipdir.count_entries(io.BytesIO(data), found, 10_000) == len(archive.infolist())
    assert _count(data) == sum(1 for i in archive.infolist() if i.filename.endswith(".jpg"))


def test_comments_of_any_length_are_read_past() -> None:
    for comment in (b"", b"made by hand", b"PK", b"\0" * 100, b"c" * 0xFFFF):
        data = _zip(comment=comment)
        _as_zipfile_reads(data)
        assert _count(data) == 5
    # A self-extractor: a program before the archive, its offsets counted from the archive.
    _as_zipfile_reads(b"#!/bin/sh\nexit 0\n" + _zip(comment=b"sfx"))


def test_end_record_bytes_inside_the_comment_are_refused() -> None:
    """The comment is the last thing in a ZIP and its length is in the record before it;
    the record is found by searching backwards, so a comment holding the record's signature
    hides the real one (zipfile takes the copy in the comment). Such an archive is refused,
    whatever the bytes after the signature say, rather than read one way here and another
    way elsewhere."""
    for comment in (
        b"scanned PK\x05\x06 by mistake",
        b"PK\x05\x06" + b"\0" * 18,  # a whole empty record, comment length 0
        b"x" * 40 + b"PK\x05\x06",
    ):
        assert _refused(_zip(comment=comment))


def test_a_cut_off_archive_is_refused_wherever_it_is_cut() -> None:
    """Every cut of the last 200 bytes (the comment, the end record, the directory). Before,
    a cut inside the comment was read as a shorter comment: a file that did not finish
    uploading or downloading was taken as whole."""
    data = _zip(comment=b"0123456789" * 4)
    for cut in range(1, 200):
        assert _refused(data[:-cut]), cut
    assert _refused(_zip64()[:-1])
    assert _refused(b"")
    assert _refused(b"PK\x05\x06")


def test_bytes_after_the_comment_are_refused() -> None:
    """The comment must end at the end of the file: zipfile reads past what follows it."""
    assert _refused(_zip() + b"\0")
    assert _refused(_zip(comment=b"note") + b"trailing bytes")
    # A comment length that reaches past the file.
    assert _refused(_set(_zip(comment=b"note"), b"PK\x05\x06", 20, "<H", 5))


def test_zip64_records_are_read_strictly() -> None:
    data = _zip64()
    found = zipdir.find(io.BytesIO(data))
    assert found.zip64 and found.entries == 5 and found.prefix == 0
    _as_zipfile_reads(data)
    prefixed = b"MZ self-extractor " * 10 + data
    assert zipdir.find(io.BytesIO(prefixed)).prefix == 180
    _as_zipfile_reads(prefixed)
    # zipfile writes 0xFFFF... in the end record only for what does not fit: both are read.
    _as_zipfile_reads(_set(data, b"PK\x05\x06", 16, "<L", 0xFFFFFFFF))

    # Records that disagree, which zipfile settled by taking the ZIP64 record's values.
    for signature, offset, fmt, value in [
        (b"PK\x05\x06", 10, "<H", 4),  # the end record's entries: 4, the ZIP64 record's 5
        (b"PK\x05\x06", 16, "<L", 7),  # the end record's directory offset
        (b"PK\x06\x06", 24, "<Q", 4),  # the ZIP64 record's entries on this disk
        (b"PK\x06\x06", 32, "<Q", 4),  # the ZIP64 record's entries: the directory holds 5
        (b"PK\x06\x06", 4, "<Q", 60),  # extensible data: the record starts elsewhere
        (b"PK\x06\x07", 8, "<Q", 3),  # the locator points at something else
        (b"PK\x06\x07", 4, "<L", 1),  # the record on another disk
        (b"PK\x06\x07", 16, "<L", 2),  # two disks
        (b"PK\x06\x06", 0, "<L", 0),  # a locator without its record
    ]:
        assert _refused(_set(data, signature, offset, fmt, value)), (signature, offset)


def test_the_directory_must_hold_what_the_end_record_declares() -> None:
    data = _zip()
    for offset, fmt, value in [
        (8, "<H", 4),  # entries on this disk: 4 of 5
        (10, "<H", 6),  # entries: 6, the directory holds 5
        (4, "<H", 1),  # this is disk 1
        (6, "<H", 1),  # the directory is on disk 1
        (12, "<L", 10),  # a directory of 10 bytes ends in the middle of a header
    ]:
        assert _refused(_set(data, b"PK\x05\x06", offset, fmt, value)), offset
    # 0xFFFF entries: "too many to say", what writers put there past 65,535 without ZIP64.
    assert (
        _count(_set(_set(data, b"PK\x05\x06", 8, "<H", 0xFFFF), b"PK\x05\x06", 10, "<H", 0xFFFF))
        == 5
    )


def _many_entries_zip64(count: int) -> bytes:
    """One member, and a ZIP64 directory of `count` entries all pointing at it."""
    data = _zip64([("a", b"x")])
    found = zipdir.find(io.BytesIO(data))
    directory = data[found.start : found.start + found.size] * count
    records = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), found.start
    ) + struct.pack("<4sLQL", b"PK\x06\x07", 0, found.start + len(directory), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[: found.start] + directory + records + end


def test_too_many_entries_behind_a_zip64_record_are_refused_before_zipfile_reads_them() -> None:
    settings = Settings(batch_max_items=3)  # at most 2 * 3 + 1000 entries
    assert _count(_many_entries_zip64(1006), settings) == 0  # all named "a": no images
    with pytest.raises(service.BatchTooLarge):
        _count(_many_entries_zip64(1007), settings)
    with pytest.raises(service.BatchTooLarge):
        _count(_many_entries_zip64(200_000), settings)


def test_the_limit_holds_on_a_python_without_zipfiles_private_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The count used zipfile._EndRecData and, where it was missing (a private function a
    Python release may rename), counted 0 entries: the limit was then never checked and
    zipfile read every entry of a 200,000-entry directory."""
    monkeypatch.delattr(zipfile, "_EndRecData")
    with pytest.raises(service.BatchTooLarge):
        _count(_many_entries_zip64(200_000), Settings(batch_max_items=3))


def test_the_api_refuses_such_archives_and_stores_nothing(client: TestClient, ctx: Context) -> None:
    photo = small_photo(photo_paths(1)[0], 120)
    good = _zip([("a.jpg", photo), ("b.jpg", photo)], comment=b"shop photos")
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    for data in (
        good[:-3],  # cut off in the comment
        good + b"\r\n",  # bytes after the comment
        _zip([("a.jpg", photo)], comment=b"see PK\x05\x06"),
        _set(_zip64([("a.jpg", photo)]), b"PK\x05\x06", 10, "<H", 2),
    ):
        response = client.post(
            "/api/v1/batches",
            headers=headers,
            files={"archive": ("x.zip", data, "application/zip")},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == {"code": "invalid_archive", "message": REFUSAL}
    _nothing_stored_or_charged(ctx, user.id, 5)
    response = client.post(
        "/api/v1/batches", headers=headers, files={"archive": ("x.zip", good, "application/zip")}
    )
    assert response.status_code == 202, response.text
    assert response.json()["total"] == 2
