/*
 * validate.c - the schedule validator: every program passes here before it
 * is simulated.
 *
 * Two passes over the flat op array:
 *  1. Structure. Scanning each device's list in order, every op must belong
 *     to a stage the device owns; each (stage, micro-batch) pair gets exactly
 *     one forward, then exactly one backward, or one input-gradient op
 *     followed by one weight-gradient op; forward-only programs have no
 *     backward at all. Optimizer ops must appear on every device in the same
 *     iteration order.
 *  2. Feasibility. An untimed run of the dependency rules (the same ones the
 *     engine applies with times): a device advances while its next op's
 *     inputs exist. If devices remain with ops but none can move, the program
 *     deadlocks, and the message names each blocked op, what it waits for and
 *     the cycle of waits.
 * Both passes use one byte of flags per (stage, micro-batch) pair, laid out
 * device by device (a device's chunks side by side for each micro-batch), so
 * that the structure pass, which scans one device's list at a time, reads
 * and writes its flags in order rather than a cache line per op.
 *
 * Decode programs (BS_PROGRAM_DECODE_LOOP): an item's one forward-like op
 * is its prefill forward (items below per_iteration) or its decode step
 * (the others); the last stage's output of item i is stage 0's input of
 * item i + per_iteration, in both passes.
 *
 * An overlapped pair (BS_OP_OVERLAP_NEXT on the first op) must be one
 * forward and one backward or input gradient of different (stage,
 * micro-batch) pairs; it moves only when both of its inputs are present,
 * exactly as the engine runs it.
 */
#include "internal.h"

#include <string.h>

enum {
    SEEN_F = 1,
    SEEN_B = 2,
    SEEN_I = 4,
    SEEN_W = 8,
    HAVE_FIN = 16, /* forward input present at the stage's device */
    HAVE_GIN = 32  /* gradient input present */
};

/* Where the flags of (stage, micro-batch) live: base[stage] + mb * stride[stage]. */
typedef struct pair_layout {
    size_t *base;     /* [stages]: micro-batches * chunks of earlier devices + the chunk's rank */
    uint32_t *stride; /* [stages]: chunks on the stage's device */
} pair_layout;

static inline size_t slot(const pair_layout *L, unsigned stage, uint32_t microbatch)
{
    return L->base[stage] + (size_t)microbatch * L->stride[stage];
}

static int layout_init(pair_layout *L, const bs_program *prog)
{
    size_t p = (size_t)prog->devices, stages = (size_t)prog->stages;
    size_t *before = bs_zalloc_array(p + 1, sizeof *before);
    L->base = bs_alloc_array(stages, sizeof *L->base);
    L->stride = bs_zalloc_array(stages, sizeof *L->stride);
    if (!before || !L->base || !L->stride) {
        bs_free(before);
        return -1;
    }
    /* before[d + 1] counts device d's chunks, then becomes a prefix sum. */
    for (size_t s = 0; s < stages; s++)
        L->base[s] = before[prog->stage_device[s] + 1]++;
    for (size_t s = 0; s < stages; s++)
        L->stride[s] = (uint32_t)before[prog->stage_device[s] + 1];
    for (size_t d = 0; d < p; d++)
        before[d + 1] += before[d];
    for (size_t s = 0; s < stages; s++)
        L->base[s] += before[prog->stage_device[s]] * prog->microbatches;
    bs_free(before);
    return 0;
}

static void layout_free(pair_layout *L)
{
    bs_free(L->base);
    bs_free(L->stride);
}

static int is_backward(const bs_op *op)
{
    return op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD;
}

/* What is wrong with the overlapped pair that starts at ops[i] on device d,
 * or NULL. */
static const char *overlap_problem(const bs_program *prog, int d, size_t i)
{
    const bs_op *op = &prog->ops[i], *next = op + 1;
    if (i + 1 >= prog->device_first[d + 1])
        return "overlapped with nothing: it is the device's last op";
    if (next->reserved & BS_OP_OVERLAP_NEXT)
        return "overlapped with an op that is itself overlapped with the next; a pair holds two "
               "ops";
    if (!((op->kind == BS_OP_FORWARD && is_backward(next)) ||
          (is_backward(op) && next->kind == BS_OP_FORWARD)))
        return "an overlapped pair must be one forward and one backward (or input gradient)";
    if (op->stage == next->stage && op->microbatch == next->microbatch)
        return "an overlapped pair cannot hold the forward and backward of one stage and "
               "micro-batch";
    return NULL;
}

