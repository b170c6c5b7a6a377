"""Photos of reports, kept by the server: re-encoded (so only pixels survive — no location,
no camera, no hidden payload), bounded in size, named by their content's SHA-256, in one
directory (``DISPATCH_MEDIA_DIR``; by default beside the SQLite file, ``<db>.media/``, or
``./dispatch-media`` for PostgreSQL). A report links them as ``file:<sha256>.jpg``."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

from dispatch.domain.errors import InvalidCommand

__all__ = ["MAX_PHOTO_BYTES", "MAX_SIDE", "MediaStore"]

MAX_PHOTO_BYTES = 10 * 1024 * 1024  # what a phone's camera sends
MAX_SIDE = 2048  # pixels on the long side after re-encoding
MAX_PIXELS = 60_000_000  # refuse decompression bombs before decoding
_NAME = re.compile(r"^[0-9a-f]{64}\.jpg$")


class MediaStore:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def put(self, raw: bytes) -> str:
        """Store one photo; returns its media reference ``file:<sha256>.jpg``."""
        from PIL import Image, ImageOps, UnidentifiedImageError

        if len(raw) > MAX_PHOTO_BYTES:
            raise InvalidCommand(f"photo: larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB").saying(
                why="photo_too_large", limit=f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB")
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        try:
            with Image.open(io.BytesIO(raw)) as image:
                if image.format not in ("JPEG", "PNG", "WEBP", "GIF"):
                    raise InvalidCommand("photo: send a JPEG, PNG, WebP or GIF picture").saying(why="photo_type")
                image.load()
                upright = ImageOps.exif_transpose(image).convert("RGB")  # orientation kept, metadata dropped
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
            raise InvalidCommand("photo: not a picture this server can read").saying(why="photo_unreadable") from None
        upright.thumbnail((MAX_SIDE, MAX_SIDE))
        out = io.BytesIO()
        upright.save(out, format="JPEG", quality=85, optimize=True)  # no exif= : nothing but pixels
        data = out.getvalue()
        name = hashlib.sha256(data).hexdigest() + ".jpg"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / name
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return f"file:{name}"

    def path(self, name: str) -> Path | None:
        """The file of a stored photo (None for a name that is not one)."""
        if not _NAME.match(name):
            return None
        path = self.directory / name
        return path if path.is_file() else None
