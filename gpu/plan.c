/*
 * plan.c - where a program becomes GPU commands (see plan.h for the plan's
 * invariants).
 *
 * The builder runs the dependency rules of sim/engine.c without time, like
 * the validator's feasibility pass (sim/validate.c): devices advance in
 * round robin while their next op's input has been produced, and each op is
 * emitted when it advances. An op is therefore emitted only after the
 * producer of its input, so every event is recorded before anyone waits on
 * it. A message's copy is issued right after its producer, which puts the
 * copies of one directed link in the producer device's op order: the link's
 * first come first served order in the engine, because all producers of one
 * directed link sit on one in-order device.
 *
 * The builder keeps one byte of flags and one event id per (stage,
 * micro-batch) pair and direction; nothing here depends on CUDA.
 */
#include "plan.h"

#include "internal.h"

#include <string.h>

enum { HAVE_FIN = 1, HAVE_GIN = 2, SPLIT = 4 /* the pair's backward is split */ };

#define NO_EVENT UINT32_MAX

typedef struct builder {
    bs_gpu_plan *plan;
    const bs_program *prog;
    bs_chunk_costs costs;
    size_t m;
    uint8_t *flags;          /* [pairs] */
    uint32_t *fin_event;     /* [pairs]: copy-done event of the forward input */
    uint32_t *gin_event;     /* [pairs]: copy-done event of the gradient input */
    uint32_t *fwd_consumer;  /* [pairs]: index of the pair's forward op, or UINT32_MAX */
    uint32_t *bwd_consumer;  /* [pairs]: its backward or input-gradient op, or UINT32_MAX */
    int32_t *fwd_link;       /* [stages]: link for s -> s+1, -1 when local */
    int32_t *bwd_link;       /* [stages]: link for s+1 -> s */
    size_t *next;            /* [devices] */
    uint32_t *arrive_event;  /* [devices]: barrier arrival events being issued */
    double activation_chunk; /* bytes of one chunk's activation */
    double kept;             /* memory.kept_fraction */
    double overlap;          /* costs.overlap */
    double message_bytes;
    int keep_activations, update_per_backward;
} builder;

void bs_gpu_plan_init(bs_gpu_plan *plan)
{
    memset(plan, 0, sizeof *plan);
}

void bs_gpu_plan_free(bs_gpu_plan *plan)
{
    bs_free(plan->link_src);
    bs_free(plan->link_dst);
    bs_free(plan->cmds);
    bs_free(plan->event_queue);
    bs_gpu_plan_init(plan);
}

static int push(builder *b, bs_gpu_cmd cmd)
{
    bs_gpu_plan *plan = b->plan;
    if (plan->cmd_count == plan->cmd_capacity) {
        size_t cap = plan->cmd_capacity ? 2 * plan->cmd_capacity : 256;
        if (bs_realloc_array((void **)&plan->cmds, cap, sizeof *plan->cmds))
            return BS_ERR_NOMEM;
        plan->cmd_capacity = cap;
    }
    plan->cmds[plan->cmd_count++] = cmd;
    return BS_OK;
}

/* Allocates a new event recorded by `queue`, returning its id in *event. */
static int new_event(builder *b, uint32_t queue, uint32_t *event)
{
    bs_gpu_plan *plan = b->plan;
    if (plan->event_count == NO_EVENT - 1)
        return BS_ERR_LIMIT;
    if (plan->event_count == plan->event_capacity) {
        size_t cap = plan->event_capacity ? 2 * plan->event_capacity : 64;
        if (bs_realloc_array((void **)&plan->event_queue, cap, sizeof *plan->event_queue))
            return BS_ERR_NOMEM;
        plan->event_capacity = cap;
    }
    *event = plan->event_count++;
    plan->event_queue[*event] = queue;
    return BS_OK;
}

static int emit_record(builder *b, uint32_t queue, uint32_t *event)
{
    int rc = new_event(b, queue, event);
    if (rc)
        return rc;
    b->plan->records++;
    return push(b, (bs_gpu_cmd){.kind = BS_GPU_RECORD, .queue = queue, .event = *event});
}

static int emit_wait(builder *b, uint32_t queue, uint32_t event)
{
    b->plan->waits++;
    return push(b, (bs_gpu_cmd){.kind = BS_GPU_WAIT, .queue = queue, .event = event});
}

/* Mirror of the engine's op_duration (sim/engine.c): keep in step. */
static double op_duration(const builder *b, const bs_op *op)
{
    switch (op->kind) {
    case BS_OP_FORWARD:
        return b->costs.forward[op->stage];
    case BS_OP_BACKWARD:
        return b->costs.backward[op->stage] + b->costs.weight[op->stage] +
               (b->update_per_backward ? b->costs.optimizer : 0.0);
    case BS_OP_INPUT_GRAD:
        return b->costs.backward[op->stage];
    case BS_OP_WEIGHT_GRAD:
        return b->costs.weight[op->stage];
    default:
        return b->costs.optimizer;
    }
}

