#!/usr/bin/env python3
"""Each step of each trace in a measure.sh folder, calibrated on itself and compared with itself.

usage: tools/pytorch/per_step.py DIR [--bubblesim PATH]

Prints, per trace, every step's makespan (ms) and its in-sample makespan error, fastest step
first. A step that ran undisturbed shows the model's own error; the slower steps show what
load adds (docs/validation.md, "PyTorch runtime").
"""
import glob
import json
import os
import subprocess
import sys
import tempfile


def main():
    args = sys.argv[1:]
    bubblesim = "build/cli/bubblesim"
    if "--bubblesim" in args:
        i = args.index("--bubblesim")
        bubblesim = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1 or not os.path.isdir(args[0]):
        sys.exit("usage: per_step.py DIR [--bubblesim PATH]")
    with tempfile.TemporaryDirectory() as tmp:
        one, cfg = os.path.join(tmp, "one.json"), os.path.join(tmp, "one-config.json")
        for path in sorted(glob.glob(os.path.join(args[0], "*.trace.json"))):
            if path.endswith((".even.trace.json", ".odd.trace.json")):
                continue
            with open(path) as f:
                trace = json.load(f)
            rows = []
            for step in trace["steps"]:
                with open(one, "w") as f:
                    json.dump(dict(trace, steps=[step]), f)
                subprocess.run([bubblesim, "calibrate", one, "-o", cfg], check=True,
                               capture_output=True)
                r = subprocess.run([bubblesim, "compare", cfg, one, "--json", "--tolerance",
                                    "1000"], check=True, capture_output=True, text=True)
                c = json.loads(r.stdout)
                rows.append((c["measured_makespan"], c["makespan_error"]))
            rows.sort()
            print(os.path.basename(path).replace(".trace.json", ""),
                  " ".join(f"{m:.0f}:{100 * e:+.1f}%" for m, e in rows))


if __name__ == "__main__":
    main()
