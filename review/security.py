"""Sessions, CSRF tokens and security headers for the review app.

Sessions are server-side: the cookie carries a random token and the database only its SHA-256,
so a leaked database does not hand out live sessions. Every form carries the session's CSRF
token; the login form, which comes before any session, uses a double-submit cookie instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import delete
from sqlalchemy.orm import Session
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

from review.config import ReviewSettings
from storage.reviewdb.models import User, WebSession

SESSION_COOKIE = "cw_session"
LOGIN_CSRF_COOKIE = "cw_login_csrf"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "frame-src https://t.me; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_secure(request: Request) -> bool:
    """Cookies get `Secure` when the app is reached over TLS (directly or via a proxy that says so)."""
    return request.url.scheme == "https"


def start_session(db: Session, user: User, settings: ReviewSettings, now: dt.datetime) -> tuple[str, WebSession]:
    token = secrets.token_urlsafe(32)
    row = WebSession(token_hash=token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                     created_at=now, expires_at=now + dt.timedelta(hours=settings.session_hours))
    db.add(row)
    db.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at < now))
    return token, row


def load_session(db: Session, token: str | None, now: dt.datetime) -> WebSession | None:
    if not token:
        return None
    row = db.get(WebSession, token_hash(token))
    if row is None or row.expires_at <= now or not row.user.active:
        return None
    return row


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(WebSession).where(WebSession.token_hash == token_hash(token)))


def set_session_cookie(response: Response, request: Request, token: str, settings: ReviewSettings) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_hours * 3600, httponly=True,
                        samesite="strict", secure=is_secure(request), path="/")


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


class SecurityHeaders(BaseHTTPMiddleware):
    """A CSP without inline script, no framing, no sniffing, no caching of analyst pages."""

    async def dispatch(self, request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        if is_secure(request):
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response