static bs_gpu_cmd op_cmd(const builder *b, int kind, int device, size_t idx)
{
    const bs_op *op = &b->prog->ops[idx];
    return (bs_gpu_cmd){.kind = (uint8_t)kind,
                        .op_kind = op->kind,
                        .stage = op->stage,
                        .queue = (uint32_t)device,
                        .op = (uint32_t)idx,
                        .consumer = UINT32_MAX,
                        .microbatch = op->microbatch,
                        .event = NO_EVENT,
                        .ops = 1};
}

/* Whether op's input has been produced (locally or by an issued copy). */
static int input_ready(const builder *b, const bs_op *op)
{
    size_t pair = (size_t)op->stage * b->m + op->microbatch;
    switch (op->kind) {
    case BS_OP_FORWARD:
        return op->stage == 0 || (b->flags[pair] & HAVE_FIN);
    case BS_OP_BACKWARD:
    case BS_OP_INPUT_GRAD:
        return op->stage + 1 == b->prog->stages || (b->flags[pair] & HAVE_GIN);
    default:
        return 1;
    }
}

/* The consumer of op's output: the op on device dst that reads it, looked up
 * in the per-pair index built once before planning (a scan of dst's list per
 * message made the plan quadratic in M); UINT32_MAX when dst holds none. */
static uint32_t find_consumer(const builder *b, int dst, int kind_forward, int stage, uint32_t mb)
{
    const bs_program *prog = b->prog;
    size_t pair = (size_t)stage * b->m + mb;
    uint32_t i = (kind_forward ? b->fwd_consumer : b->bwd_consumer)[pair];
    if (i == UINT32_MAX || i < prog->device_first[dst] || i >= prog->device_first[dst + 1])
        return UINT32_MAX;
    return i;
}

static int emit_part(builder *b, int kind, int d, size_t idx, int part, double share)
{
    bs_gpu_cmd c = op_cmd(b, kind, d, idx);
    c.part = (uint8_t)part;
    c.share = share;
    c.bytes = b->activation_chunk * share;
    if (kind == BS_GPU_ALLOC)
        b->plan->allocs++;
    else
        b->plan->frees++;
    return push(b, c);
}

/* Allocations before op idx runs: a forward's activation, in one part, or
 * in two where its backward is split (sim/metrics.c counts it that way). */
static int emit_allocs(builder *b, int d, size_t idx)
{
    const bs_op *op = &b->prog->ops[idx];
    size_t pair = (size_t)op->stage * b->m + op->microbatch;
    int rc = BS_OK;
    if (op->kind != BS_OP_FORWARD || !b->keep_activations)
        return BS_OK;
    if (!(b->flags[pair] & SPLIT))
        return emit_part(b, BS_GPU_ALLOC, d, idx, BS_GPU_PART_WHOLE, 1.0);
    if (b->kept < 1.0)
        rc = emit_part(b, BS_GPU_ALLOC, d, idx, BS_GPU_PART_TRANSIENT, 1.0 - b->kept);
    if (!rc && b->kept > 0.0)
        rc = emit_part(b, BS_GPU_ALLOC, d, idx, BS_GPU_PART_KEPT, b->kept);
    return rc;
}

static int emit_frees(builder *b, int d, size_t idx)
{
    const bs_op *op = &b->prog->ops[idx];
    if (!b->keep_activations)
        return BS_OK;
    if (op->kind == BS_OP_BACKWARD)
        return emit_part(b, BS_GPU_FREE, d, idx, BS_GPU_PART_WHOLE, 1.0);
    if (op->kind == BS_OP_INPUT_GRAD && b->kept < 1.0)
        return emit_part(b, BS_GPU_FREE, d, idx, BS_GPU_PART_TRANSIENT, 1.0 - b->kept);
    if (op->kind == BS_OP_WEIGHT_GRAD && b->kept > 0.0)
        return emit_part(b, BS_GPU_FREE, d, idx, BS_GPU_PART_KEPT, b->kept);
    return BS_OK;
}

/* The wait for op idx's input when it comes from another device. */
static int emit_input_wait(builder *b, int d, size_t idx)
{
    const bs_op *op = &b->prog->ops[idx];
    size_t pair = (size_t)op->stage * b->m + op->microbatch;
    uint32_t in_event = NO_EVENT;
    if (op->kind == BS_OP_FORWARD && op->stage > 0)
        in_event = b->fin_event[pair];
    else if ((op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) &&
             op->stage + 1 < b->prog->stages)
        in_event = b->gin_event[pair];
    return in_event == NO_EVENT ? BS_OK : emit_wait(b, (uint32_t)d, in_event);
}

/* Op idx's output: same rule as the engine. Local outputs only mark the
 * input present (stream order carries them); remote ones get a producer
 * event, a copy on the link's queue and a copy-done event. */
