"""Static-path speed, measured side by side in one run (not a timed test: machines are noisy).

Prints, for a folder (default: the installed torch.nn sources):
- a bare `libcst.parse_module` of every file, in this process;
- losslint's check of the same files in this process (-j 1), and with all cores;
- the wall time of single-file `losslint check` invocations (the pre-commit case).

Usage: python benchmarks/static_speed.py [FOLDER] [--repeat N]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

import libcst as cst

from losslint.api import lint_files
from losslint.engine import check_text
from losslint.files import collect
from losslint.selection import Selection
from losslint.source import decode


def _default_folder() -> Path:
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        sys.exit("torch is not installed: pass a folder to measure")
    return Path(spec.origin).parent / "nn"


def _best_of(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = args.folder or _default_folder()
    files = [str(p) for p in collect([folder])]
    texts = [decode(Path(p).read_bytes()).text for p in files]
    rules = Selection().rules()
    all_rules = Selection(select=("ALL",)).rules()

    parse = _best_of(args.repeat, lambda: [cst.parse_module(t) for t in texts])
    serial = _best_of(args.repeat, lambda: lint_files(files, rules, jobs=1))
    serial_all = _best_of(args.repeat, lambda: lint_files(files, all_rules, jobs=1))
    parallel = _best_of(args.repeat, lambda: lint_files(files, rules, jobs=None))
    unfiltered = _best_of(args.repeat, lambda: [check_text(t, p, all_rules, prefilter=False)
                                                for p, t in zip(files, texts)])

    print(f"{len(files)} files under {folder}")
    print(f"bare libcst.parse_module (1 process):     {parse:7.2f} s")
    print(f"losslint check, default rules, -j 1:      {serial:7.2f} s   ratio to bare parse {serial / parse:5.2f}x")
    print(f"losslint check, all rules, -j 1:          {serial_all:7.2f} s   ratio to bare parse {serial_all / parse:5.2f}x")
    print(f"losslint check, default rules, all cores: {parallel:7.2f} s   ratio to bare parse {parallel / parse:5.2f}x")
    print(f"parse + dataflow + all rules on every file (prefilter off, -j 1, text already read): "
          f"{unfiltered:.2f} s   ratio to bare parse {unfiltered / parse:5.2f}x")

    biggest = max(files, key=lambda p: Path(p).stat().st_size)
    for label, target in (("typical file", files[len(files) // 2]), ("largest file", biggest)):
        runs = []
        for _ in range(max(args.repeat, 3)):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "losslint", "check", target], capture_output=True)
            runs.append(time.perf_counter() - start)
        print(f"single-file `losslint check` ({label}, {Path(target).name}): "
              f"median {statistics.median(runs):.3f} s, min {min(runs):.3f} s")


if __name__ == "__main__":
    main()
