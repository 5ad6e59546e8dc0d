"""GraphiQL at GET /graphql, served by the service itself: no CDN, works offline.

The page loads pinned files from /graphiql/ (vendored from npm; versions and
why in the README), each with its Subresource Integrity hash, so a file that
was altered does not run; its Content-Security-Policy (transport.graphiql_headers)
runs only scripts of the service's own origin and connects only to it.
"""

import html
from pathlib import Path

from starlette.responses import FileResponse, HTMLResponse, Response

from .settings import SERVICE_NAME
from .transport import graphiql_headers

STATIC = Path(__file__).with_name("static")

#: Every file the page loads, in load order, with its SRI hash
#: (`openssl dgst -sha384 -binary FILE | base64`).
ASSETS = {
    # graphiql 4.1.2
    "graphiql.min.css": "sha384-1el1QShFBnnXTx9x/Cprg82hZWKt0ry29OAYIXt05swbi0KcZDFoj0CWguMpopJr",
    # react 18.3.1 and react-dom 18.3.1, their UMD builds
    "react.production.min.js": "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
    "react-dom.production.min.js": "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
    # graphiql 4.1.2
    "graphiql.min.js": "sha384-9XdHu7ajgGJziD4J1zNBKQ842Q/+zZfDv+ib1eMhZWBH6hPAs806x+Jbcf0yNO6B",
    # ours: starts GraphiQL on this endpoint
    "start.js": "sha384-G08viw8tUkEcP7EpPrxbVOFQFQ9fvnUo6shdhX8b+JEKLOQn3OtXMRy69Y1LcpEF",
}


def _tag(name: str) -> str:
    # Relative to /graphql, so the page also works under a path prefix.
    if name.endswith(".css"):
        return (
            f'<link rel="stylesheet" href="graphiql/{name}" integrity="{ASSETS[name]}">'
        )
    return f'<script src="graphiql/{name}" integrity="{ASSETS[name]}"></script>'


PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(SERVICE_NAME)} - GraphiQL</title>
{_tag("graphiql.min.css")}
</head>
<body>
<div id="graphiql">Loading GraphiQL...</div>
{"".join(_tag(name) for name in ASSETS if name.endswith(".js"))}
</body>
</html>
"""


def page() -> Response:
    return HTMLResponse(PAGE, headers=graphiql_headers())


def asset(name: str) -> Response:
    """One of the page's files; anything else is not found."""
    if name not in ASSETS:
        return Response(status_code=404)
    # The files change only with a new generation: a day's cache, revalidated by ETag.
    return FileResponse(
        STATIC / name, headers={"cache-control": "public, max-age=86400"}
    )