static int emit_output(builder *b, int d, size_t idx)
{
    const bs_program *prog = b->prog;
    bs_gpu_plan *plan = b->plan;
    const bs_op *op = &prog->ops[idx];
    int to_stage = -1, forward = 0, rc;
    int32_t link = -1;
    if (op->kind == BS_OP_FORWARD && op->stage + 1 < prog->stages) {
        to_stage = op->stage + 1;
        forward = 1;
        link = b->fwd_link[op->stage];
    } else if ((op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) && op->stage > 0) {
        to_stage = op->stage - 1;
        link = b->bwd_link[op->stage - 1];
    }
    if (to_stage < 0)
        return BS_OK;
    size_t to_pair = (size_t)to_stage * b->m + op->microbatch;
    b->flags[to_pair] |= forward ? HAVE_FIN : HAVE_GIN;
    if (link < 0)
        return BS_OK;
    uint32_t q = (uint32_t)(plan->devices + link), produced, done;
    int dst = prog->stage_device[to_stage];
    if ((rc = emit_record(b, (uint32_t)d, &produced)) || (rc = emit_wait(b, q, produced)))
        return rc;
    bs_gpu_cmd c = op_cmd(b, BS_GPU_COPY, d, idx);
    c.queue = q;
    c.src = (uint16_t)d;
    c.dst = (uint16_t)dst;
    c.bytes = b->message_bytes;
    c.consumer = find_consumer(b, dst, forward, to_stage, op->microbatch);
    c.event = plan->event_count; /* the id emit_record gives next */
    plan->copies++;
    if ((rc = push(b, c)) || (rc = emit_record(b, q, &done)))
        return rc;
    (forward ? b->fin_event : b->gin_event)[to_pair] = done;
    return BS_OK;
}

/* Emits what ops idx .. idx + count - 1 of device d bring (count 2 for an
 * overlapped pair): allocations, input waits, one kernel, frees, outputs. */
static int emit_unit(builder *b, int d, size_t idx, int count)
{
    const bs_op *op = &b->prog->ops[idx];
    int rc = BS_OK;
    for (int k = 0; k < count && !rc; k++)
        rc = emit_allocs(b, d, idx + (size_t)k);
    for (int k = 0; k < count && !rc; k++)
        rc = emit_input_wait(b, d, idx + (size_t)k);
    if (rc)
        return rc;
    bs_gpu_cmd kc = op_cmd(b, BS_GPU_KERNEL, d, idx);
    kc.ops = (uint8_t)count;
    kc.duration = count == 2 ? (op_duration(b, op) + op_duration(b, op + 1)) * b->overlap
                             : op_duration(b, op);
    b->plan->kernels++;
    if ((rc = push(b, kc)))
        return rc;
    for (int k = 0; k < count && !rc; k++)
        rc = emit_frees(b, d, idx + (size_t)k);
    for (int k = 0; k < count && !rc; k++)
        rc = emit_output(b, d, idx + (size_t)k);
    return rc;
}

/* All devices stand at an optimizer op: arrivals, cross waits, kernels. */
static int emit_barrier(builder *b)
{
    const bs_program *prog = b->prog;
    int p = prog->devices, rc;
    b->plan->barriers++;
    if (p > 1)
        for (int d = 0; d < p; d++)
            if ((rc = emit_record(b, (uint32_t)d, &b->arrive_event[d])))
                return rc;
    for (int d = 0; d < p; d++) {
        for (int k = 0; k < p; k++)
            if (k != d && (rc = emit_wait(b, (uint32_t)d, b->arrive_event[k])))
                return rc;
        bs_gpu_cmd c = op_cmd(b, BS_GPU_KERNEL, d, b->next[d]);
        c.duration = op_duration(b, &prog->ops[b->next[d]]);
        b->plan->kernels++;
        if ((rc = push(b, c)))
            return rc;
        b->next[d]++;
    }
    return BS_OK;
}

/* One copy queue per directed device pair that some stage boundary crosses,
 * numbered like the engine's links (forward boundaries first). */
static int assign_links(builder *b)
{
    const bs_program *prog = b->prog;
    bs_gpu_plan *plan = b->plan;
    size_t cap = 2 * (size_t)prog->stages;
    if (bs_realloc_array((void **)&plan->link_src, cap, sizeof *plan->link_src) ||
        bs_realloc_array((void **)&plan->link_dst, cap, sizeof *plan->link_dst))
        return BS_ERR_NOMEM;
    plan->links = 0;
    for (int dir = 0; dir < 2; dir++) {
        for (int s = 0; s + 1 < prog->stages; s++) {
            int a = prog->stage_device[s], c = prog->stage_device[s + 1];
            int src = dir == 0 ? a : c, dst = dir == 0 ? c : a;
            int32_t id = -1;
            if (src != dst) {
                for (int l = 0; l < plan->links && id < 0; l++)
                    if (plan->link_src[l] == src && plan->link_dst[l] == dst)
                        id = l;
                if (id < 0) {
                    id = plan->links++;
                    plan->link_src[id] = (uint16_t)src;
                    plan->link_dst[id] = (uint16_t)dst;
                }
            }
            (dir == 0 ? b->fwd_link : b->bwd_link)[s] = id;
        }
    }
    return BS_OK;
}