static int structure(const bs_program *prog, const pair_layout *L, uint8_t *flags, bs_error *err)
{
    size_t m = prog->microbatches;
    char a[48];
    size_t opt_count = (size_t)-1;
    for (int d = 0; d < prog->devices; d++) {
        size_t seen_opt = 0;
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            const bs_op *op = &prog->ops[i];
            size_t pos = i - prog->device_first[d];
            if (op->kind == BS_OP_OPTIMIZER) {
                if (op->microbatch != seen_opt)
                    return bs_fail(err, BS_ERR_INVALID,
                                   "device %d, position %zu: optimizer op for iteration %u, "
                                   "expected iteration %zu",
                                   d, pos, op->microbatch, seen_opt);
                seen_opt++;
                continue;
            }
            if (op->kind > BS_OP_DECODE || op->stage >= prog->stages || op->microbatch >= m)
                return bs_fail(err, BS_ERR_INVALID,
                               "device %d, position %zu: op %s is out of range (%d stages, %zu "
                               "micro-batches)",
                               d, pos, bs_op_format(op, a, sizeof a), prog->stages, m);
            if (prog->stage_device[op->stage] != d)
                return bs_fail(err, BS_ERR_INVALID,
                               "device %d, position %zu: %s belongs to stage %u, which is placed "
                               "on device %u",
                               d, pos, bs_op_format(op, a, sizeof a), op->stage,
                               prog->stage_device[op->stage]);
            uint8_t *f = &flags[slot(L, op->stage, op->microbatch)];
            const char *problem = NULL;
            if (op->reserved & ~BS_OP_OVERLAP_NEXT)
                problem = "unknown op flags";
            else if (op->reserved & BS_OP_OVERLAP_NEXT)
                problem = overlap_problem(prog, d, i);
            if (problem)
                return bs_fail(err, BS_ERR_INVALID, "device %d, position %zu: %s: %s", d, pos,
                               bs_op_format(op, a, sizeof a), problem);
            int first_token = op->microbatch < prog->per_iteration;
            switch (op->kind) {
            case BS_OP_FORWARD:
                if (*f & SEEN_F)
                    problem = "second forward of this micro-batch";
                else if ((prog->flags & BS_PROGRAM_DECODE_LOOP) && !first_token)
                    problem = "a forward of a later token; a decode program runs decode steps "
                              "after the prefill";
                *f |= SEEN_F;
                break;
            case BS_OP_DECODE:
                if (!(prog->flags & BS_PROGRAM_DECODE_LOOP))
                    problem = "decode step in a program without the decode loop";
                else if (first_token)
                    problem = "decode step of the first token, which the prefill produces";
                else if (*f & SEEN_F)
                    problem = "second decode step of this item";
                *f |= SEEN_F;
                break;
            case BS_OP_BACKWARD:
            case BS_OP_INPUT_GRAD:
                if (prog->flags & BS_PROGRAM_FORWARD_ONLY)
                    problem = "backward in a forward-only program";
                else if (!(*f & SEEN_F))
                    problem = "backward before its forward on this device";
                else if (*f & (SEEN_B | SEEN_I))
                    problem = "second backward of this micro-batch";
                *f |= op->kind == BS_OP_BACKWARD ? SEEN_B : SEEN_I;
                break;
            case BS_OP_WEIGHT_GRAD:
                if (!(*f & SEEN_I))
                    problem = "weight gradient before its input gradient on this device";
                else if (*f & SEEN_W)
                    problem = "second weight gradient of this micro-batch";
                *f |= SEEN_W;
                break;
            }
            if (problem)
                return bs_fail(err, BS_ERR_INVALID, "device %d, position %zu: %s: %s", d, pos,
                               bs_op_format(op, a, sizeof a), problem);
        }
        if (opt_count == (size_t)-1)
            opt_count = seen_opt;
        else if (seen_opt != opt_count)
            return bs_fail(err, BS_ERR_INVALID, "device %d has %zu optimizer ops, device 0 has %zu",
                           d, seen_opt, opt_count);
    }
    int want_backward = !(prog->flags & BS_PROGRAM_FORWARD_ONLY);
    for (size_t s = 0; s < (size_t)prog->stages; s++) {
        for (size_t mb = 0; mb < m; mb++) {
            uint8_t f = flags[slot(L, (unsigned)s, (uint32_t)mb)];
            const char *missing = NULL;
            if (!(f & SEEN_F))
                missing = "forward";
            else if (want_backward && !(f & (SEEN_B | SEEN_I)))
                missing = "backward";
            else if ((f & SEEN_I) && !(f & SEEN_W))
                missing = "weight gradient";
            if (missing)
                return bs_fail(err, BS_ERR_INVALID,
                               "stage %zu, micro-batch %zu: no %s op on device %u", s, mb, missing,
                               prog->stage_device[s]);
        }
    }
    return BS_OK;
}

