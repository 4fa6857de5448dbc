"""A cap on the size of request bodies, enforced while they stream in.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a
body that turns out larger (chunked, or a lying header) is cut off as soon as it passes the
limit, before the multipart parser has spooled it all to disk.
"""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.uploads import human_size


def too_large(limit: int) -> str:
    return f"The request is larger than the limit of {human_size(limit)}."


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI passes it through its body parsing to our handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_size:
            response = JSONResponse({"detail": too_large(self.max_body_size)}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    raise BodyTooLarge(self.max_body_size)
            return message

        await self.app(scope, limited_receive, send)
