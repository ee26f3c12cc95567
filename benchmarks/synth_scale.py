"""Offline synthesis + dedup time and peak memory at 10k…100k samples, each in a fresh process.

    python benchmarks/synth_scale.py [--sizes 10000 30000 100000]
Target: 100k in under 60 s and 2 GiB peak on a 2-core machine, near-linear growth.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time

CHILD = """
import resource, sys, time
from data_synth.pipeline import offline_config, synthesize
cfg = offline_config(output_dir=sys.argv[1], num_samples=int(sys.argv[2]))
start = time.perf_counter(); s = synthesize(cfg); took = time.perf_counter() - start
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, sum(s['totals'].values()))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 30000, 100000])
    rows = []
    for n in parser.parse_args().sizes:
        with tempfile.TemporaryDirectory() as out:
            wall = time.perf_counter()
            res = subprocess.run(
                [sys.executable, "-c", CHILD, out, str(n)], capture_output=True, text=True, check=True
            )
            took, rss_kb, kept = res.stdout.strip().splitlines()[-1].split()
            rows.append(
                {
                    "num_samples": n,
                    "kept": int(kept),
                    "synth_s": round(float(took), 2),
                    "process_s": round(time.perf_counter() - wall, 2),
                    "peak_rss_mib": round(int(rss_kb) / 1024),
                }
            )
            print(json.dumps(rows[-1]))
    base = rows[0]
    for r in rows:
        r["time_ratio_vs_first"] = round(r["synth_s"] / base["synth_s"], 2)
        r["size_ratio_vs_first"] = round(r["num_samples"] / base["num_samples"], 2)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
