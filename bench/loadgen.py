"""HTTP load with wrk, in its own process, scripted in Lua for bodies and headers.

wrk keeps a fixed number of connections busy (closed loop) and reports exact
latency percentiles. The Lua script cycles through the given bodies, replaces
`{n}` with a value unique to the request (for register), and counts every
response that is not a success (HTTP >= 400, or a GraphQL `errors` member),
so a fast stream of errors is never reported as throughput.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
local bodies = {%(bodies)s}
local method, path, graphql = %(method)s, %(path)s, %(graphql)s
%(headers)s
local counter = 0
local prefix = "r"
function init(args) prefix = args[1] or "r" end
function request()
  counter = counter + 1
  local body = nil
  if #bodies > 0 then
    body = (bodies[(counter %% #bodies) + 1]:gsub("{n}", prefix .. counter))
  end
  return wrk.format(method, path, nil, body)
end
failures = 0
function response(status, headers, body)
  if status >= 400 or (graphql and body:find('"errors"', 1, true)) then
    failures = failures + 1
  end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("failures") end
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"failures": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    failed, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Request:
    """What every connection sends, over and over."""

    path: str
    bodies: list[str]
    method: str = "POST"
    headers: dict[str, str] | None = None
    graphql: bool = True


@dataclass
class Load:
    per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int

    @property
    def clean(self) -> bool:
        """At most 1% of the requests failed (and at least one succeeded)."""
        return self.requests > 0 and self.failures <= 0.01 * self.requests


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def install_wrk() -> None:
    """apt-get install wrk, when we are root and it is missing."""
    if wrk_available():
        return
    subprocess.run(
        ["apt-get", "install", "-y", "wrk"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def script(request: Request) -> str:
    headers = {"Content-Type": "application/json", **(request.headers or {})}
    return _SCRIPT % {
        "bodies": ", ".join(_lua_string(body) for body in request.bodies),
        "method": _lua_string(request.method),
        "path": _lua_string(request.path),
        "graphql": "true" if request.graphql else "false",
        "headers": "\n".join(
            f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}"
            for k, v in headers.items()
        ),
    }


def start(
    base_url: str, request: Request, connections: int, seconds: float, tag: str = "r"
) -> subprocess.Popen:
    """Start wrk; `finish` waits for it. Two may run at once (mixed loads)."""
    with tempfile.NamedTemporaryFile(
        "w", prefix="bench-", suffix=".lua", delete=False
    ) as lua:
        lua.write(script(request))
    return subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "60s",
            "-s",
            lua.name,
            base_url,
            "--",
            tag,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> Load:
    output, _ = process.communicate()
    Path(process.args[process.args.index("-s") + 1]).unlink(missing_ok=True)
    for line in output.splitlines():
        if line.startswith("WRK "):
            data = json.loads(line[4:])
            seconds = data["duration_us"] / 1e6
            return Load(
                per_second=(data["requests"] - data["failures"]) / seconds,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                requests=data["requests"],
                failures=data["failures"] + data["socket_errors"],
            )
    raise RuntimeError(f"wrk gave no result:\n{output}")


def run(
    base_url: str, request: Request, connections: int, seconds: float, tag: str = "r"
) -> Load:
    return finish(start(base_url, request, connections, seconds, tag))