/* The op that must finish before `op` can start, on another device; returns
 * 0 when op waits for nothing but its own device (or the barrier). */
static int producer_of(const bs_program *prog, const pair_layout *L, const bs_op *op,
                       const uint8_t *flags, bs_op *producer)
{
    int last = prog->stages - 1;
    if ((op->kind == BS_OP_FORWARD || op->kind == BS_OP_DECODE) && op->stage > 0) {
        *producer = (bs_op){op->microbatch, (uint16_t)(op->stage - 1), op->kind, 0};
        return 1;
    }
    if (op->kind == BS_OP_DECODE) { /* stage 0: the previous token, looped back */
        uint32_t prev = op->microbatch - prog->per_iteration;
        *producer = (bs_op){prev, (uint16_t)last,
                            prev < prog->per_iteration ? BS_OP_FORWARD : BS_OP_DECODE, 0};
        return 1;
    }
    if ((op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) && op->stage < last) {
        /* Name the producer by the kind the structure pass saw for it. */
        uint8_t seen = flags[slot(L, op->stage + 1u, op->microbatch)];
        *producer = (bs_op){op->microbatch, (uint16_t)(op->stage + 1),
                            (seen & SEEN_I) ? BS_OP_INPUT_GRAD : BS_OP_BACKWARD, 0};
        return 1;
    }
    return 0;
}

static int ready(const bs_program *prog, const pair_layout *L, const bs_op *op,
                 const uint8_t *flags)
{
    switch (op->kind) {
    case BS_OP_FORWARD:
        return op->stage == 0 || (flags[slot(L, op->stage, op->microbatch)] & HAVE_FIN);
    case BS_OP_DECODE:
        return (flags[slot(L, op->stage, op->microbatch)] & HAVE_FIN) != 0;
    case BS_OP_BACKWARD:
    case BS_OP_INPUT_GRAD:
        return op->stage == prog->stages - 1 ||
               (flags[slot(L, op->stage, op->microbatch)] & HAVE_GIN);
    default:
        return 1; /* weight gradient follows its input gradient on the same device */
    }
}

/* The op a blocked device waits on: in an overlapped pair, the one whose
 * input is missing. */
static size_t waiting_op(const bs_program *prog, const pair_layout *L, size_t at,
                         const uint8_t *flags)
{
    const bs_op *op = &prog->ops[at];
    if ((op->reserved & BS_OP_OVERLAP_NEXT) && ready(prog, L, op, flags))
        return at + 1;
    return at;
}

static int deadlock_report(const bs_program *prog, const pair_layout *L, const size_t *next,
                           const uint8_t *flags, bs_error *err)
{
    char msg[sizeof err->message];
    size_t n = 0, listed = 0;
    char a[48], b[48];
    int first_stuck = -1;
    n += (size_t)snprintf(msg + n, sizeof msg - n, "deadlock: no device can proceed;");
    for (int d = 0; d < prog->devices; d++) {
        if (next[d] >= prog->device_first[d + 1])
            continue;
        if (first_stuck < 0)
            first_stuck = d;
        if (listed++ >= 6)
            continue;
        const bs_op *op = &prog->ops[waiting_op(prog, L, next[d], flags)];
        bs_op p;
        if (n < sizeof msg) {
            if (producer_of(prog, L, op, flags, &p))
                n +=
                    (size_t)snprintf(msg + n, sizeof msg - n,
                                     " device %d at position %zu: %s waits for %s on device %u;", d,
                                     next[d] - prog->device_first[d], bs_op_format(op, a, sizeof a),
                                     bs_op_format(&p, b, sizeof b), prog->stage_device[p.stage]);
            else
                n += (size_t)snprintf(msg + n, sizeof msg - n,
                                      " device %d at position %zu: %s waits for the other devices;",
                                      d, next[d] - prog->device_first[d],
                                      bs_op_format(op, a, sizeof a));
        }
    }
    /* Follow waits from the first blocked device until a device repeats. */
    if (first_stuck >= 0 && n < sizeof msg) {
        int order[64], count = 0, d = first_stuck;
        for (int step = 0; step < prog->devices && step < 64; step++) {
            const bs_op *op = &prog->ops[waiting_op(prog, L, next[d], flags)];
            bs_op p;
            if (!producer_of(prog, L, op, flags, &p))
                break;
            order[count++] = d;
            int to = prog->stage_device[p.stage];
            int seen_at = -1;
            for (int k = 0; k < count; k++)
                if (order[k] == to)
                    seen_at = k;
            if (seen_at >= 0) {
                n += (size_t)snprintf(msg + n, sizeof msg - n, " cycle:");
                for (int k = seen_at; k < count && n < sizeof msg; k++)
                    n += (size_t)snprintf(
                        msg + n, sizeof msg - n, " %s on device %d ->",
                        bs_op_format(&prog->ops[waiting_op(prog, L, next[order[k]], flags)], a,
                                     sizeof a),
                        order[k]);
                if (n < sizeof msg)
                    snprintf(
                        msg + n, sizeof msg - n, " %s on device %d",
                        bs_op_format(&prog->ops[waiting_op(prog, L, next[to], flags)], a, sizeof a),
                        to);
                break;
            }
            if (next[to] >= prog->device_first[to + 1])
                break;
            d = to;
        }
    }
    return bs_fail(err, BS_ERR_DEADLOCK, "%s", msg);
}

