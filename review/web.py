"""The review web app: FastAPI routes rendering Jinja2 pages. Rules live in `workflow`, not here.

(No `from __future__ import annotations`: FastAPI must see the route-local `Annotated` aliases.)

Every route declares the least role it needs (`need("analyst")` ...); every POST checks the
session's CSRF token; Jinja2 escapes everything it prints (message text is hostile input).
"""


import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from review import accounts, exports, queue, workflow
from review.config import ReviewSettings
from review.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SecurityHeaders,
    end_session,
    is_secure,
    load_session,
    set_session_cookie,
    start_session,
    tokens_equal,
)
from storage.reviewdb import audit
from storage.reviewdb.engine import session_factory
from storage.reviewdb.models import AuditEntry, Item, Referral, User

HERE = Path(__file__).parent
_Row = TypeVar("_Row")
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class LoginRequired(Exception):
    pass


@dataclass
class Ctx:
    """The signed-in user, their session's CSRF token, and the database session of this request."""

    user: User
    csrf: str
    db: Session
    settings: ReviewSettings


def create_app(engine: Engine, settings: ReviewSettings | None = None) -> FastAPI:
    settings = settings or ReviewSettings()
    sessions = session_factory(engine)
    app = FastAPI(title="chanwatch review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.autoescape = True
    templates.env.filters["ts"] = lambda v: v.strftime("%Y-%m-%d %H:%M UTC") if v else ""
    templates.env.filters["embed_url"] = embed_url
    app.state.sessions, app.state.settings, app.state.templates = sessions, settings, templates
    _routes(app, sessions, settings, templates)

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    return app


def _get_or_404(db: Session, model: type[_Row], row_id: int, label: str) -> _Row:
    row = db.get(model, row_id)
    if row is None:
        raise HTTPException(404, f"No {label} {row_id}.")
    return row


def embed_url(item: Item) -> str | None:
    """Telegram's public embed of the post; only for a well-formed public username."""
    if item.channel_username and USERNAME_RE.match(item.channel_username):
        return f"https://t.me/{item.channel_username}/{int(item.message_id)}?embed=1&mode=tme"
    return None


def _routes(app: FastAPI, sessions: sessionmaker[Session], settings: ReviewSettings,
            templates: Jinja2Templates) -> None:
    immediate = sessions.kw["bind"].dialect.name == "sqlite"

    def db(request: Request) -> Iterator[Session]:
        """One session per request. On SQLite a POST takes the write lock up front (BEGIN IMMEDIATE):
        a transaction that read first and wrote later would fail if another writer committed between."""
        with sessions() as s:
            if immediate and request.method == "POST" and request.url.path != "/login":
                s.execute(text("BEGIN IMMEDIATE"))  # not for /login: the password check must not hold the lock
            yield s

    DB = Annotated[Session, Depends(db)]

    async def posted_csrf(request: Request) -> str | None:
        """The CSRF token a POST carries (reading the form needs `await`, the rest runs in the thread pool)."""
        if request.method != "POST":
            return None
        form = await request.form()
        return str(form.get("csrf_token") or "")

    def need(role: str):
        def dependency(request: Request, s: DB, csrf: Annotated[str | None, Depends(posted_csrf)]) -> Ctx:
            row = load_session(s, request.cookies.get(SESSION_COOKIE), workflow.now_utc())
            if row is None:
                raise LoginRequired()
            if not workflow.can(row.user, role):
                raise HTTPException(403, f"This page needs the {role} role.")
            if request.method == "POST" and not tokens_equal(csrf, row.csrf_token):
                raise HTTPException(403, "Missing or wrong CSRF token; reload the page and try again.")
            return Ctx(user=row.user, csrf=row.csrf_token, db=s, settings=settings)
        return dependency

    Analyst = Annotated[Ctx, Depends(need("analyst"))]
    Lead = Annotated[Ctx, Depends(need("lead"))]
    Admin = Annotated[Ctx, Depends(need("admin"))]

    def page(request: Request, name: str, ctx: Ctx | None, status: int = 200, **values: Any) -> HTMLResponse:
        values.update(request=request, user=ctx.user if ctx else None, csrf=ctx.csrf if ctx else None)
        return templates.TemplateResponse(request, name, values, status_code=status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return templates.TemplateResponse(request, "error.html", {"request": request, "user": None, "csrf": None,
                                                                  "message": exc.detail, "status": exc.status_code},
                                          status_code=exc.status_code)

    # -- login --------------------------------------------------------------------------------------
    @app.get("/login")
    def login_form(request: Request) -> HTMLResponse:
        import secrets

        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", None, login_csrf=token, error=None)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_secure(request),
                            max_age=3600)
        return response

    @app.post("/login")
    def login(request: Request, s: DB, name: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
              csrf_token: Annotated[str, Form()] = "") -> Response:
        if not tokens_equal(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE)):
            raise HTTPException(403, "Missing or wrong CSRF token; reload the login page.")
        address = request.client.host if request.client else "?"
        try:
            user = accounts.authenticate(s, name, password, address, settings)
        except accounts.LoginRefused as exc:
            response = page(request, "login.html", None, status=401, login_csrf=csrf_token, error=str(exc))
            return response
        token, _ = start_session(s, user, settings, workflow.now_utc())
        s.commit()
        response = RedirectResponse("/queue", status_code=303)
        set_session_cookie(response, request, token, settings)
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @app.post("/logout")
    def logout(request: Request, ctx: Analyst) -> Response:
        end_session(ctx.db, request.cookies.get(SESSION_COOKIE))
        audit.record(ctx.db, ctx.user.name, "logout")
        ctx.db.commit()
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/")
    def home(ctx: Analyst) -> Response:
        return RedirectResponse("/queue", status_code=303)

    # -- queue ------------------------------------------------------------------------------------
    def _filter(request: Request) -> queue.QueueFilter:
        q = request.query_params
        return queue.QueueFilter(status=q.get("status", "open"), list_name=q.get("list", ""),
                                 category=q.get("category", ""), channel=q.get("channel", ""),
                                 signal_type=q.get("signal", ""), sort=q.get("sort", "distance")).normalised()

    def _filter_query(f: queue.QueueFilter, **extra: str) -> str:
        values = {"status": f.status, "list": f.list_name, "category": f.category, "channel": f.channel,
                  "signal": f.signal_type, "sort": f.sort, **extra}
        return urlencode({k: v for k, v in values.items() if v})

    @app.get("/queue")
    def queue_view(request: Request, ctx: Analyst) -> HTMLResponse:
        f = _filter(request)
        result = queue.queue_page(ctx.db, f, request.query_params.get("after"), settings.page_size)
        return page(request, "queue.html", ctx, f=f, result=result, facets=queue.facets(ctx.db),
                    summary=queue.match_summary(ctx.db, [i.id for i in result.items]), now=workflow.now_utc(),
                    statuses=queue.STATUS_FILTERS, sorts=queue.SORTS,
                    next_url=f"/queue?{_filter_query(f, after=result.next_cursor)}" if result.next_cursor else None,
                    filter_query=_filter_query(f))

    @app.post("/queue/next")
    def review_next(request: Request, ctx: Analyst) -> Response:
        f = _filter(request)
        result = queue.queue_page(ctx.db, f, None, 200)
        item = workflow.claim_next(ctx.db, ctx.user, settings, [i.id for i in result.items])
        ctx.db.commit()
        if item is None:
            return RedirectResponse(f"/queue?{_filter_query(f)}", status_code=303)
        return RedirectResponse(f"/items/{item.id}", status_code=303)

    # -- evidence and decisions ---------------------------------------------------------------------
    def _item(ctx: Ctx, item_id: int) -> Item:
        return _get_or_404(ctx.db, Item, item_id, "item")

    def evidence(request: Request, ctx: Ctx, item: Item, status: int = 200, error: str | None = None,
                 preview: str = "none") -> HTMLResponse:
        return page(request, "item.html", ctx, status=status, item=item, error=error, preview=preview,
                    sightings=queue.sightings(ctx.db, item), holds=workflow.holds_claim(item, ctx.user),
                    referrals=workflow.earlier_referrals(ctx.db, item.id),
                    earlier_referrals=workflow.earlier_referrals(ctx.db, item.reappearance_of_id)
                    if item.reappearance_of_id else [],
                    history=ctx.db.scalars(select(AuditEntry).where(AuditEntry.item_id == item.id)
                                           .order_by(AuditEntry.seq)).all(),
                    can_lead=workflow.can(ctx.user, "lead"), now=workflow.now_utc())

    @app.get("/items/{item_id}")
    def item_view(request: Request, item_id: int, ctx: Analyst) -> HTMLResponse:
        return evidence(request, ctx, _item(ctx, item_id))

    def _act(request: Request, ctx: Ctx, item: Item, action) -> Response:
        try:
            action()
        except workflow.WorkflowError as exc:
            ctx.db.rollback()
            return evidence(request, ctx, _item(ctx, item.id), status=409, error=str(exc))
        ctx.db.commit()
        return RedirectResponse(f"/items/{item.id}", status_code=303)

    @app.post("/items/{item_id}/claim")
    def claim_item(request: Request, item_id: int, ctx: Analyst) -> Response:
        item = _item(ctx, item_id)
        return _act(request, ctx, item, lambda: workflow.claim(ctx.db, item_id, ctx.user, settings))

    @app.post("/items/{item_id}/release")
    def release_item(request: Request, item_id: int, ctx: Analyst) -> Response:
        item = _item(ctx, item_id)
        return _act(request, ctx, item, lambda: workflow.release(ctx.db, item, ctx.user))

    @app.post("/items/{item_id}/decide")
    def decide_item(request: Request, item_id: int, ctx: Analyst, decision: Annotated[str, Form()] = "",
                    reason: Annotated[str, Form()] = "") -> Response:
        item = _item(ctx, item_id)
        return _act(request, ctx, item, lambda: workflow.decide(ctx.db, item, ctx.user, decision, reason))

    @app.post("/items/{item_id}/reappearance")
    def confirm_reappearance(request: Request, item_id: int, ctx: Analyst) -> Response:
        item = _item(ctx, item_id)
        return _act(request, ctx, item, lambda: workflow.confirm_reappearance(ctx.db, item, ctx.user))

    @app.post("/items/{item_id}/approve")
    def approve_item(request: Request, item_id: int, ctx: Lead) -> Response:
        item = _item(ctx, item_id)
        return _act(request, ctx, item, lambda: workflow.approve(ctx.db, item, ctx.user))

    @app.post("/items/{item_id}/preview")
    def preview_item(request: Request, item_id: int, ctx: Analyst, mode: Annotated[str, Form()] = "blurred"
                     ) -> HTMLResponse:
        """Showing the public post, blurred, and revealing it are deliberate acts, so both are logged."""
        item = _item(ctx, item_id)
        mode = "revealed" if mode == "revealed" else "blurred"
        if embed_url(item) is None:
            return evidence(request, ctx, item, status=409, error="No public embed exists for this post.")
        audit.record(ctx.db, ctx.user.name, f"preview_{mode}", item_id=item.id)
        ctx.db.commit()
        return evidence(request, ctx, item, preview=mode)

    # -- approvals and referrals -------------------------------------------------------------------
    @app.get("/approvals")
    def approvals(request: Request, ctx: Lead) -> HTMLResponse:
        items = ctx.db.scalars(select(Item).where(Item.status == "confirmed").order_by(Item.priority.desc(),
                                                                                        Item.decided_at)).all()
        return page(request, "approvals.html", ctx, items=items)

    @app.get("/referrals")
    def referrals(request: Request, ctx: Lead, error: str | None = None) -> HTMLResponse:
        return page(request, "referrals.html", ctx, error=error,
                    approved=ctx.db.scalars(select(Item).where(Item.status == "approved")
                                            .order_by(Item.approved_at)).all(),
                    referrals=ctx.db.scalars(select(Referral).order_by(Referral.id.desc())).all(),
                    stats=workflow.removal_stats(ctx.db),
                    due=workflow.due_renotices(ctx.db, settings, workflow.now_utc()))

    @app.post("/referrals")
    async def create_referral(request: Request, ctx: Lead) -> Response:
        form = await request.form()
        ids = [int(v) for v in form.getlist("item_id") if str(v).isdigit()]
        try:
            referral = workflow.create_referral(ctx.db, ctx.user, ids, str(form.get("recipient") or ""))
        except workflow.WorkflowError as exc:
            ctx.db.rollback()
            response = referrals(request, ctx, error=str(exc))
            response.status_code = 409
            return response
        ctx.db.commit()
        return RedirectResponse(f"/referrals/{referral.id}", status_code=303)

    def _referral(ctx: Ctx, referral_id: int) -> Referral:
        return _get_or_404(ctx.db, Referral, referral_id, "referral")

    @app.get("/referrals/{referral_id}")
    def referral_view(request: Request, referral_id: int, ctx: Lead, error: str | None = None) -> HTMLResponse:
        return page(request, "referral.html", ctx, referral=_referral(ctx, referral_id), error=error)

    @app.post("/referrals/{referral_id}/sent")
    def referral_sent(request: Request, referral_id: int, ctx: Lead) -> Response:
        referral = _referral(ctx, referral_id)
        try:
            workflow.mark_sent(ctx.db, referral, ctx.user)
        except workflow.WorkflowError as exc:
            ctx.db.rollback()
            response = referral_view(request, referral_id, ctx, error=str(exc))
            response.status_code = 409
            return response
        ctx.db.commit()
        return RedirectResponse(f"/referrals/{referral_id}", status_code=303)

    @app.get("/referrals/{referral_id}/export.{fmt}")
    def referral_export(referral_id: int, fmt: str, ctx: Lead) -> Response:
        referral = _referral(ctx, referral_id)
        if fmt not in ("csv", "json"):
            raise HTTPException(404, "Export as csv or json.")
        audit.record(ctx.db, ctx.user.name, "export_referral", referral_id=referral.id, detail={"format": fmt})
        ctx.db.commit()
        body = exports.referral_csv(referral) if fmt == "csv" else exports.referral_json(referral)
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
        return Response(body, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{referral.reference}.{fmt}"'})

    # -- audit and accounts ------------------------------------------------------------------------
    @app.get("/audit")
    def audit_view(request: Request, ctx: Lead) -> HTMLResponse:
        before = request.query_params.get("before", "")
        query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(100)
        if before.isdigit():
            query = query.where(AuditEntry.seq < int(before))
        entries = ctx.db.scalars(query).all()
        return page(request, "audit.html", ctx, entries=entries,
                    older=entries[-1].seq if len(entries) == 100 else None)

    @app.get("/admin/users")
    def users_view(request: Request, ctx: Admin) -> HTMLResponse:
        return page(request, "users.html", ctx, users=ctx.db.scalars(select(User).order_by(User.name)).all(),
                    now=workflow.now_utc(),
                    open_items=ctx.db.scalar(select(func.count(Item.id)).where(Item.status.in_(workflow.OPEN))))

    @app.post("/admin/users/{user_id}/unlock")
    def unlock_user(user_id: int, ctx: Admin) -> Response:
        user = _get_or_404(ctx.db, User, user_id, "user")
        accounts.unlock(ctx.db, user, ctx.user.name)
        ctx.db.commit()
        return RedirectResponse("/admin/users", status_code=303)


__all__ = ["create_app"]
