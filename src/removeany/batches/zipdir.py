"""Where a ZIP's central directory is, and how many entries it holds, read strictly by the
PKWARE APPNOTE (6.3.10): the end of central directory record (4.3.16), the ZIP64 end of
central directory locator (4.3.15) and record (4.3.14), and the central directory headers
(4.3.12). Nothing is decompressed and nothing is built per entry, so a directory of millions
of entries is counted up to a limit before `zipfile` makes an object of each.

Strict means: an archive that two readers could read differently is refused, never guessed
at. The end record is the last one in the file's final 64 KiB, as `zipfile` looks for it,
and its comment must end exactly at the end of the file: end-record bytes inside a comment,
a cut-off comment or bytes after it are refused, and so is a whole record at the end of a
comment (an earlier record's comment would end there too: two readings). A ZIP64 locator
must sit right before the end record with its record right before it, without extensible
data, pointing at that record, with the end record's fields either the same values or
0xFFFF... ("see ZIP64"). The directory must end where those records begin (bytes before the
archive, a self-extractor's, are allowed: `prefix`), hold only whole headers, and as many as
the records say. batch.js (countZipImages) reads ZIPs in the browser by the same rules."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

END = struct.Struct("<4s4H2LH")  # signature, disk, directory's disk, entries here, entries,
# directory size, directory offset, comment length
END_SIGNATURE = b"PK\x05\x06"
LOCATOR = struct.Struct("<4sLQL")  # signature, record's disk, record's offset, disks
LOCATOR_SIGNATURE = b"PK\x06\x07"
END64 = struct.Struct("<4sQ2H2L4Q")  # signature, size of the rest, versions, disk,
# directory's disk, entries here, entries, directory size, directory offset
END64_SIGNATURE = b"PK\x06\x06"
END64_REST = END64.size - 12  # the record's own "size" field: no extensible data after it
CENTRAL = struct.Struct("<4s24x3H12x")  # signature, name, extra and comment lengths
CENTRAL_SIGNATURE = b"PK\x01\x02"
# zipfile's search window: a comment is at most 65,535 bytes, after the 22-byte record.
SEARCHED = (1 << 16) + END.size


class Malformed(Exception):
    """Not a ZIP this reader can read unambiguously (the reason is for logs and tests)."""


@dataclass(frozen=True)
class Directory:
    start: int  # offset in the file of the first central directory header
    size: int  # bytes of central directory headers
    entries: int | None  # entries the records declare; None where they say 0xFFFF (unknown)
    prefix: int  # bytes before the archive itself (a self-extractor's program)
    zip64: bool


def _unsigned(value: int, width: int) -> bool:
    """An end record field set to all ones: "the value is in the ZIP64 record"."""
    return value == (1 << width) - 1


def find(fileobj: IO[bytes]) -> Directory:
    """The archive's central directory, or Malformed. Leaves the file position anywhere."""
    size = fileobj.seek(0, 2)
    if size < END.size:
        raise Malformed("shorter than an end of central directory record")
    window = min(size, SEARCHED)
    fileobj.seek(size - window)
    tail = fileobj.read(window)
    at = tail.rfind(END_SIGNATURE)
    if at < 0:
        raise Malformed("no end of central directory record")
    if at + END.size > len(tail):
        raise Malformed("the end of central directory record is cut off")
    (_sig, disk, dir_disk, here, entries, dir_size, dir_offset, comment) = END.unpack_from(tail, at)
    if at + END.size + comment != len(tail):
        raise Malformed("the archive comment does not end at the end of the file")
    # A whole record at the end of a comment would be read as the end record; one before it
    # whose comment also reaches the end of the file is the other reading.
    other = tail.rfind(END_SIGNATURE, 0, at)
    while other >= 0:
        if other + END.size + END.unpack_from(tail, other)[-1] == len(tail):
            raise Malformed("an end of central directory record inside the comment")
        other = tail.rfind(END_SIGNATURE, 0, other)
    location = size - window + at
    found = _zip64(fileobj, location)
    if found is None:
        if disk or dir_disk or here != entries:
            raise Malformed("an archive split over several disks")
        end, declared = location, (None if _unsigned(entries, 16) else entries)
    else:
        end, z_entries, z_size, z_offset = found
        for value, exact, width in (
            (disk, 0, 16),
            (dir_disk, 0, 16),
            (here, min(z_entries, 0xFFFF), 16),
            (entries, min(z_entries, 0xFFFF), 16),
            (dir_size, z_size, 32),
            (dir_offset, z_offset, 32),
        ):
            if value != exact and not _unsigned(value, width):
                raise Malformed("the end record and the ZIP64 record disagree")
        declared, dir_size, dir_offset = z_entries, z_size, z_offset
    prefix = end - dir_size - dir_offset
    if prefix < 0:
        raise Malformed("the central directory would start before the file")
    return Directory(end - dir_size, dir_size, declared, prefix, zip64=found is not None)


def _zip64(fileobj: IO[bytes], location: int) -> tuple[int, int, int, int] | None:
    """(record's offset, entries, directory size, directory offset) from the ZIP64 records
    right before the end record at `location`; None where there is no locator."""
    if location < LOCATOR.size:
        return None
    fileobj.seek(location - LOCATOR.size)
    locator = fileobj.read(LOCATOR.size)
    if len(locator) != LOCATOR.size or locator[:4] != LOCATOR_SIGNATURE:
        return None
    _sig, record_disk, record_offset, disks = LOCATOR.unpack(locator)
    if record_disk != 0 or disks > 1:
        raise Malformed("an archive split over several disks")
    at = location - LOCATOR.size - END64.size
    if at < 0:
        raise Malformed("a ZIP64 locator without its record")
    fileobj.seek(at)
    record = fileobj.read(END64.size)
    (sig, rest, _made, _needed, disk, dir_disk, here, entries, dir_size, dir_offset) = END64.unpack(
        record
    )
    if sig != END64_SIGNATURE or rest != END64_REST:
        raise Malformed("the ZIP64 record is not right before its locator")
    if disk or dir_disk or here != entries:
        raise Malformed("an archive split over several disks")
    # The locator's offset counts from the file's start, or from the archive's where a
    # program was put before it (as the directory offset does).
    if record_offset not in (at, dir_offset + dir_size):
        raise Malformed("the ZIP64 locator points elsewhere")
    return at, entries, dir_size, dir_offset


def count_entries(fileobj: IO[bytes], directory: Directory, stop: int) -> int:
    """The directory's entries, walked header by header, up to `stop` (the walk ends there:
    the caller refuses that many). Malformed where a header is not one, runs past the
    directory, or the directory holds other than the records declare."""
    count = total = 0
    while total < directory.size and count < stop:
        fileobj.seek(directory.start + total)
        head = fileobj.read(CENTRAL.size)
        if len(head) != CENTRAL.size or head[:4] != CENTRAL_SIGNATURE:
            raise Malformed("not a central directory header")
        _sig, name, extra, comment = CENTRAL.unpack(head)
        total += CENTRAL.size + name + extra + comment
        if total > directory.size:
            raise Malformed("a central directory header runs past the directory")
        count += 1
    if count < stop and directory.entries is not None and directory.entries != count:
        raise Malformed("the directory holds other than the records declare")
    return count
