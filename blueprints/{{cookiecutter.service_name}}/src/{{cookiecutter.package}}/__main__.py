"""`python -m {{ cookiecutter.package }} serve`: start the service with uvicorn."""

import argparse
import asyncio
import copy
import logging
import os
import re
import sys
from pathlib import Path

import uvicorn
from pydantic import ValidationError

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
    logging.basicConfig(
        level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    conflicted = conflicted_files()
    if conflicted:
        log.error(
            "cannot start: unresolved conflict markers in %s; resolve them, then run authgen generate again",
            ", ".join(map(str, conflicted)),
        )
        sys.exit(1)
    # Imported only now: a module with conflict markers does not import.
    from .settings import available_cores
    from .transport import RedactTokens

    # The workers share the machine's cores for password hashing.
    cores = available_cores()
    os.environ.setdefault(
        "AUTH_HASH_CONCURRENCY", str(max(1, cores // max(1, args.workers)))
    )
    try:
        asyncio.run(preflight())
    except ValidationError as error:
        log.error(
            "cannot start: %s", "; ".join(_problem(detail) for detail in error.errors())
        )
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


#: A merge conflict as authgen (or git) leaves it: a start and an end marker at line starts.
CONFLICT_MARKERS = re.compile(rb"^<<<<<<< .*^>>>>>>> ", re.MULTILINE | re.DOTALL)


def conflicted_files() -> list[Path]:
    """The files of this package that still hold merge conflict markers."""
    package = Path(__file__).resolve().parent
    return [
        path
        for path in sorted(package.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and CONFLICT_MARKERS.search(path.read_bytes())
    ]


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
    from .settings import Settings
    from .store import SchemaError, UnreachableDatabase, open_store

    try:
        store = open_store(Settings().database)
    except UnreachableDatabase as error:
        raise RuntimeError(f"AUTH_DATABASE_URL: {error}") from None
    try:
        await store.open()
    except UnreachableDatabase as error:
        raise RuntimeError(f"AUTH_DATABASE_URL: {error}") from None
    except SchemaError as error:
        raise RuntimeError(str(error)) from None
    finally:
        await store.close()


if __name__ == "__main__":
    main()