/* The plan runs kernels as long as the op costs, each copy on its link
 * queue from start to arrival, while the sender's queue goes on computing,
 * with one link kind and one pipeline replica: the engine's rules when none
 * of the keys below is set. A key that changes the engine's timing beyond
 * them is refused, so that verify (and its dry run) never compares the run
 * with a prediction of another one. The device plan is read as the engine
 * reads it (only when made for this shape). */
static int check_timing_rules(const bs_config *cfg, const bs_program *prog, bs_error *err)
{
    if (cfg->overhead > 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "costs.overhead: the GPU check's kernels last the op costs alone, while "
                       "the prediction would add %g ms to every op; leave it out (0) to verify",
                       cfg->overhead);
    if (cfg->blocking)
        return bs_fail(err, BS_ERR_INVALID,
                       "network.blocking: the GPU check copies on queues beside the compute, so "
                       "a sender never waits for its message; set it to false to verify");
    if (!cfg->latency_holds_link)
        return bs_fail(err, BS_ERR_INVALID,
                       "network.latency_holds_link: a GPU copy holds its link queue for its whole "
                       "time, latency included; set it to true to verify");
    const bs_device_plan *dp = cfg->device_plan;
    if (!dp || dp->devices != prog->devices || dp->chunks != prog->stages)
        return BS_OK;
    for (int s = 0; s + 1 < prog->stages; s++)
        if (dp->crosses_node[s] > 0)
            return bs_fail(err, BS_ERR_INVALID,
                           "hardware.gpus_per_node: chunks %d and %d sit on different nodes, so "
                           "the prediction would send between them over the node link, but the "
                           "GPU check runs every stage on one GPU; leave it out or make a node "
                           "hold the whole pipeline to verify",
                           s, s + 1);
    if (!(prog->flags & BS_PROGRAM_FORWARD_ONLY) && bs_device_plan_has_collectives(dp))
        return bs_fail(err, BS_ERR_INVALID,
                       "data_parallel: the GPU check runs one pipeline replica without gradient "
                       "collectives, while the prediction would add them; set data_parallel to "
                       "1 to verify");
    return BS_OK;
}

int bs_gpu_plan_build(bs_gpu_plan *plan, const bs_program *prog, const bs_config *cfg,
                      bs_error *err)
{
    builder b;
    memset(&b, 0, sizeof b);
    int rc = BS_OK, p = prog->devices;
    size_t pairs = (size_t)prog->stages * prog->microbatches;
    /* The plan knows forwards and backwards; a decode step and the loop
     * back to stage 0 have no commands here yet. */
    if (prog->flags & BS_PROGRAM_DECODE_LOOP)
        return bs_fail(err, BS_ERR_INVALID,
                       "schedule: the GPU check does not run decode programs (no decode step or "
                       "loop back in its plan); check a forward or training schedule");
    if ((rc = check_timing_rules(cfg, prog, err)))
        return rc;
    b.plan = plan;
    b.prog = prog;
    b.m = prog->microbatches;
    b.keep_activations = !(prog->flags & BS_PROGRAM_FORWARD_ONLY);
    b.update_per_backward = (prog->flags & BS_PROGRAM_UPDATE_PER_BACKWARD) != 0;
    b.activation_chunk = cfg->activation_bytes / prog->chunks_per_device;
    b.kept = cfg->kept_fraction;
    b.overlap = cfg->overlap;
    b.message_bytes = cfg->message_bytes;
    plan->devices = p;
    plan->cmd_count = 0;
    plan->event_count = 0;
    plan->copies = plan->kernels = plan->allocs = plan->frees = 0;
    plan->waits = plan->records = plan->barriers = 0;
    if (!(b.flags = bs_zalloc_array(pairs, 1)) ||
        !(b.fin_event = bs_alloc_array(pairs, sizeof *b.fin_event)) ||
        !(b.gin_event = bs_alloc_array(pairs, sizeof *b.gin_event)) ||
        !(b.fwd_consumer = bs_alloc_array(pairs, sizeof *b.fwd_consumer)) ||
        !(b.bwd_consumer = bs_alloc_array(pairs, sizeof *b.bwd_consumer)) ||
        !(b.fwd_link = bs_alloc_array((size_t)prog->stages, sizeof *b.fwd_link)) ||
        !(b.bwd_link = bs_alloc_array((size_t)prog->stages, sizeof *b.bwd_link)) ||
        !(b.next = bs_alloc_array((size_t)p, sizeof *b.next)) ||
        !(b.arrive_event = bs_alloc_array((size_t)p, sizeof *b.arrive_event)) || assign_links(&b)) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory planning the GPU run");
        goto error;
    }
    if ((rc = bs_chunk_costs_resolve(&b.costs, cfg, prog->stage_device, err)))
        goto error;
    for (size_t i = 0; i < prog->op_count; i++)
        if (prog->ops[i].kind == BS_OP_INPUT_GRAD)
            b.flags[(size_t)prog->ops[i].stage * b.m + prog->ops[i].microbatch] |= SPLIT;
    memset(b.fin_event, 0xff, pairs * sizeof *b.fin_event);
    memset(b.fwd_consumer, 0xff, pairs * sizeof *b.fwd_consumer);
    memset(b.bwd_consumer, 0xff, pairs * sizeof *b.bwd_consumer);
    /* The first op of each kind per pair in program order (devices in
     * order), which is what a scan of the consumer's list would find. */
    for (size_t i = prog->op_count; i-- > 0;) {
        const bs_op *op = &prog->ops[i];
        size_t pair = (size_t)op->stage * b.m + op->microbatch;
        if (op->kind == BS_OP_FORWARD)
            b.fwd_consumer[pair] = (uint32_t)i;
        else if (op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD)
            b.bwd_consumer[pair] = (uint32_t)i;
    }
    memset(b.gin_event, 0xff, pairs * sizeof *b.gin_event);
    for (int d = 0; d < p; d++)
        b.next[d] = prog->device_first[d];

    for (;;) {
        int progress = 0, finished = 0, at_barrier = 0;
        for (int d = 0; d < p; d++) {
            while (b.next[d] < prog->device_first[d + 1]) {
                size_t idx = b.next[d];
                const bs_op *op = &prog->ops[idx];
                int count =
                    (op->reserved & BS_OP_OVERLAP_NEXT) && idx + 1 < prog->device_first[d + 1] ? 2
                                                                                               : 1;
                if (op->kind == BS_OP_OPTIMIZER || !input_ready(&b, op) ||
                    (count == 2 && !input_ready(&b, op + 1)))
                    break;
                if ((rc = emit_unit(&b, d, idx, count)))
                    goto failed;
                b.next[d] += (size_t)count;
                progress = 1;
            }
            if (b.next[d] == prog->device_first[d + 1])
                finished++;
            else if (prog->ops[b.next[d]].kind == BS_OP_OPTIMIZER)
                at_barrier++;
        }
        if (finished == p)
            break;
        if (at_barrier == p) {
            if ((rc = emit_barrier(&b)))
                goto failed;
            progress = 1;
        }
        if (!progress) {
            char a[48];
            int d = 0;
            while (b.next[d] == prog->device_first[d + 1])
                d++;
            rc = bs_fail(err, BS_ERR_DEADLOCK,
                         "GPU plan: no device can issue its next op (device %d waits at %s); "
                         "the program should have been validated first",
                         d, bs_op_format(&prog->ops[b.next[d]], a, sizeof a));
            goto error;
        }
    }
    goto error; /* success: shared cleanup */
