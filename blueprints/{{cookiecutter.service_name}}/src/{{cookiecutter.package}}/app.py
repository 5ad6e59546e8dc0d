"""The ASGI application: routes, the GraphQL endpoint, start and stop."""

import gc
import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import explorer, metrics, pages, transport
from .api import GraphQLRunner, QueryLimits, build_schema
from .errors import AuthError
from .services import Services
from .settings import Settings
from .transport import RequestContext

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
        introspection=settings.introspection,
    )
    # GraphiQL explores the schema through introspection.
    graphiql = settings.graphiql and settings.introspection

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await Services.start(settings)
        app.state.services = services
        # What start made (the schema, modules, keys) lives as long as the
        # process: kept out of the cyclic collector's passes, which otherwise
        # walk it again and again under load (`me`/s +8 %, docs/performance.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # an app started again in this process (tests) frees them
            await services.stop()

    async def graphql(request: Request) -> Response:
        if request.method == "GET" and "query" not in request.query_params:
            return explorer.page() if graphiql else Response(status_code=404)
        context = RequestContext(services=request.app.state.services, request=request)
        started = time.perf_counter()
        try:
            transport.check_origin(request, settings)
            body = await transport.read_graphql_request(
                request, settings.max_body_bytes
            )
            result = await runner.run(
                body["query"],
                body.get("variables"),
                body.get("operationName"),
                context,
                read_only=request.method == "GET",
            )
        except AuthError as error:
            if settings.metrics:
                metrics.refused_request(time.perf_counter() - started)
            return transport.refusal(error)
        if settings.metrics:  # nobody reads them otherwise: no cost per request
            root_fields = runner.root_fields(body["query"], body.get("operationName"))
            metrics.graphql_request(root_fields, result, time.perf_counter() - started)
        response = JSONResponse(result)
        context.write_cookies(response)
        return response

    async def graphiql_asset(request: Request) -> Response:
        return (
            explorer.asset(request.path_params["name"])
            if graphiql
            else Response(status_code=404)
        )

    async def metrics_page(request: Request) -> Response:
        services: Services = request.app.state.services
        return Response(
            await metrics.scrape(services.store), media_type=metrics.CONTENT_TYPE
        )

    async def healthz(request: Request) -> Response:
        services: Services = request.app.state.services
        if await services.store.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "database unreachable"}, status_code=503)

    async def jwks(request: Request) -> Response:
        services: Services = request.app.state.services
        return JSONResponse(
            services.keys.jwks, headers={"cache-control": "public, max-age=300"}
        )

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/", graphql, methods=["POST"]),
        Route("/graphiql/{name}", graphiql_asset, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        *pages.routes,
    ]
    if settings.metrics:
        routes.append(Route("/metrics", metrics_page, methods=["GET"]))
    return Starlette(
        routes=routes, middleware=transport.middleware(settings), lifespan=lifespan
    )
