"""Security headers on every page: a strict Content-Security-Policy and friends.

Scripts and styles come only from the app's own static files (no inline script or style, no CDN), images
from the app itself (and `data:` for rendered QR codes, and any map tile server named in
`HANOIPAY_WEB_IMAGE_ORIGINS`), and requests go only back to the app (the JSON API, server-sent events).
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(image_origins: list[str]) -> str:
    """The policy pages are sent with."""
    images = " ".join(["'self'", "data:", "blob:", *image_origins])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "media-src 'self' blob: data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """Adds the policy and the usual hardening headers to every HTML response."""

    def __init__(self, app: ASGIApp, *, image_origins: list[str]) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", content_security_policy(image_origins).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
            (b"permissions-policy", b"camera=(self), geolocation=(self), microphone=()"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