failed:
    if (rc == BS_ERR_LIMIT)
        rc = bs_fail(err, rc, "GPU plan: more than %u events", NO_EVENT - 1);
    else
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory planning the GPU run");
error:
    bs_chunk_costs_free(&b.costs);
    bs_free(b.flags);
    bs_free(b.fin_event);
    bs_free(b.gin_event);
    bs_free(b.fwd_consumer);
    bs_free(b.bwd_consumer);
    bs_free(b.fwd_link);
    bs_free(b.bwd_link);
    bs_free(b.next);
    bs_free(b.arrive_event);
    return rc;
}

const char *bs_gpu_cmd_format(const bs_gpu_cmd *cmd, char *buf, size_t size)
{
    static const char *const names[] = {"alloc", "wait", "kernel", "record", "copy", "free"};
    static const char letter[] = {'F', 'B', 'I', 'W', 'O'};
    const char *name = cmd->kind < 6 ? names[cmd->kind] : "?";
    char what = cmd->op_kind < sizeof letter ? letter[cmd->op_kind] : '?';
    switch (cmd->kind) {
    case BS_GPU_WAIT:
    case BS_GPU_RECORD:
        snprintf(buf, size, "queue %u: %s event %u", cmd->queue, name, cmd->event);
        break;
    case BS_GPU_COPY:
        snprintf(buf, size, "queue %u: copy %c(s%u,m%u) device %u -> %u", cmd->queue, what,
                 cmd->stage, cmd->microbatch, cmd->src, cmd->dst);
        break;
    default:
        snprintf(buf, size, "queue %u: %s %c(s%u,m%u)", cmd->queue, name, what, cmd->stage,
                 cmd->microbatch);
        break;
    }
    return buf;
}

int bs_gpu_plan_peak_live(const bs_gpu_plan *plan, double *peak, double *peak_bytes, bs_error *err)
{
    /* live[d]: chunks; live[devices + d]: bytes */
    double *live = bs_zalloc_array(2 * (size_t)plan->devices + 1, sizeof *live);
    if (!live)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    double *live_bytes = live + plan->devices;
    for (int d = 0; d < plan->devices; d++) {
        if (peak)
            peak[d] = 0;
        if (peak_bytes)
            peak_bytes[d] = 0;
    }
    for (size_t i = 0; i < plan->cmd_count; i++) {
        const bs_gpu_cmd *c = &plan->cmds[i];
        uint32_t q = c->queue;
        if (q >= (uint32_t)plan->devices)
            continue;
        if (c->kind == BS_GPU_ALLOC) {
            live[q] += c->share;
            if (peak && live[q] > peak[q])
                peak[q] = live[q];
            live_bytes[q] += c->bytes;
            if (peak_bytes && live_bytes[q] > peak_bytes[q])
                peak_bytes[q] = live_bytes[q];
        } else if (c->kind == BS_GPU_FREE) {
            live[q] -= c->share;
            live_bytes[q] -= c->bytes;
        }
    }
    bs_free(live);
    return BS_OK;
}

