#!/usr/bin/env python3
"""torch_orders.py BUBBLESIM CONFIG - interleaved-zb against the order that
PyTorch's own ScheduleInterleavedZeroBubble computes, where torch is
installed (exit 77, skipped, where it is not).

The class is built without a process group: __new__ plus the four
attributes its order computation reads (torch 2.15's private names:
pp_group_size, n_local_stages, _n_microbatches, number_of_rounds,
microbatches_per_round), then _calculate_single_rank_operations per rank,
idle slots (None) dropped. The bubblesim side is `bubblesim export`.
"""
import subprocess
import sys

try:
    from torch.distributed.pipelining.schedules import (ScheduleInterleaved1F1B,
                                                        ScheduleInterleavedZeroBubble)
except Exception:  # no torch, or one without pipelining
    sys.exit(77)


def torch_order(p, v, m, cls=ScheduleInterleavedZeroBubble):
    rounds = max(1, m // p)
    if m % rounds:
        return None
    sched = cls.__new__(cls)
    sched.pp_group_size, sched.n_local_stages, sched._n_microbatches = p, v, m
    sched.number_of_rounds, sched.microbatches_per_round = rounds, m // rounds
    return [",".join(str(a) for a in sched._calculate_single_rank_operations(r) if a is not None)
            for r in range(p)]


def main():
    binary, config = sys.argv[1], sys.argv[2]
    compared = failed = 0
    for p in range(2, 9):
        for v in range(1, 5):
            for m in sorted({1, 2, p - 1, p, p + 1, 2 * p, 2 * p + 2, 3 * p, 4 * p + 3} - {0}):
                want = torch_order(p, v, m)
                got = subprocess.run(
                    [binary, "export", config, "--format", "pytorch", "--set",
                     'schedule="interleaved-zb"', "--set", f"virtual_stages={v}", "--set",
                     f"stages={p}", "--set", f"microbatches={m}"],
                    capture_output=True, text=True)
                if want is None:
                    ok = got.returncode == 2
                else:
                    ok = got.returncode == 0 and got.stdout.strip().split("\n") == want
                    compared += 1
                if not ok:
                    failed += 1
                    print(f"P={p} V={v} M={m}: rc {got.returncode} {got.stderr.strip()}")
    # interleaved (Megatron's rules) with M < P runs as ScheduleInterleaved1F1B does.
    for p in range(2, 9):
        for v in range(2, 5):
            for m in range(1, p):
                got = subprocess.run(
                    [binary, "export", config, "--set", 'schedule="interleaved"', "--set",
                     f"virtual_stages={v}", "--set", f"stages={p}", "--set", f"microbatches={m}"],
                    capture_output=True, text=True)
                compared += 1
                if got.returncode != 0 or got.stdout.strip().split("\n") != torch_order(
                        p, v, m, ScheduleInterleaved1F1B):
                    failed += 1
                    print(f"interleaved P={p} V={v} M={m}: rc {got.returncode} {got.stderr.strip()}")
    print(f"torch_orders: {compared} orders compared with PyTorch's, {failed} failed")
    return 1 if failed or compared == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
