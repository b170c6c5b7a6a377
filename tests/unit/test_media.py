"""Report photos: only pixels are kept — re-encoded, bounded, no EXIF (no GPS position, no
camera) — and anything that is not a picture is refused with one sentence."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from dispatch.adapters.media import MAX_SIDE, MediaStore
from dispatch.domain.errors import InvalidCommand


def _jpeg_with_gps(size: tuple[int, int] = (3000, 2000)) -> bytes:
    image = Image.new("RGB", size, (200, 60, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (30.0, 46.0, 48.0), 3: "E", 4: (121.0, 24.0, 0.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_a_photo_is_reencoded_without_its_metadata(tmp_path: Path) -> None:
    raw = _jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get(0x8825) is not None  # the phone's position is in it
    store = MediaStore(tmp_path / "media")
    ref = store.put(raw)
    assert ref.startswith("file:") and ref.endswith(".jpg")
    path = store.path(ref[5:])
    assert path is not None and oct(path.stat().st_mode & 0o777) == "0o600"
    with Image.open(path) as kept:
        assert not kept.getexif() and max(kept.size) == MAX_SIDE
    assert store.put(raw) == ref  # the same photo twice is one file


def test_what_is_not_a_picture_is_refused(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    for raw in (b"%PDF-1.4 not a picture", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b""):
        with pytest.raises(InvalidCommand, match="photo"):
            store.put(raw)
    assert store.path("../../etc/passwd") is None and store.path("x.jpg") is None