/* One pass in issue order suffices: a wait is issued after the record it
 * refers to, and a queue's time depends only on its own earlier commands and
 * on such records. */
int bs_gpu_plan_simulate(const bs_gpu_plan *plan, const bs_program *prog, double copy_ms,
                         bs_timeline *tl, bs_error *err)
{
    size_t queues = (size_t)plan->devices + (size_t)plan->links;
    double *now = bs_zalloc_array(queues ? queues : 1, sizeof *now);
    double *event_time = bs_zalloc_array(plan->event_count + 1, sizeof *event_time);
    int rc = BS_OK;
    if (!now || !event_time) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory simulating the GPU plan");
        goto error;
    }
    if (bs_timeline_reserve(tl, prog->op_count)) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the timeline");
        goto error;
    }
    tl->program = prog;
    tl->message_count = 0;
    tl->messages_sent = 0;
    tl->message_bytes_sent = 0;
    for (size_t i = 0; i < plan->cmd_count; i++) {
        const bs_gpu_cmd *c = &plan->cmds[i];
        double *t = &now[c->queue];
        switch (c->kind) {
        case BS_GPU_KERNEL:
            for (uint32_t k = c->op; k < c->op + c->ops; k++) {
                tl->times[k] = (bs_op_time){*t, *t + c->duration};
            }
            *t += c->duration;
            break;
        case BS_GPU_COPY:
            *t += copy_ms;
            tl->messages_sent++;
            tl->message_bytes_sent += c->bytes;
            break;
        case BS_GPU_RECORD:
            event_time[c->event] = *t;
            break;
        case BS_GPU_WAIT:
            if (event_time[c->event] > *t)
                *t = event_time[c->event];
            break;
        default:
            break;
        }
    }
error:
    bs_free(now);
    bs_free(event_time);
    return rc;
}

/* ------------------------------------------------------------- checking */

typedef struct checker {
    uint32_t *recorded_after; /* [events]: first op + 1 of the recording queue's last kernel
                                 (UINT32_MAX: none yet), 0 = not recorded yet */
    uint8_t *recorded_count;  /* [events]: ops that kernel covered */
    uint32_t *waited_by;      /* [events]: last queue that waited, UINT32_MAX none */
    uint32_t *input_event;    /* [ops]: copy-done event the op must wait for */
    uint32_t *last_kernel;    /* [queues]: first op + 1 of the queue's last kernel, 0 none */
    uint8_t *last_count;      /* [queues]: ops of that kernel */
    uint32_t *last_wait;      /* [queues]: event of the queue's last wait */
    size_t *next;             /* [devices] */
    size_t *waits_since;      /* [devices]: waits since the last kernel */
    uint8_t *parts;           /* [pairs]: bit per bs_gpu_part allocated */
} checker;

/* The op kind that frees each part. */
static int frees_part(int op_kind, int part)
{
    return (part == BS_GPU_PART_WHOLE && op_kind == BS_OP_BACKWARD) ||
           (part == BS_GPU_PART_TRANSIENT && op_kind == BS_OP_INPUT_GRAD) ||
           (part == BS_GPU_PART_KEPT && op_kind == BS_OP_WEIGHT_GRAD);
}

static int expected_messages(const bs_program *prog, size_t *count)
{
    size_t n = 0;
    for (int d = 0; d < prog->devices; d++)
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            const bs_op *op = &prog->ops[i];
            if (op->kind == BS_OP_FORWARD && op->stage + 1 < prog->stages)
                n += prog->stage_device[op->stage + 1] != d;
            else if ((op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) && op->stage > 0)
                n += prog->stage_device[op->stage - 1] != d;
        }
    *count = n;
    return BS_OK;
}

