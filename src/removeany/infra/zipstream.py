"""Results as a ZIP streamed member by member (never the whole archive in memory), for batch
downloads and for several jobs' results at once. Images are already compressed, so they are
stored; a closing text member (a note) is deflated."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from removeany.infra.storage import Storage

# (path in the ZIP, storage key)
Entries = Iterable[tuple[str, str]]


class _Sink:
    """A write-only, non-seekable file: zipfile then streams (data descriptors)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _member(name: str, stamp: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.external_attr = 0o644 << 16
    return info


def stream_zip(
    storage: Storage,
    entries: Entries,
    *,
    on_missing: Callable[[str], None] | None = None,
    closing: Callable[[], tuple[str, bytes] | None] | None = None,
) -> Iterator[bytes]:
    """The ZIP's bytes, one member at a time. A file deleted meanwhile (the retention sweep
    was quicker) is skipped and reported to `on_missing` by its path in the ZIP; `closing`,
    asked after the last file, may add one last (name, text) member."""
    sink = _Sink()
    stamp = datetime.now(UTC).timetuple()[:6]
    with zipfile.ZipFile(  # type: ignore[call-overload]
        sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True
    ) as archive:
        for arcname, key in entries:
            try:
                data = storage.get(key)
            except FileNotFoundError:
                if on_missing is not None:
                    on_missing(arcname)
                continue
            archive.writestr(_member(arcname, stamp), data)
            yield sink.take()
        last = closing() if closing is not None else None
        if last is not None:
            archive.writestr(_member(last[0], stamp), last[1], zipfile.ZIP_DEFLATED)
    yield sink.take()
