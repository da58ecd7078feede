#!/usr/bin/env python3
"""Run a bubblesim schedule through PyTorch pipelining's own runtime and record a trace.

usage: run_schedule.py CONFIG --out TRACE.json [--workload sleep|mlp] [--steps N]
                       [--warmup N] [--set KEY=VALUE]... [--bubblesim PATH]
                       [--timeout S] [--sleep-scale X] [--hidden H] [--layers L]
                       [--batch B] [--backend gloo|nccl]

The schedule is the one `bubblesim export CONFIG --format pytorch` writes (the built
binary is run; --bubblesim names it, default build/cli/bubblesim or $BUBBLESIM). It is
loaded with `_PipelineScheduleRuntime._load_csv` (compute_only; the runtime adds the
communication actions itself) and run on P processes, one per rank, over loopback
(MASTER_ADDR 127.0.0.1): gloo on CPU, NCCL when --backend nccl and CUDA devices exist
(that path times ops with CUDA events; it has not been run on a GPU yet).

Every action the runtime executes is timed: its span, the time it spent waiting for
communication, and for compute actions (F, B, I, W) the compute itself (the stage's
forward_one_chunk / backward_one_chunk / backward_weight_one_chunk). The trace format is
documented in docs/validation.md ("PyTorch runtime"). Exit status: 0 ok, 2 bad usage or
input, 3 torch missing or of a version this script does not know, 1 the run failed or
timed out.

The script uses private names of torch.distributed.pipelining (_PipelineScheduleRuntime,
_load_csv, _wait_batch_p2p, the runtime's per-action record_function), so it refuses
torch versions it has not been checked against (KNOWN_TORCH).
"""

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

KNOWN_TORCH = ("2.15",)
TRACE_FORMAT = "bubblesim-pytorch-trace"
TRACE_VERSION = 1
# Every rank begins a step at one instant this far after the barrier
# (start_together); the last SPIN_MS are spun rather than slept.
START_MARGIN_MS = 5.0
SPIN_MS = 1.0
COMPUTE_KINDS = ("F", "B", "I", "W")


def fail(code, msg):
    print(f"run_schedule: {msg}", file=sys.stderr)
    sys.exit(code)


def now_ms():
    # CLOCK_MONOTONIC is one clock for every process on a host, so the ranks'
    # timestamps can be set side by side without an exchange.
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) / 1e6


# ------------------------------------------------------------------ config side


def parse_action(text):
    """Splits a compute action such as '3F12' into (stage, kind, microbatch)."""
    i = 0
    while i < len(text) and text[i].isdigit():
        i += 1
    if i == 0 or i >= len(text) or text[i] not in COMPUTE_KINDS:
        return None
    rest = text[i + 1:]
    if not rest.isdigit():
        return None
    return int(text[:i]), text[i], int(rest)


def export_order(bubblesim, config, sets):
    with tempfile.NamedTemporaryFile("r", suffix=".txt", delete=False) as f:
        path = f.name
    cmd = [bubblesim, "export", config, "--format", "pytorch", "-o", path]
    for s in sets:
        cmd += ["--set", s]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        os.unlink(path)
        fail(2, f"cannot run {bubblesim}: {e}")
    if r.returncode != 0:
        os.unlink(path)
        fail(2, f"bubblesim export failed (exit {r.returncode}): {r.stderr.strip()}")
    with open(path) as f:
        rows = [line.rstrip("\n") for line in f if line.strip()]
    os.unlink(path)
    return rows


def analyse_order(rows):
    """Stage -> rank placement, stage count and micro-batch count from the rows."""
    placement = {}
    mbs = set()
    for rank, row in enumerate(rows):
        for field in row.split(","):
            field = field.strip()
            if not field:
                continue
            if field.startswith("("):
                fail(2, "overlapped actions (OVERLAP_F_B) are not supported by this harness")
            a = parse_action(field)
            if a is None:
                fail(2, f"exported order row {rank}: cannot read action '{field}'")
            stage, _, mb = a
            if placement.setdefault(stage, rank) != rank:
                fail(2, f"exported order: stage {stage} appears on ranks {placement[stage]} and {rank}")
            mbs.add(mb)
    n_stages = len(placement)
    if sorted(placement) != list(range(n_stages)):
        fail(2, "exported order: stage numbers are not 0..S-1")
    return [placement[s] for s in range(n_stages)], n_stages, max(mbs) + 1