int bs_gpu_plan_check(const bs_gpu_plan *plan, const bs_program *prog, bs_error *err)
{
    checker c;
    memset(&c, 0, sizeof c);
    int rc = BS_OK, p = plan->devices;
    size_t queues = (size_t)p + (size_t)plan->links;
    size_t pairs = (size_t)prog->stages * prog->microbatches, m = prog->microbatches;
    size_t events = plan->event_count ? plan->event_count : 1;
    size_t ops = prog->op_count ? prog->op_count : 1;
    size_t copies = 0, want_copies;
    char a[96];
    if (p != prog->devices)
        return bs_fail(err, BS_ERR_INTERNAL, "GPU plan has %d stage queues, program %d devices", p,
                       prog->devices);
    if (!(c.recorded_after = bs_zalloc_array(events, sizeof *c.recorded_after)) ||
        !(c.recorded_count = bs_zalloc_array(events, sizeof *c.recorded_count)) ||
        !(c.waited_by = bs_alloc_array(events, sizeof *c.waited_by)) ||
        !(c.input_event = bs_alloc_array(ops, sizeof *c.input_event)) ||
        !(c.last_kernel = bs_zalloc_array(queues, sizeof *c.last_kernel)) ||
        !(c.last_count = bs_zalloc_array(queues, sizeof *c.last_count)) ||
        !(c.last_wait = bs_alloc_array(queues, sizeof *c.last_wait)) ||
        !(c.next = bs_alloc_array((size_t)p, sizeof *c.next)) ||
        !(c.waits_since = bs_zalloc_array((size_t)p, sizeof *c.waits_since)) ||
        !(c.parts = bs_zalloc_array(pairs ? pairs : 1, sizeof *c.parts))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory checking the GPU plan");
        goto error;
    }
    memset(c.waited_by, 0xff, events * sizeof *c.waited_by);
    memset(c.input_event, 0xff, ops * sizeof *c.input_event);
    memset(c.last_wait, 0xff, queues * sizeof *c.last_wait);
    for (int d = 0; d < p; d++)
        c.next[d] = prog->device_first[d];

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        rc = bs_fail(err, BS_ERR_INTERNAL, __VA_ARGS__);                                           \
        goto error;                                                                                \
    } while (0)
/* A command is formatted only when it fails: formatting every command in
 * advance cost half of a 12.8M-op dry run. */
