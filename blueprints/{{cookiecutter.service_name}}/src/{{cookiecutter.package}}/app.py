"""The ASGI application: routes, the GraphQL endpoint, start and stop."""

import json
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from ariadne.explorer import ExplorerGraphiQL
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import pages
from .api import GraphQLRunner, QueryLimits, build_schema
from .errors import AuthError, BadRequestError, RequestTooLargeError
from .services import RequestContext, Services, read_body
from .settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    runner = GraphQLRunner(
        build_schema(),
        QueryLimits(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_query_aliases,
            max_fields=settings.max_query_fields,
        ),
    )
    explorer = ExplorerGraphiQL(title="{{ cookiecutter.service_name }}").html(None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await Services.start(settings)
        app.state.services = services
        try:
            yield
        finally:
            await services.stop()

    async def graphql(request: Request) -> Response:
        if request.method == "GET":
            if not settings.graphiql:
                return Response(status_code=404)
            return HTMLResponse(explorer)
        try:
            body = await _read_json(request, settings.max_body_bytes)
        except RequestTooLargeError as error:
            return _error_response(error, 413)
        except BadRequestError as error:
            return _error_response(error, 400)
        context = RequestContext(services=request.app.state.services, request=request)
        result = await runner.run(
            body["query"], body.get("variables"), body.get("operationName"), context
        )
        response = JSONResponse(result)
        for name, value, max_age in context.cookies:
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path=settings.cookie_path,
                domain=settings.cookie_domain,
                secure=settings.secure_cookies,
                httponly=True,
                samesite=settings.cookie_samesite,
            )
        return response

    async def healthz(request: Request) -> Response:
        services: Services = request.app.state.services
        if await services.store.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "database unreachable"}, status_code=503)

    async def jwks(request: Request) -> Response:
        services: Services = request.app.state.services
        return JSONResponse(services.keys.jwks, headers={"cache-control": "public, max-age=300"})

    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_credentials=True,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/", graphql, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        *pages.routes,
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a GraphQL request, refusing oversized bodies early."""
    try:
        body = json.loads(await read_body(request, limit))
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("The request body is not valid JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise BadRequestError("The request body must be a JSON object with a 'query' string.")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequestError("'variables' must be a JSON object.")
    operation = body.get("operationName")
    if operation is not None and not isinstance(operation, str):
        raise BadRequestError("'operationName' must be a string.")
    return body


def _error_response(error: AuthError, status: int) -> JSONResponse:
    formatted = {"message": str(error), "extensions": {"type": error.type}, "type": error.type}
    return JSONResponse({"errors": [formatted]}, status_code=status)
