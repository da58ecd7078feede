#!/usr/bin/env python3
"""torch_load_csv.py BUBBLESIM CONFIG - `bubblesim export --format
pytorch-comms` (and the compute-only default) read by PyTorch 2.15's own
_PipelineScheduleRuntime._load_csv, where torch is installed (exit 77,
skipped, where it is not).

The runtime object is built without a process group: __new__ plus the
attributes _load_csv reads (torch 2.15's private names). PyTorch then runs
its own checks: _validate_schedule (every stage and micro-batch's F and
backward present, stage to rank inferred), and for compute_comms
_validate_send_waits (each send has one later wait). The compute actions it
reads back must be bubblesim's order, and for compute-only files PyTorch's
own lowering must accept the order too.
"""
import os
import subprocess
import sys
import tempfile

try:
    from torch.distributed.pipelining import schedules as S
except Exception:  # no torch, or one without pipelining
    sys.exit(77)


def runtime(p, stages, m):
    rt = S._PipelineScheduleRuntime.__new__(S._PipelineScheduleRuntime)
    rt.pp_group_size, rt._num_stages, rt._n_microbatches = p, stages, m
    rt._stages = []
    rt.pipeline_order = {}
    rt._unshard_lookahead, rt._max_active_stages = "full", 3
    rt._defer_reduce_grad_wait, rt._defer_pp_recv, rt._max_outstanding_sends = False, False, None
    return rt


CASES = [  # schedule, P, V, M
    ("1f1b", 4, 1, 8), ("gpipe", 3, 1, 5), ("zb-h1", 4, 1, 8), ("zb-h2", 4, 1, 8),
    ("interleaved", 4, 2, 8), ("interleaved-zb", 4, 3, 8), ("zbv", 4, 2, 8),
    ("v-half", 4, 2, 8), ("v-min", 3, 2, 6), ("dualpipev", 4, 2, 8), ("looped-bfs", 2, 2, 4),
    ("zb-auto", 4, 1, 8),
]  # not "forward": PyTorch's runtime validation requires every backward


def main():
    binary, config = sys.argv[1], sys.argv[2]
    failed = checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for schedule, p, v, m in CASES:
            for fmt in ("pytorch", "pytorch-comms"):
                path = os.path.join(tmp, f"{schedule}-{fmt}.csv")
                got = subprocess.run(
                    [binary, "export", config, "--format", fmt, "-o", path,
                     "--set", f'schedule="{schedule}"', "--set", f"stages={p}",
                     "--set", f"virtual_stages={v}", "--set", f"microbatches={m}"],
                    capture_output=True, text=True)
                checked += 1
                if got.returncode != 0:
                    failed += 1
                    print(f"{schedule} {fmt}: export failed: {got.stderr.strip()}")
                    continue
                rt = runtime(p, p * v, m)
                try:
                    if fmt == "pytorch":
                        rt._load_csv(path, format="compute_only")
                        rt._prepare_schedule_with_comms(rt.pipeline_order)
                        order = rt.pipeline_order
                    else:
                        rt._load_csv(path, format="compute_comms")
                        order = {r: [a for a in acts if a.is_compute_op]
                                 for r, acts in rt.pipeline_order_with_comms.items()}
                except Exception as e:  # PyTorch refused the file
                    failed += 1
                    print(f"{schedule} {fmt}: PyTorch refused it: {type(e).__name__}: {e}")
                    continue
                with open(path) as f:
                    want = [[a for a in line.strip().split(",") if a and "SEND" not in a
                             and "RECV" not in a] for line in f]
                have = [[str(a) for a in order[r]] for r in sorted(order)]
                if have != want:
                    failed += 1
                    print(f"{schedule} {fmt}: PyTorch read another compute order")
    print(f"torch_load_csv: {checked} files loaded by PyTorch's _load_csv, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
