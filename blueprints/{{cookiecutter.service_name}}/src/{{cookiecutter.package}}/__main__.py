"""`python -m {{ cookiecutter.package }} serve`: start the service with uvicorn.
`python -m {{ cookiecutter.package }} admin grant|revoke EMAIL ROLE`,
`admin list`: roles, on the server.
"""

import argparse
import asyncio
import atexit
import logging
import logging.config
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn
from pydantic import ValidationError
from pydantic_core import ErrorDetails

log = logging.getLogger("{{ cookiecutter.package }}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="{{ cookiecutter.package }}",
        description="{{ cookiecutter.description }}",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--log-level", default="info")
    admin = commands.add_parser("admin", help="give and take roles; list who has one")
    actions = admin.add_subparsers(dest="action", required=True)
    for action in ("grant", "revoke"):
        change = actions.add_parser(action, help=f"{action} a role of a user")
        change.add_argument("email")
        change.add_argument("role")
    actions.add_parser("list", help="users with a role, and their roles")
    args = parser.parse_args(argv)
    if args.command == "serve" and argv is None:
        restart_with_huge_pages()
    conflicted = conflicted_files()
    if conflicted:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        log.error(
            "cannot start: unresolved conflict markers in %s; resolve them, then run authgen generate again",
            ", ".join(map(str, conflicted)),
        )
        sys.exit(1)
    if args.command == "admin":
        sys.exit(admin_command(args))
    # Imported only now: a module with conflict markers does not import.
    from . import logs
    from .settings import Settings, available_cores

    try:
        configured: Settings | None = Settings()
    except ValidationError:
        configured = None  # preflight reports the bad settings
    json_logs = configured is not None and configured.log_format == "json"
    log_config = logs.log_config(args.log_level, json_logs)
    logging.config.dictConfig(log_config)
    # Mailed links point at the address served unless AUTH_PUBLIC_URL is set.
    if configured is not None and "public_url" not in configured.model_fields_set:
        os.environ["AUTH_PUBLIC_URL"] = listening_url(args.host, args.port)
    if configured is not None and configured.metrics and args.workers > 1:
        share_metrics()
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


#: glibc's tunable that backs large allocations with transparent huge pages.
HUGE_PAGES = "glibc.malloc.hugetlb"


def restart_with_huge_pages() -> None:
    """Run again, as the same process, with huge pages for argon2's memory.

    An argon2id hash reads its memory_cost KiB (64 MiB) in random order. On
    4 KiB pages that is 16,384 page faults a hash and a TLB miss at nearly
    every step; on 2 MiB pages the same hash runs 20-30 % faster, and so do
    logins. glibc reads its tunables once, at start: hence the exec. A
    GLIBC_TUNABLES that already names the tunable is kept as it is, so
    `GLIBC_TUNABLES=glibc.malloc.hugetlb=0` turns this off.
    """
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if HUGE_PAGES in tunables or platform.libc_ver()[0] != "glibc":
        return
    os.environ["GLIBC_TUNABLES"] = ":".join(filter(None, [tunables, HUGE_PAGES + "=1"]))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    except OSError:
        pass  # no interpreter to run again (an embedded one): serve as it is


def share_metrics() -> None:
    """Workers write their metrics to files in one folder, so that a scrape
    reaching any of them reports all (prometheus-client's multiprocess mode):
    PROMETHEUS_MULTIPROC_DIR if set, else a temporary folder. Counts of an
    earlier run are removed: counters start from zero with the service."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder is None:
        folder = tempfile.mkdtemp(prefix="{{ cookiecutter.package }}-metrics-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for stale in Path(folder).glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def listening_url(host: str, port: int) -> str:
    """http://host:port of `serve`; a wildcard address is reached on this machine."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


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


def _problem(detail: ErrorDetails) -> str:
    """One line per bad setting, named as the environment names it."""
    message = detail["msg"].removeprefix("Value error, ")
    if message.startswith("AUTH_") or not detail["loc"]:
        return message
    return f"AUTH_{str(detail['loc'][0]).upper()}: {message}"


def admin_command(args: argparse.Namespace) -> int:
    """Run `admin ACTION` on the configured database; one line on stderr for a mistake."""
    from .admin import run_command
    from .audit import Audit
    from .mail import Mailer
    from .settings import Settings
    from .store import SchemaError, UnreachableDatabase, open_store

    async def run() -> str:
        settings = Settings()
        store = open_store(settings.database)
        await store.open()
        try:
            return await run_command(
                store,
                # Webhook deliveries of its events wait in the outbox for the service's workers.
                Audit(settings, store, Mailer(settings, store)),
                args.action,
                getattr(args, "email", ""),
                getattr(args, "role", ""),
            )
        finally:
            await store.close()

    try:
        print(asyncio.run(run()))
    except (ValueError, UnreachableDatabase, SchemaError) as error:
        print(f"{{ cookiecutter.package }} admin: {error}", file=sys.stderr)
        return 1
    return 0


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
