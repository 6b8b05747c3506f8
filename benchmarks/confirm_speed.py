"""How long `losslint check --confirm` takes: per finding after the torch import, and for a file of 20 findings.

    python benchmarks/confirm_speed.py

Not a timed test: it prints the figures (the targets are under 1 s per typical finding
after the worker has imported torch, and under 15 s for a file with 20 findings on a
2-core machine). The file it confirms is written to a temporary folder from the runtime
fixtures, so that the 20 findings cover every probe of the LL1 and LL2 families.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from losslint.api import lint_source
from losslint.runtime import confirm_findings
from losslint.runtime.sandbox import Worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runtime"
FINDINGS_WANTED = 20


def twenty_findings() -> str:
    """One module of functions from the runtime fixtures whose findings number exactly 20."""
    header = ["import torch", "import torch.nn.functional as F", "from torch import nn", ""]
    body: list[str] = []
    for path in sorted(FIXTURES.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        start = min(i for i in (text.find("\ndef "), text.find("\nclass ")) if i >= 0)
        body.append(f"# from {path.name}")
        body.append(text[start:].replace("\ndef ", f"\ndef {path.stem}_").replace(
            "\nclass ", f"\nclass {path.stem.title().replace('_', '')}"))
    source = "\n".join(header + body)
    lines = source.splitlines()
    findings = lint_source(source, "twenty.py")
    if len(findings) > FINDINGS_WANTED:  # cut the module after the 20th finding's function
        last_line = findings[FINDINGS_WANTED - 1].line
        cut = next((i for i in range(last_line, len(lines)) if lines[i].startswith(("def ", "class ", "# from"))),
                   len(lines))
        source = "\n".join(lines[:cut]) + "\n"
    return source


def main() -> None:
    with Worker() as worker:
        worker.start()
        print(f"worker start (fresh interpreter, import torch, apply limits): {worker.startup_seconds:.2f} s")

    source = twenty_findings()
    findings = lint_source(source, "twenty.py")
    print(f"findings in the benchmark file: {len(findings)} "
          f"({', '.join(sorted({f.code for f in findings}))})")

    began = time.perf_counter()
    confirmed = confirm_findings(findings, {"twenty.py": source})
    api_total = time.perf_counter() - began
    times = [f.confirmation.seconds for f in confirmed if f.confirmation is not None]
    print("per finding, after the torch import (worker time, by rule):")
    for finding in confirmed:
        c = finding.confirmation
        print(f"  {finding.code} line {finding.line:>3}: {c.seconds:.3f} s  [{c.verdict.value}]")
    print(f"per finding: median {statistics.median(times):.3f} s, max {max(times):.3f} s, "
          f"mean {statistics.mean(times):.3f} s")
    print(f"confirm_findings total (start worker + slice + all probes): {api_total:.2f} s")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "twenty.py"
        path.write_text(source, encoding="utf-8")
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "losslint", "check", "--isolated", "--confirm", str(path)],
                       capture_output=True, check=False)
        print(f"`losslint check --confirm` on the 20-finding file, end to end: {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
