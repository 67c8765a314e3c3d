"""Security headers on every page: a strict Content-Security-Policy and friends.

Scripts and styles come only from the app's own static files (no inline script or style, no CDN), images
from the app itself (and `data:` for rendered QR codes, and any map tile server named in
`HANOIPAY_WEB_IMAGE_ORIGINS`), and requests go only back to the app (the JSON API, server-sent events).
"""

from functools import lru_cache

from hanoipay.settings import get_settings


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


@lru_cache(maxsize=1)
def _headers(image_origins: tuple[str, ...]) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(list(image_origins)),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(self), geolocation=(self), microphone=()",
    }


def page_headers() -> dict[str, str]:
    """The headers every page is sent with (added by `render`, so the JSON API pays nothing for them)."""
    return _headers(tuple(get_settings().web_image_origins))
