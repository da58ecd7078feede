#!/usr/bin/env python3
"""Each step of each trace in a measure.sh folder, calibrated on itself, and what varies.

usage: tools/pytorch/per_step.py DIR [--bubblesim PATH]

For each trace (docs/validation.md, "PyTorch runtime"), prints:
  - every step's makespan (ms) and its in-sample makespan error, each step calibrated on
    itself, fastest step first: an undisturbed step shows the model's own error;
  - "ops": each chunk and kind's op duration, mean and standard deviation over every op of
    every step (ms, and the deviation in % of the mean);
  - "stalls": how many times per step a rank spent over 1 ms of its own between two ops
    (waits left out), and the longest;
  - "delays": for each receive from another rank that blocked (the action waited over
    0.02 ms), the time from the producer's compute end to the end of that wait: median,
    90th percentile and largest (ms).
"""
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ACTION = re.compile(r"^(\d+)([FBIW])(\d+)$")


def variation(trace):
    """The "ops", "stalls" and "delays" lines of one trace."""
    placement = trace["placement"]
    durations, stalls, longest, delays = {}, [], 0.0, []
    for step in trace["steps"]:
        end = {}
        receives = []
        count = 0
        for rank in step["ranks"]:
            prev_end, waited, first = None, 0.0, None
            for a in rank["actions"]:
                if first is None:
                    first = a["start"]
                waited += a.get("wait", 0.0)
                m = ACTION.match(a["action"])
                if not m:
                    continue
                stage, kind, mb = int(m.group(1)), m.group(2), int(m.group(3))
                cs = a.get("compute_start", a["start"] + a.get("wait", 0.0))
                ce = a.get("compute_end", a["end"])
                durations.setdefault(f"{stage}{kind}", []).append(ce - cs)
                gap = cs - (first if prev_end is None else prev_end) - waited
                if gap > 1.0:
                    count += 1
                    longest = max(longest, gap)
                end[(stage, kind, mb)] = ce
                if a.get("wait", 0.0) > 0.02:
                    receives.append((stage, kind, mb, a["start"] + a["wait"]))
                prev_end, waited = ce, 0.0
        stalls.append(count)
        for stage, kind, mb, wait_end in receives:
            if kind == "F":
                producers = [(stage - 1, "F", mb)]
            elif kind in "BI":
                producers = [(stage + 1, "I", mb), (stage + 1, "B", mb)]
            else:
                producers = []
            for p in producers:
                if p in end and placement[p[0]] != placement[stage]:
                    delays.append(wait_end - end[p])
                    break
    ops = " ".join(f"{k}:{statistics.mean(v):.2f}±{100 * statistics.pstdev(v) / statistics.mean(v):.0f}%"
                   for k, v in sorted(durations.items()) if statistics.mean(v) > 0)
    line = f"  ops {ops}\n  stalls over 1 ms: {statistics.mean(stalls):.2f} per step, longest {longest:.1f} ms"
    if delays:
        delays.sort()
        line += (f"\n  delays of blocked receives: median {statistics.median(delays):.2f}, "
                 f"90th percentile {delays[int(0.9 * (len(delays) - 1))]:.2f}, "
                 f"largest {delays[-1]:.2f} ms ({len(delays)} receives)")
    return line


def main():
    args = sys.argv[1:]
    bubblesim = "build/cli/bubblesim"
    if "--bubblesim" in args:
        i = args.index("--bubblesim")
        if i + 1 >= len(args):
            sys.exit("usage: per_step.py DIR [--bubblesim PATH]")
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
            print(variation(trace))


if __name__ == "__main__":
    main()
