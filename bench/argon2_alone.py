"""argon2id alone, in a process of its own: one verify's time, and what
`cores` threads verify per second. Prints JSON.

Run in a fresh process because glibc reads GLIBC_TUNABLES only at start: the
service runs its hashes on huge pages (`glibc.malloc.hugetlb=1`), and the
figures are taken both ways.

    python bench/argon2_alone.py '{"time_cost": 3, "memory_cost": 65536, "parallelism": 1}'
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type

PASSWORD = "bench-password-1"


def one_verify(settings: dict[str, int], rounds: int = 5) -> float:
    """The median time of one verify, in seconds."""
    return _median_verify(*_hashed(settings), rounds)


def measure(settings: dict[str, int]) -> dict[str, float]:
    hasher, stored = _hashed(settings)
    cores = os.cpu_count() or 1
    count = 4 * cores
    with ThreadPoolExecutor(cores) as pool:
        start = time.perf_counter()
        list(pool.map(lambda _: hasher.verify(stored, PASSWORD), range(count)))
        parallel = count / (time.perf_counter() - start)
    return {"verify_s": _median_verify(hasher, stored, 5), "parallel": parallel}


def _hashed(settings: dict[str, int]) -> tuple[PasswordHasher, str]:
    hasher = PasswordHasher(**settings, type=Type.ID)
    return hasher, hasher.hash(PASSWORD)


def _median_verify(hasher: PasswordHasher, stored: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