def cost_array(costs, key, default, placement, ranks):
    """Per-chunk cost in ms from costs.KEY, as bubblesim reads it (docs/config.md): one
    number or P numbers are a device stage's cost, shared evenly by its V chunks; P*V
    numbers are per chunk in model order."""
    n_stages = len(placement)
    per = n_stages // ranks
    v = costs.get(key, default)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return [float(v) / per] * n_stages
    if isinstance(v, list) and all(isinstance(x, (int, float)) for x in v):
        if len(v) == n_stages:
            return [float(x) for x in v]
        if len(v) == ranks:
            return [float(v[placement[s]]) / per for s in range(n_stages)]
    fail(2, f"costs.{key}: expected a number or an array of P or P*V numbers")


def sleep_costs(config_path, sets, placement, ranks):
    with open(config_path) as f:
        try:
            cfg = json.load(f)
        except ValueError as e:
            fail(2, f"{config_path}: not JSON: {e}")
    costs = cfg.get("costs", {}) if isinstance(cfg, dict) else {}
    if not isinstance(costs, dict):
        costs = {}
    costs = dict(costs)
    for s in sets:
        k, _, v = s.partition("=")
        if k.startswith("costs."):
            try:
                costs[k[6:]] = json.loads(v)
            except ValueError:
                fail(2, f"--set {k}: not a JSON value")
    out = {
        "F": cost_array(costs, "forward", 1.0, placement, ranks),
        "I": cost_array(costs, "backward", 2.0, placement, ranks),
        "W": cost_array(costs, "weight", 0.0, placement, ranks),
    }
    out["B"] = [i + w for i, w in zip(out["I"], out["W"])]
    for kind, vals in out.items():
        for x in vals:
            if not math.isfinite(x) or x < 0 or x > 10000:
                fail(2, f"sleep cost {kind}={x} ms out of range 0..10000")
    return out


# ------------------------------------------------------------------ worker side