static int feasibility(const bs_program *prog, const pair_layout *L, uint8_t *flags, bs_error *err)
{
    int p = prog->devices, rc = BS_OK;
    size_t *next = bs_alloc_array((size_t)p, sizeof *next);
    int *stack = bs_alloc_array((size_t)p, sizeof *stack);
    uint8_t *queued = bs_zalloc_array((size_t)p, 1);
    if (!next || !stack || !queued) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory validating the schedule");
        goto error;
    }
    int top = 0, at_barrier = 0;
    for (int d = 0; d < p; d++) {
        next[d] = prog->device_first[d];
        stack[top++] = d;
        queued[d] = 1;
    }
    while (top > 0) {
        int d = stack[--top];
        queued[d] = 0;
        while (next[d] < prog->device_first[d + 1]) {
            const bs_op *op = &prog->ops[next[d]];
            if (op->kind == BS_OP_OPTIMIZER) {
                /* Count each device once at the barrier; when all are in,
                 * release them together. */
                if (queued[d] != 2) {
                    queued[d] = 2;
                    at_barrier++;
                }
                if (at_barrier < p)
                    break;
                at_barrier = 0;
                for (int k = 0; k < p; k++) {
                    next[k]++;
                    queued[k] = 1;
                    stack[k] = k;
                }
                top = p;
                break;
            }
            size_t count = (op->reserved & BS_OP_OVERLAP_NEXT) ? 2 : 1;
            if (!ready(prog, L, op, flags) || (count == 2 && !ready(prog, L, op + 1, flags)))
                break;
            for (size_t k = 0; k < count; k++) {
                const bs_op *o = op + k;
                int wake = -1;
                int forward_like = o->kind == BS_OP_FORWARD || o->kind == BS_OP_DECODE;
                if (forward_like && o->stage + 1 < prog->stages) {
                    flags[slot(L, o->stage + 1u, o->microbatch)] |= HAVE_FIN;
                    wake = prog->stage_device[o->stage + 1];
                } else if (forward_like && (prog->flags & BS_PROGRAM_DECODE_LOOP) &&
                           (size_t)o->microbatch + prog->per_iteration < prog->microbatches) {
                    flags[slot(L, 0, o->microbatch + prog->per_iteration)] |= HAVE_FIN;
                    wake = prog->stage_device[0];
                } else if (is_backward(o) && o->stage > 0) {
                    flags[slot(L, o->stage - 1u, o->microbatch)] |= HAVE_GIN;
                    wake = prog->stage_device[o->stage - 1];
                }
                if (wake >= 0 && wake != d && !queued[wake]) {
                    queued[wake] = 1;
                    stack[top++] = wake;
                }
            }
            next[d] += count;
        }
    }
    for (int d = 0; d < p; d++)
        if (next[d] < prog->device_first[d + 1]) {
            rc = deadlock_report(prog, L, next, flags, err);
            break;
        }
error:
    bs_free(next);
    bs_free(stack);
    bs_free(queued);
    return rc;
}

/* Runs the structure pass, and the feasibility pass when asked. */
static int validate(const bs_program *prog, int feasible_too, bs_error *err)
{
    size_t pairs = (size_t)prog->stages * prog->microbatches;
    pair_layout L = {0};
    uint8_t *flags = bs_zalloc_array(pairs, 1);
    int rc = BS_OK;
    if (!flags || layout_init(&L, prog)) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory validating the schedule");
        goto error;
    }
    rc = structure(prog, &L, flags, err);
    if (rc == BS_OK && feasible_too)
        rc = feasibility(prog, &L, flags, err);
error:
    layout_free(&L);
    bs_free(flags);
    return rc;
}

int bs_program_validate(const bs_program *prog, bs_error *err)
{
    return validate(prog, 1, err);
}

int bs_program_validate_structure(const bs_program *prog, bs_error *err)
{
    return validate(prog, 0, err);
}
