"""Reading uploaded files: bounded while reading, named safely."""

from __future__ import annotations

from pathlib import PurePath, PureWindowsPath

from fastapi import UploadFile

from service.errors import UploadTooLarge

CHUNK = 1 << 20


def upload_name(upload: UploadFile) -> str:
    """The file's base name as the client sent it (never used as a path on our side)."""
    raw = upload.filename or ""
    name = PurePath(PureWindowsPath(raw).name).name.strip()
    return name[:255] or "image"


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The file's bytes, reading at most ``limit + 1`` of them: an oversized file is refused
    before it is ever held in memory whole. (The request as a whole is bounded while it
    streams in, by the app's ``max_body_size``.)"""
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge(
                f"{upload_name(upload)}: the file is larger than the upload limit of "
                f"{human_size(limit)}"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def human_size(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):g} MB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):g} KB"
    return f"{size} bytes"