def worker(rank, a):
    import torch
    import torch.distributed as dist
    from torch.distributed.pipelining import PipelineStage
    from torch.distributed.pipelining import schedules as sch

    torch.set_num_threads(a["threads"])
    torch.manual_seed(1234 + rank)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(a["port"])
    # gloo's transport otherwise binds to the address the host name resolves
    # to; keep every byte on the loopback interface.
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    from datetime import timedelta

    use_cuda = a["backend"] == "nccl"
    if use_cuda:
        torch.cuda.set_device(rank)
        device = torch.device("cuda", rank)
    else:
        device = torch.device("cpu")
    dist.init_process_group(a["backend"], rank=rank, world_size=a["ranks"],
                            timeout=timedelta(seconds=a["timeout"]))

    placement, n_stages, hidden, batch = a["placement"], a["stages"], a["hidden"], a["batch"]
    sleeps = a["sleep_ms"]

    def make_module():
        if a["workload"] == "sleep":
            return torch.nn.Linear(hidden, hidden)
        layers = []
        for _ in range(a["layers"]):
            layers += [torch.nn.Linear(hidden, hidden), torch.nn.Tanh()]
        return torch.nn.Sequential(*layers)

    rec = {"current": None, "actions": []}

    def stamp():
        if use_cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return now_ms()

    def timed(method, kind_of, stage_idx):
        def run(*args, **kwargs):
            kind = kind_of(args, kwargs)
            t0 = stamp()
            out = method(*args, **kwargs)
            if a["workload"] == "sleep":
                time.sleep(sleeps[kind][stage_idx] / 1000.0)
            t1 = stamp()
            cur = rec["current"]
            if cur is not None:
                cur.setdefault("_compute", []).append((kind, t0, t1))
            return out
        return run

    stages = []
    for s in range(n_stages):
        if placement[s] != rank:
            continue
        mod = make_module().to(device)
        x = torch.zeros(batch, hidden, device=device, requires_grad=(s != 0))
        y = torch.zeros(batch, hidden, device=device, requires_grad=True)
        st = PipelineStage(mod, s, n_stages, device, input_args=(x,), output_args=(y,))
        st.forward_one_chunk = timed(st.forward_one_chunk, lambda ar, kw: "F", s)
        st.backward_one_chunk = timed(
            st.backward_one_chunk,
            lambda ar, kw: "B" if kw.get("full_backward", True) else "I", s)
        st.backward_weight_one_chunk = timed(st.backward_weight_one_chunk, lambda ar, kw: "W", s)
        stages.append(st)

    class ActionTimer:
        # Stands in for the runtime's per-action record_function("PP:<action>").
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            if isinstance(self.name, str) and self.name.startswith("PP:"):
                e = {"action": self.name[3:], "_start": now_ms(), "_wait": 0.0}
                rec["current"] = e
            return self

        def __exit__(self, *exc):
            e = rec["current"]
            if e is not None and isinstance(self.name, str) and self.name.startswith("PP:"):
                if use_cuda:
                    torch.cuda.synchronize()
                e["_end"] = now_ms()
                rec["actions"].append(e)
                rec["current"] = None
            return False

    orig_wait = sch._wait_batch_p2p

    def timed_wait(work):
        t0 = now_ms()
        orig_wait(work)
        if use_cuda:
            torch.cuda.synchronize()
        cur = rec["current"]
        if cur is not None:
            cur["_wait"] += now_ms() - t0

    sch.record_function = ActionTimer
    sch._wait_batch_p2p = timed_wait

    def loss_fn(out, target):
        return torch.nn.functional.mse_loss(out, target)

    schedule = sch._PipelineScheduleRuntime(stages, n_microbatches=a["microbatches"], loss_fn=loss_fn)
    schedule._load_csv(a["order_path"], format="compute_only")
    if rank == 0:
        schedule._dump_csv(a["order_path"] + ".comms", format="compute_comms")

    gen = torch.Generator().manual_seed(99)
    inputs = torch.randn(batch * a["microbatches"], hidden, generator=gen).to(device)
    target = torch.randn(batch * a["microbatches"], hidden, generator=gen).to(device)
    has_first = any(st.is_first for st in stages)
    has_last = any(st.is_last for st in stages)
    opt = torch.optim.SGD([p for st in stages for p in st.submod.parameters()], lr=1e-4)

    def start_together():
        """Holds every rank until one common instant on CLOCK_MONOTONIC.

        A barrier alone releases the ranks up to about 1.5 ms apart (gloo over
        loopback), and when the rank holding stage 0 leaves last, the whole
        step is late by that much: time the model, which starts every device
        at 0, never sees. So rank 0 picks an instant START_MARGIN_MS ahead and
        broadcasts it; each rank sleeps until just before it and spins the
        rest. Returns how late this rank was (0 when it got there in time)."""
        dist.barrier()
        when = torch.tensor([now_ms() + START_MARGIN_MS], dtype=torch.float64)
        if use_cuda:
            when = when.to(device)
        dist.broadcast(when, src=0)
        instant = float(when.item())
        ahead = instant - now_ms() - SPIN_MS
        if ahead > 0:
            time.sleep(ahead / 1000.0)
        while now_ms() < instant:
            pass
        return max(0.0, now_ms() - instant)

    steps = []
    late = []
    for step in range(a["warmup"] + a["steps"]):
        rec["actions"] = []
        opt.zero_grad()
        args = (inputs,) if has_first else ()
        kwargs = {"target": target, "losses": []} if has_last else {}
        was_late = start_together()
        schedule.step(*args, **kwargs)
        opt.step()
        if use_cuda:
            torch.cuda.synchronize()
        out = []
        for e in rec["actions"]:
            row = {"action": e["action"], "start": e["_start"], "end": e["_end"],
                   "wait": e["_wait"]}
            comp = e.get("_compute", [])
            if comp:
                if use_cuda:
                    # CUDA events: compute time measured on the stream, placed
                    # at the end of the action's host span.
                    dur = sum(c[1].elapsed_time(c[2]) for c in comp)
                    row["compute_start"], row["compute_end"] = e["_end"] - dur, e["_end"]
                else:
                    row["compute_start"], row["compute_end"] = comp[0][1], comp[-1][2]
            out.append(row)
        if step >= a["warmup"]:
            steps.append(out)
            late.append(round(was_late, 4))
    dist.barrier()
    # Each rank writes its own file (gather_object needs numpy, not a torch
    # dependency); the driver reads them all.
    with open(a["result_path"] + f".{rank}", "w") as f:
        json.dump({"steps": steps, "late": late}, f)
    dist.destroy_process_group()


