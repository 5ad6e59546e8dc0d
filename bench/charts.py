"""PNG charts of the service figures, written next to docs/benchmarks.md."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import DOCS  # noqa: E402


def _bars(ax, groups: list[str], series: dict[str, list[list[float]]]) -> None:
    """Grouped bars at the median, whiskers from min to max."""
    width = 0.8 / len(series)
    for offset, (label, samples) in enumerate(series.items()):
        xs = [i + (offset - (len(series) - 1) / 2) * width for i in range(len(groups))]
        medians = [sorted(s)[len(s) // 2] if s else 0 for s in samples]
        errors = [
            [m - min(s) if s else 0 for m, s in zip(medians, samples)],
            [max(s) - m if s else 0 for m, s in zip(medians, samples)],
        ]
        ax.bar(xs, medians, width, yerr=errors, capsize=3, label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.legend(fontsize=8)


def service(m, ats: list[str]) -> str:
    """`ats`: "<database> w<workers> c<connections>", one bar group each."""
    name = "bench-service.png"
    labels = [at.replace(" ", "\n", 1) for at in ats]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4))
    _bars(
        left,
        labels,
        {
            "ours me": [m.values[f"ours me {at} rps"] for at in ats],
            "bare Starlette me": [m.values[f"bare me {at} rps"] for at in ats],
        },
    )
    left.set_title("`me` requests/s")
    _bars(
        right,
        labels,
        {
            "logins/s": [m.values[f"ours login {at} rps"] for at in ats],
            "bound: cores ÷ verify": [m.values[f"{at} bound"] for at in ats],
            "argon2 alone, cores threads": [m.values[f"{at} parallel"] for at in ats],
            "the same, huge pages": [m.values[f"{at} parallel huge"] for at in ats],
        },
    )
    right.set_title("logins/s against argon2id")
    fig.tight_layout()
    fig.savefig(DOCS / name, dpi=110)
    plt.close(fig)
    return name


def peer(m, at: str, concurrency: tuple[int, ...]) -> str:
    name = "bench-peer.png"
    flows = ("register", "login", "me")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, flow in zip(axes, flows):
        labels = [f"{c} conn." for c in concurrency]
        _bars(
            ax,
            labels,
            {
                "authgen service": [
                    m.values[f"ours {flow} {at} c{c} rps"] for c in concurrency
                ],
                "fastapi-users": [
                    m.values[f"peer {flow} {at} c{c} rps"] for c in concurrency
                ],
            },
        )
        ax.set_title(f"{flow} /s (1 worker)")
    fig.tight_layout()
    fig.savefig(DOCS / name, dpi=110)
    plt.close(fig)
    return name


def generator(data: dict) -> str:
    name = "bench-generator.png"
    labels = list(data)
    series = (
        ("authgen generate, cold cache", 0),
        ("cookiecutter", 1),
        ("authgen generate, warm cache", 2),
    )
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.27
    for offset, (label, index) in enumerate(series):
        xs = [i + (offset - 1) * width for i in range(len(labels))]
        medians = [data[key][index].median for key in labels]
        errors = [
            [data[k][index].median - data[k][index].low for k in labels],
            [data[k][index].high - data[k][index].median for k in labels],
        ]
        ax.bar(xs, medians, width, yerr=errors, capsize=3, label=label)
    ax.set_xticks(range(len(labels)), [f"{key} fields" for key in labels])
    ax.set_ylabel("seconds (median, min–max)")
    ax.set_title("Generating a service: whole process")
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / name, dpi=110)
    plt.close(fig)
    return name
