"""Generator scale check: time and peak RSS of a small and a 4x larger DSO-shaped run (prints JSON).

Streaming means peak memory should stay nearly flat while rows grow 4x; the baseline is the small
run measured in the same invocation. Usage: ``.venv/bin/python bench/generate.py [patients]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from dos2hl.generate import GenerateParams, generate
patients, locations = int(sys.argv[2]), int(sys.argv[3])
s = generate(Path(sys.argv[1]), GenerateParams(seed=1, tier="dso", patients=patients, locations=locations,
             images="none"))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps({"patients": patients, "locations": locations, "rows": s["rows_total"],
                  "seconds": s["seconds"], "peak_rss_mb": peak}))
"""


def run(patients: int, locations: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", _CHILD, d, str(patients), str(locations)], check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    small_n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    small = run(small_n, 10)
    large = run(small_n * 4, 40)
    print(json.dumps({"small": small, "large": large,
                      "rows_ratio": round(large["rows"] / small["rows"], 2),  # type: ignore[operator]
                      "rss_ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 2)}, indent=1))  # type: ignore[operator]


if __name__ == "__main__":
    main()
