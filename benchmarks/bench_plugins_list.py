"""`repmix plugins list` start-up time vs `python -c "import torch"`, and no torch imported.

Run: python benchmarks/bench_plugins_list.py [--repeats 10]
Writes the "plugins-list" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from report import machine, markdown_table, median, write_section

NO_TORCH_CHECK = (
    "import sys, io, contextlib\n"
    "from repmix.cli.main import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    main(['plugins', 'list'])\n"
    "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
)


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    listing = [sys.executable, "-m", "repmix", "plugins", "list"]
    torch_import = [sys.executable, "-c", "import torch"]
    wall(listing), wall(torch_import)  # warm the file cache
    times: dict[str, list[float]] = {"list": [], "torch": []}
    for _ in range(args.repeats):
        times["list"].append(wall(listing))
        times["torch"].append(wall(torch_import))
    torch_modules = subprocess.run([sys.executable, "-c", NO_TORCH_CHECK], check=True, capture_output=True, text=True)
    plugins = json.loads(subprocess.run([*listing, "--json"], check=True, capture_output=True, text=True).stdout)
    n_components = sum(len(p["components"]) for p in plugins["plugins"])
    t_list, t_torch = median(times["list"]), median(times["torch"])
    table = markdown_table(
        ["command", "median wall (s)", "min (s)"],
        [
            ["`repmix plugins list`", f"{t_list:.3f}", f"{min(times['list']):.3f}"],
            ['`python -c "import torch"`', f"{t_torch:.3f}", f"{min(times['torch']):.3f}"],
        ],
    )
    md = (
        "## `repmix plugins list` start-up\n\n"
        f"Command: `python benchmarks/bench_plugins_list.py --repeats {args.repeats}` "
        f"({len(plugins['plugins'])} plugins, {n_components} components installed; {machine()}).\n\n"
        f"{table}\n\n"
        f"Target ≤ 0.5 s: {'met' if t_list <= 0.5 else 'NOT met'}. "
        f"Listing takes {t_list / t_torch:.2f}× the time of importing torch alone. "
        f"torch modules imported by listing: {torch_modules.stdout.strip()} "
        "(also asserted in tests/test_registry.py).\n"
    )
    print(md)
    write_section("plugins-list", md)


if __name__ == "__main__":
    main()