#define CMD_FAIL(...)                                                                              \
    do {                                                                                           \
        bs_gpu_cmd_format(cmd, a, sizeof a);                                                       \
        FAIL(__VA_ARGS__);                                                                         \
    } while (0)

    for (size_t i = 0; i < plan->cmd_count; i++) {
        const bs_gpu_cmd *cmd = &plan->cmds[i];
        uint32_t q = cmd->queue;
        if (q >= queues)
            CMD_FAIL("GPU plan command %zu (%s): no such queue", i, a);
        int stage_queue = q < (uint32_t)p;
        switch (cmd->kind) {
        case BS_GPU_RECORD:
            if (cmd->event >= plan->event_count || c.recorded_after[cmd->event])
                CMD_FAIL("GPU plan command %zu (%s): event unknown or recorded twice", i, a);
            if (plan->event_queue[cmd->event] != q)
                CMD_FAIL("GPU plan command %zu (%s): event belongs to queue %u", i, a,
                         plan->event_queue[cmd->event]);
            c.recorded_after[cmd->event] = c.last_kernel[q] ? c.last_kernel[q] : UINT32_MAX;
            c.recorded_count[cmd->event] = c.last_count[q];
            break;
        case BS_GPU_WAIT:
            if (cmd->event >= plan->event_count || !c.recorded_after[cmd->event])
                CMD_FAIL("GPU plan command %zu (%s): waits for an event not recorded before it", i,
                         a);
            if (plan->event_queue[cmd->event] == q)
                CMD_FAIL("GPU plan command %zu (%s): waits for its own queue's event", i, a);
            c.waited_by[cmd->event] = q;
            c.last_wait[q] = cmd->event;
            if (stage_queue)
                c.waits_since[q]++;
            break;
        case BS_GPU_COPY: {
            if (stage_queue)
                CMD_FAIL("GPU plan command %zu (%s): copy on a stage queue", i, a);
            size_t l = q - (uint32_t)p;
            if (plan->link_src[l] != cmd->src || plan->link_dst[l] != cmd->dst)
                CMD_FAIL("GPU plan command %zu (%s): link %zu is %u -> %u", i, a, l,
                         plan->link_src[l], plan->link_dst[l]);
            if (cmd->op >= prog->op_count || cmd->consumer >= prog->op_count)
                CMD_FAIL("GPU plan command %zu (%s): producer or consumer out of range", i, a);
            uint32_t w = c.last_wait[q];
            if (w == NO_EVENT || c.recorded_after[w] == UINT32_MAX ||
                plan->event_queue[w] != cmd->src || cmd->op + 1 < c.recorded_after[w] ||
                cmd->op + 1 >= c.recorded_after[w] + c.recorded_count[w])
                CMD_FAIL("GPU plan command %zu (%s): not preceded by a wait for its producer", i,
                         a);
            const bs_op *from = &prog->ops[cmd->op], *to = &prog->ops[cmd->consumer];
            int fwd = from->kind == BS_OP_FORWARD;
            if (prog->stage_device[from->stage] != cmd->src ||
                prog->stage_device[to->stage] != cmd->dst || to->microbatch != from->microbatch ||
                to->stage != (fwd ? from->stage + 1 : from->stage - 1) ||
                (fwd ? to->kind != BS_OP_FORWARD
                     : (to->kind != BS_OP_BACKWARD && to->kind != BS_OP_INPUT_GRAD)))
                CMD_FAIL("GPU plan command %zu (%s): producer and consumer do not match", i, a);
            if (c.input_event[cmd->consumer] != NO_EVENT)
                CMD_FAIL("GPU plan command %zu (%s): second message for one consumer", i, a);
            c.input_event[cmd->consumer] = cmd->event;
            copies++;
            break;
        }
        case BS_GPU_KERNEL: {
            if (!stage_queue)
                CMD_FAIL("GPU plan command %zu (%s): kernel on a copy queue", i, a);
            if (c.next[q] >= prog->device_first[q + 1] || cmd->op != c.next[q])
                CMD_FAIL("GPU plan command %zu (%s): device %u's next op is position %zu", i, a, q,
                         c.next[q] - prog->device_first[q]);
            int pair_op = (prog->ops[cmd->op].reserved & BS_OP_OVERLAP_NEXT) &&
                          cmd->op + 1 < prog->device_first[q + 1];
            if (cmd->ops != (pair_op ? 2 : 1))
                CMD_FAIL("GPU plan command %zu (%s): covers %u ops, the program says %d", i, a,
                         cmd->ops, pair_op ? 2 : 1);
            for (uint32_t k = cmd->op; k < cmd->op + cmd->ops; k++) {
                const bs_op *op = &prog->ops[k];
                if (op->kind == BS_OP_OPTIMIZER && p > 1 && c.waits_since[q] < (size_t)p - 1)
                    CMD_FAIL("GPU plan command %zu (%s): optimizer without waiting for every "
                             "device",
                             i, a);
                uint32_t need = c.input_event[k];
                if (need != NO_EVENT && c.waited_by[need] != q)
                    CMD_FAIL("GPU plan command %zu (%s): runs without waiting for its message", i,
                             a);
                int remote_input =
                    (op->kind == BS_OP_FORWARD && op->stage > 0 &&
                     prog->stage_device[op->stage - 1] != q) ||
                    ((op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) &&
                     op->stage + 1 < prog->stages && prog->stage_device[op->stage + 1] != q);
                if (remote_input && need == NO_EVENT)
                    CMD_FAIL("GPU plan command %zu (%s): its message was never copied", i, a);
            }
            c.last_kernel[q] = cmd->op + 1;
            c.last_count[q] = cmd->ops;
            c.waits_since[q] = 0;
            c.next[q] += cmd->ops;
            break;
        }
        case BS_GPU_ALLOC:
        case BS_GPU_FREE: {
            if (!stage_queue || cmd->op >= prog->op_count || cmd->part > BS_GPU_PART_KEPT)
                CMD_FAIL("GPU plan command %zu (%s): misplaced", i, a);
            const bs_op *op = &prog->ops[cmd->op];
            size_t pair = (size_t)op->stage * m + op->microbatch;
            uint8_t bit = (uint8_t)(1u << cmd->part);
            if (cmd->kind == BS_GPU_ALLOC) {
                /* Before its forward's kernel: the queue's next one. */
                int in_next =
                    cmd->op == c.next[q] || (cmd->op == c.next[q] + 1 &&
                                             (prog->ops[c.next[q]].reserved & BS_OP_OVERLAP_NEXT));
                if (op->kind != BS_OP_FORWARD || !in_next || (c.parts[pair] & bit))
                    CMD_FAIL("GPU plan command %zu (%s): alloc not right before a first forward", i,
                             a);
                c.parts[pair] |= bit;
            } else {
                if (!c.last_kernel[q] || cmd->op + 1 < c.last_kernel[q] ||
                    cmd->op + 1 >= c.last_kernel[q] + c.last_count[q] || !(c.parts[pair] & bit) ||
                    !frees_part(op->kind, cmd->part))
                    CMD_FAIL("GPU plan command %zu (%s): free not right after the op that ends the "
                             "activation",
                             i, a);
                c.parts[pair] &= (uint8_t)~bit;
            }
            break;
        }
        default:
            FAIL("GPU plan command %zu: unknown kind %u", i, cmd->kind);
        }
    }
    for (int d = 0; d < p; d++)
        if (c.next[d] != prog->device_first[d + 1])
            FAIL("GPU plan: device %d issues %zu of its %zu ops", d,
                 c.next[d] - prog->device_first[d],
                 prog->device_first[d + 1] - prog->device_first[d]);
    for (size_t k = 0; k < pairs; k++)
        if (c.parts[k])
            FAIL("GPU plan: activation of stage %zu, micro-batch %zu is never freed", k / m, k % m);
    expected_messages(prog, &want_copies);
    if (copies != want_copies)
        FAIL("GPU plan: %zu copies for %zu messages", copies, want_copies);
#undef CMD_FAIL
#undef FAIL
error:
    bs_free(c.recorded_after);
    bs_free(c.recorded_count);
    bs_free(c.waited_by);
    bs_free(c.input_event);
    bs_free(c.last_kernel);
    bs_free(c.last_count);
    bs_free(c.last_wait);
    bs_free(c.next);
    bs_free(c.waits_since);
    bs_free(c.parts);
    return rc;
}
