"""`python -m {{ cookiecutter.package }} serve`: start the service with uvicorn."""

import argparse
import asyncio
import copy
import logging
import os
import sys

import uvicorn
from pydantic import ValidationError

from .settings import Settings, available_cores
from .transport import RedactTokens

log = logging.getLogger("{{ cookiecutter.package }}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="{{ cookiecutter.package }}", description="{{ cookiecutter.description }}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # Mailed links point at the address served unless AUTH_PUBLIC_URL is set.
    if not _public_url_configured():
        os.environ["AUTH_PUBLIC_URL"] = listening_url(args.host, args.port)
    # The workers share the machine's cores for password hashing.
    cores = available_cores()
    os.environ.setdefault("AUTH_HASH_CONCURRENCY", str(max(1, cores // max(1, args.workers))))
    try:
        asyncio.run(preflight())
    except ValidationError as error:
        log.error("cannot start: %s", "; ".join(_problem(detail) for detail in error.errors()))
        sys.exit(1)
    except (RuntimeError, ValueError) as error:
        log.error("cannot start: %s", error)
        sys.exit(1)
    # The access log shows the links' paths, never their one-time tokens.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    log_config["handlers"]["access"]["filters"] = ["redact_tokens"]
    uvicorn.run(
        "{{ cookiecutter.package }}.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=log_config,
        proxy_headers=False,
    )


def _public_url_configured() -> bool:
    """Whether AUTH_PUBLIC_URL is set, in the environment or `.env`."""
    try:
        return "public_url" in Settings().model_fields_set
    except ValidationError:
        return True  # preflight reports the bad settings


def listening_url(host: str, port: int) -> str:
    """http://host:port of `serve`; a wildcard address is reached on this machine."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _problem(detail: dict) -> str:
    """One line per bad setting, named as the environment names it."""
    message = detail["msg"].removeprefix("Value error, ")
    if message.startswith("AUTH_") or not detail["loc"]:
        return message
    return f"AUTH_{str(detail['loc'][0]).upper()}: {message}"


async def preflight() -> None:
    """Open the store once before serving, so that schema changes are applied
    and a model the stored data cannot take stops here with a clear message
    (not a traceback from every worker)."""
    from .store import SchemaError, open_store

    store = open_store(Settings().database)
    try:
        await store.open()
    except SchemaError as error:
        raise RuntimeError(str(error)) from None
    finally:
        await store.close()


if __name__ == "__main__":
    main()
