"""The HTML pages behind the links in mails: email confirmation, password reset form."""

import logging
import secrets
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from . import recovery
from .errors import AuthError, RequestTooLargeError
from .services import Services
from .transport import page_headers, read_body

log = logging.getLogger(__name__)

# A reset form post carries two passwords and a token: a few kilobytes at most.
MAX_FORM_BYTES = 20_000


def render(
    services: Services, name: str, status: int = 200, **variables: object
) -> HTMLResponse:
    """A page template with its security headers; `nonce` marks the page's own scripts."""
    nonce = secrets.token_urlsafe(16)
    page = services.mailer.templates.page(name, nonce=nonce, **variables)
    return HTMLResponse(page, status_code=status, headers=page_headers(nonce))


def notification_page(
    services: Services, kind: str, message: str, status: int = 200
) -> HTMLResponse:
    return render(
        services,
        "notification_page",
        status,
        notifications=[{"type": kind, "message": message}],
    )


async def confirm_email(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        message = await recovery.confirm_email(
            services, request.query_params.get("token", "")
        )
    except AuthError as error:
        return notification_page(services, "error", str(error), 400)
    return notification_page(services, "success", message)


async def reset_password_form(request: Request) -> Response:
    services: Services = request.app.state.services
    if request.method == "POST":
        return await _reset_password(request, services)
    token = request.query_params.get("token", "")
    if not token:
        return notification_page(
            services, "error", "This password recovery link is incomplete.", 400
        )
    return render(services, "reset_password_form", token=token)


async def _reset_password(request: Request, services: Services) -> Response:
    """The form posted without JavaScript: reset, then show the outcome."""
    try:
        body = await read_body(request, MAX_FORM_BYTES)
    except RequestTooLargeError:
        return notification_page(services, "error", "The form is too large.", 413)
    form = {
        name: values[0]
        for name, values in parse_qs(body.decode("utf-8", "replace")).items()
    }
    password = form.get("password", "")
    if password != form.get("confirmation", password):
        return notification_page(
            services, "error", "The two passwords differ. Go back and try again.", 400
        )
    try:
        result = await recovery.reset_password(
            services, password, form.get("token", "")
        )
    except AuthError as error:
        return notification_page(services, "error", str(error), 400)
    notice = result["notifications"][0]
    return notification_page(services, notice["type"], notice["message"])


routes = [
    Route("/user/email/confirmation", confirm_email, methods=["GET"]),
    Route("/form/reset/password", reset_password_form, methods=["GET", "POST"]),
]