# ------------------------------------------------------------------ driver


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--out", required=True)
    p.add_argument("--workload", choices=("sleep", "mlp"), default="sleep")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--bubblesim", default=os.environ.get("BUBBLESIM"))
    p.add_argument("--timeout", type=float, default=120.0, help="whole run, seconds")
    p.add_argument("--sleep-scale", type=float, default=1.0)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    a = p.parse_args()

    if not 1 <= a.steps <= 1000 or not 0 <= a.warmup <= 100:
        fail(2, "--steps must be 1..1000 and --warmup 0..100")
    if not 1 <= a.timeout <= 3600:
        fail(2, "--timeout must be 1..3600 seconds")
    if not (math.isfinite(a.sleep_scale) and 0 <= a.sleep_scale <= 100):
        fail(2, "--sleep-scale must be 0..100")
    if a.hidden is None:
        a.hidden = 16 if a.workload == "sleep" else 512
    if not 1 <= a.hidden <= 8192 or not 1 <= a.layers <= 64 or not 1 <= a.batch <= 4096:
        fail(2, "--hidden 1..8192, --layers 1..64, --batch 1..4096")
    if not 1 <= a.threads <= 64:
        fail(2, "--threads must be 1..64")
    if not os.path.isfile(a.config):
        fail(2, f"{a.config}: no such file")

    try:
        import torch
        import torch.multiprocessing as mp
    except ImportError:
        fail(3, "torch is not installed (pip install torch)")
    version = torch.__version__.split("+")[0]
    if ".".join(version.split(".")[:2]) not in KNOWN_TORCH:
        fail(3, f"torch {torch.__version__} is not a version this harness knows "
                f"(checked: {', '.join(KNOWN_TORCH)}); it uses private names of "
                "torch.distributed.pipelining that change between releases")
    try:
        from torch.distributed.pipelining import schedules as sch
        for name in ("_PipelineScheduleRuntime", "_wait_batch_p2p", "record_function"):
            getattr(sch, name)
        getattr(sch._PipelineScheduleRuntime, "_load_csv")
    except (ImportError, AttributeError) as e:
        fail(3, f"torch {torch.__version__}: pipelining lacks a name this harness needs: {e}")
    if a.backend == "nccl" and not torch.cuda.is_available():
        fail(3, "--backend nccl needs CUDA devices; none found")

    here = os.path.dirname(os.path.abspath(__file__))
    bubblesim = a.bubblesim or os.path.join(here, "..", "..", "build", "cli", "bubblesim")
    if not os.access(bubblesim, os.X_OK):
        fail(2, f"bubblesim binary not found at {bubblesim} (give --bubblesim PATH)")

    rows = export_order(bubblesim, a.config, a.set)
    placement, n_stages, microbatches = analyse_order(rows)
    ranks = len(rows)
    if ranks < 1 or ranks > 16:
        fail(2, f"{ranks} ranks: this harness runs 1..16")
    if a.backend == "nccl" and torch.cuda.device_count() < ranks:
        fail(3, f"--backend nccl: {ranks} ranks need {ranks} GPUs, found {torch.cuda.device_count()}")
    if a.workload == "sleep":
        sleeps = sleep_costs(a.config, a.set, placement, ranks)
        sleeps = {k: [x * a.sleep_scale for x in v] for k, v in sleeps.items()}
    else:
        sleeps = {k: [0.0] * n_stages for k in ("F", "B", "I", "W")}

    tmp = tempfile.mkdtemp(prefix="bs-pytorch-")
    # The order, the comms dump and the ranks' results live here until the
    # trace is written; removed however the script ends.
    import atexit
    atexit.register(shutil.rmtree, tmp, True)
    order_path = os.path.join(tmp, "order.csv")
    with open(order_path, "w") as f:
        f.write("\n".join(rows) + "\n")
    result_path = os.path.join(tmp, "result.json")
    args = {"ranks": ranks, "stages": n_stages, "microbatches": microbatches,
            "placement": placement, "order_path": order_path, "result_path": result_path,
            "port": free_port(), "backend": a.backend, "timeout": a.timeout,
            "workload": a.workload, "sleep_ms": sleeps, "hidden": a.hidden,
            "layers": a.layers, "batch": a.batch, "steps": a.steps, "warmup": a.warmup,
            "threads": a.threads}

    t_start = time.monotonic()
    ctx = mp.start_processes(worker, args=(args,), nprocs=ranks, join=False, start_method="spawn")

    def stop(signum, frame):
        # The ranks are this script's children: end them with it.
        for proc in ctx.processes:
            if proc.is_alive():
                proc.kill()
        fail(1, f"stopped by signal {signum}; ranks killed")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() - t_start > a.timeout:
                for proc in ctx.processes:
                    if proc.is_alive():
                        proc.kill()
                fail(1, f"run did not finish within --timeout {a.timeout:g} s; ranks killed")
    except mp.ProcessRaisedException as e:
        fail(1, f"a rank failed:\n{e}")
    except mp.ProcessExitedException as e:
        fail(1, f"a rank exited: {e}")

    per_rank, late = [], []
    for r in range(ranks):
        with open(result_path + f".{r}") as f:
            got = json.load(f)
        per_rank.append(got["steps"])
        late.append(got["late"])
    comms = []
    if os.path.exists(order_path + ".comms"):
        with open(order_path + ".comms") as f:
            comms = [line.rstrip("\r\n") for line in f if line.strip()]
    # Steps: each rank's actions; times rebased to the step's earliest action.
    steps_out = []
    for i in range(a.steps):
        t0 = min(e["start"] for r in range(ranks) for e in per_rank[r][i])
        ranks_out = []
        for r in range(ranks):
            acts = []
            for e in per_rank[r][i]:
                row = {k: (round(v - t0, 4) if k != "wait" else round(v, 4))
                       for k, v in e.items() if k != "action"}
                acts.append({"action": e["action"], **row})
            ranks_out.append({"rank": r, "actions": acts})
        steps_out.append({"step": i, "ranks": ranks_out,
                          "start_late_ms": [late[r][i] for r in range(ranks)]})

    trace = {
        "format": TRACE_FORMAT,
        "version": TRACE_VERSION,
        "source": "pytorch",
        "torch_version": torch.__version__,
        "backend": a.backend,
        "device": "cuda" if a.backend == "nccl" else "cpu",
        "workload": a.workload,
        "config": os.path.basename(a.config),
        "ranks": ranks,
        "stages": n_stages,
        "microbatches": microbatches,
        "placement": placement,
        "order": rows,
        "order_with_comms": comms,
        "sleep_ms": sleeps if a.workload == "sleep" else None,
        "mlp": {"hidden": a.hidden, "layers": a.layers, "batch": a.batch}
        if a.workload == "mlp" else None,
        "warmup_steps": a.warmup,
        "step_start": f"common instant {START_MARGIN_MS:g} ms after a barrier",
        "steps": steps_out,
    }
    tmp_out = a.out + ".tmp"
    try:
        with open(tmp_out, "w") as f:
            json.dump(trace, f, indent=1)
        os.replace(tmp_out, a.out)
    except OSError as e:
        fail(2, f"cannot write {a.out}: {e}")
    print(f"run_schedule: {ranks} ranks, {n_stages} stages, M={microbatches}, "
          f"{a.steps} steps ({a.workload}) in {time.monotonic() - t_start:.1f} s -> {a.out}")


if __name__ == "__main__":
    main()
