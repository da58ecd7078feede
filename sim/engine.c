/*
 * engine.c - where events are processed: the discrete-event simulation.
 *
 * Model. Each device runs its op list strictly in order. An op starts when
 * its device is free and its input has arrived:
 *   - F(s,m) needs the output of F(s-1,m) (stage 0 reads its own data);
 *   - B(s,m) or I(s,m) needs the gradient from stage s+1 (the last stage
 *     needs only its own forward, which precedes it on the same device);
 *   - W(s,m) needs I(s,m), which precedes it on the same device;
 *   - a decode step D(s,i) needs D(s-1,i) like a forward, and at stage 0
 *     the last stage's output of item i - M, the token it continues
 *     (BS_PROGRAM_DECODE_LOOP); its duration may grow with the context;
 *   - an optimizer op is a barrier: it starts on every device at once, when
 *     the last device reaches it (the flush), and lasts costs.optimizer.
 * Data between stages on one device is free. Between devices it is a
 * message of latency + bytes / bandwidth; each directed link carries one
 * message at a time, first come first served, and no device computes for it.
 *
 * Order of processing. No event queue is needed. A device's op starts at
 * max(device free, input arrival), and both are known as soon as the
 * producer has been processed, whatever else happens in between. The only
 * shared state with an order is a link's queue, and every message on the
 * directed link a->b is sent by device a, in a's program order, which is its
 * time order. So the engine runs a worklist: it advances one device as far
 * as its inputs allow, and when an output lands at a device that was waiting
 * for it, that device goes back on the list. The result is the same as a
 * time-ordered event loop (first come first served on every link, the same
 * ties), it does not depend on the order devices are picked, and each op
 * costs O(1).
 *
 * Overlapped pairs. An op flagged BS_OP_OVERLAP_NEXT runs together with the
 * next op on its device (a forward and a backward, DualPipe style): the pair
 * starts when the device is free and both inputs are in, both ops get the
 * same start and end, (duration + duration) * costs.overlap apart, and both
 * send their outputs at that end, the first op's first.
 *
 * Gradient collectives (data parallelism, cfg->device_plan). Each device
 * has a communication stream beside its compute. When the op that
 * completes a chunk's gradients for an iteration finishes (its last
 * backward or weight gradient; without overlap_grad_reduce, the device's
 * last one of the iteration), the chunk's collective is queued on that
 * stream; compute goes on, and the next optimizer barrier waits for the
 * stream. With overlap, the chunk's gradients become ready in `buckets`
 * equal parts during that last op, and the buckets' collectives run one
 * after another as they are ready: with the op running from a to b
 * (B = b - a), the stream free at f and the whole collective taking C, the
 * last bucket ends at max(f + C, a + B/n + C, b + C/n) (the latest of the
 * two extreme buckets; the bound is linear in the bucket index). The
 * triggers are found once per run, sorted by op index, and each device
 * walks its own with a cursor, so every op still costs O(1). Under ZeRO-2/3
 * (sync_per_microbatch) every backward or weight gradient triggers its
 * chunk's reduce-scatter.
 *
 * Invariants: ops are validated (bs_program_validate) before they get here,
 * so every dependency is met eventually; if the worklist still empties with
 * ops left, that is reported as a deadlock, never looped on.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bs_engine_scratch {
    double *fin, *gin; /* [stages * microbatches]: input arrival, INFINITY = not yet */
    size_t pairs_capacity;
    uint32_t *fmsg, *gmsg; /* message index per pair, only when recording */
    size_t msg_pairs_capacity;
    double *device_free;
    size_t *next;
    uint8_t *blocked;
    int *worklist;
    int32_t *fwd_link, *bwd_link; /* [stages]: link index for s->s+1, s+1->s; -1 local */
    int32_t loop_link;            /* decode: last stage -> stage 0; -1 local */
    double *link_free;            /* [2 * stages]: when each link is free */
    /* [stages]: the message across boundary s -> s+1 (either way) holds
     * its link for hold[s] and arrives delay[s] after it starts. */
    double *hold, *delay;
    uint32_t *link_keys; /* hash table of (src << 16 | dst) */
    int32_t *link_ids;
    size_t link_table_size; /* a power of two >= 4 * stages */
    int device_capacity, stage_capacity;
    /* Gradient collectives: the ops that trigger them, in op order, and a
     * cursor per device; the communication stream's free time. */
    struct trigger {
        size_t op;
        uint32_t iteration;
        uint16_t stage;
    } * triggers;
    size_t trigger_capacity;
    size_t *cursor, *cursor_end; /* [devices] into triggers */
    double *comm_free;           /* [devices] */
    size_t *last_grad;           /* [stages * iterations] */
    size_t last_grad_capacity;
    int comm_capacity;
};

enum { RUNNING = 0, WAITING_INPUT = 1, WAITING_BARRIER = 2 };

/* Ops ahead of the current one whose times are prefetched (two cache lines
 * of bs_op_time); op records go twice as far, the same distance in bytes. */
#define PREFETCH_AHEAD 8

typedef struct engine {
    const bs_program *prog;
    struct bs_engine_scratch *x;
    bs_timeline *tl;
    bs_chunk_costs costs;
    double message_time, message_bytes, overlap;
    /* Decode messages (a step's output, a token looped back to stage 0):
     * arrival delay and link hold, on every link alike (no node links). */
    double decode_message_time, decode_message_hold, decode_message_bytes;
    int record, worklist_size, at_barrier, update_per_backward, blocking;
    double overhead; /* costs.overhead, added to every compute op */
    /* NULL, or one factor per program op: op i lasts its configured time
     * times op_scale[i] (bs_engine_run_scaled). */
    const double *op_scale;
    double barrier_time;
    size_t m;                         /* micro-batches in the program */
    const bs_device_plan *dp;         /* gradient collectives, NULL when none */
    size_t rows_ready, rows_per_fill; /* per-pair rows (micro-batches) initialised so far */
    /* Decode: the loop back feeds item i + loop_stride at stage 0 (0: no
     * loop); a step's context is prompt_tokens + item / loop_stride. */
    uint32_t loop_stride;
    double inverse_stride; /* 1 / loop_stride */
    int decode_grows;      /* decode steps have context-dependent costs */
    double prompt_tokens;
} engine;

/* ------------------------------------------------------------- scratch */

static void scratch_free(struct bs_engine_scratch *x)
{
    if (!x)
        return;
    bs_free(x->fin);
    bs_free(x->gin);
    bs_free(x->fmsg);
    bs_free(x->gmsg);
    bs_free(x->device_free);
    bs_free(x->next);
    bs_free(x->blocked);
    bs_free(x->worklist);
    bs_free(x->fwd_link);
    bs_free(x->bwd_link);
    bs_free(x->link_free);
    bs_free(x->hold);
    bs_free(x->delay);
    bs_free(x->link_keys);
    bs_free(x->link_ids);
    bs_free(x->triggers);
    bs_free(x->cursor);
    bs_free(x->cursor_end);
    bs_free(x->comm_free);
    bs_free(x->last_grad);
    bs_free(x);
}

static int scratch_reserve(struct bs_engine_scratch *x, const bs_program *prog, int record)
{
    size_t pairs = (size_t)prog->stages * prog->microbatches;
    if (pairs > x->pairs_capacity) {
        if (bs_realloc_array((void **)&x->fin, pairs, sizeof *x->fin) ||
            bs_realloc_array((void **)&x->gin, pairs, sizeof *x->gin))
            return -1;
        x->pairs_capacity = pairs;
    }
    if (record && pairs > x->msg_pairs_capacity) {
        if (bs_realloc_array((void **)&x->fmsg, pairs, sizeof *x->fmsg) ||
            bs_realloc_array((void **)&x->gmsg, pairs, sizeof *x->gmsg))
            return -1;
        x->msg_pairs_capacity = pairs;
    }
    if (prog->devices > x->device_capacity) {
        size_t p = (size_t)prog->devices;
        if (bs_realloc_array((void **)&x->device_free, p, sizeof *x->device_free) ||
            bs_realloc_array((void **)&x->next, p, sizeof *x->next) ||
            bs_realloc_array((void **)&x->blocked, p, sizeof *x->blocked) ||
            bs_realloc_array((void **)&x->worklist, p, sizeof *x->worklist))
            return -1;
        x->device_capacity = prog->devices;
    }
    if (prog->stages > x->stage_capacity) {
        size_t s = (size_t)prog->stages, table = 16;
        while (table < 4 * s)
            table *= 2;
        if (bs_realloc_array((void **)&x->fwd_link, s, sizeof *x->fwd_link) ||
            bs_realloc_array((void **)&x->bwd_link, s, sizeof *x->bwd_link) ||
            bs_realloc_array((void **)&x->link_free, 2 * s, sizeof *x->link_free) ||
            bs_realloc_array((void **)&x->hold, s, sizeof *x->hold) ||
            bs_realloc_array((void **)&x->delay, s, sizeof *x->delay) ||
            bs_realloc_array((void **)&x->link_keys, table, sizeof *x->link_keys) ||
            bs_realloc_array((void **)&x->link_ids, table, sizeof *x->link_ids))
            return -1;
        x->link_table_size = table;
        x->stage_capacity = prog->stages;
    }
    return 0;
}

/* The link index of the directed pair src -> dst, given a new one (*count,
 * counted up) the first time the pair is seen. */
static int32_t link_of(struct bs_engine_scratch *x, size_t mask, int src, int dst, int32_t *count)
{
    uint32_t key = (uint32_t)src << 16 | (uint32_t)dst;
    size_t h = (key * 2654435761u) & mask;
    while (x->link_keys[h] != UINT32_MAX && x->link_keys[h] != key)
        h = (h + 1) & mask;
    if (x->link_keys[h] == UINT32_MAX) {
        x->link_keys[h] = key;
        x->link_ids[h] = (*count)++;
    }
    return x->link_ids[h];
}

/* Gives each directed device pair that carries messages one link index, so
 * that all stage boundaries crossing the same pair share one queue. An
 * open-addressing table keyed by (src, dst) keeps this linear in the stages. */
static void assign_links(engine *e)
{
    const bs_program *prog = e->prog;
    struct bs_engine_scratch *x = e->x;
    size_t mask = x->link_table_size - 1;
    int32_t count = 0;
    for (size_t k = 0; k <= mask; k++)
        x->link_keys[k] = UINT32_MAX;
    for (int dir = 0; dir < 2; dir++) {
        for (int s = 0; s + 1 < prog->stages; s++) {
            int a = prog->stage_device[s], b = prog->stage_device[s + 1];
            int src = dir == 0 ? a : b, dst = dir == 0 ? b : a;
            (dir == 0 ? x->fwd_link : x->bwd_link)[s] =
                src != dst ? link_of(x, mask, src, dst, &count) : -1;
        }
    }
    /* The decode loop back shares the directed pair's link with any stage
     * boundary that crosses the same pair. */
    x->loop_link = -1;
    int last_dev = prog->stage_device[prog->stages - 1], first_dev = prog->stage_device[0];
    if (e->loop_stride && last_dev != first_dev)
        x->loop_link = link_of(x, mask, last_dev, first_dev, &count);
    for (int32_t k = 0; k < count; k++)
        x->link_free[k] = 0.0;
}

/* --------------------------------------------------------- simulation */

/* The token an item belongs to, item / loop_stride, without a division
 * (which would cost about a third of a simulated op): the quotient estimated
 * in doubles is off by at most one for 32-bit items, then corrected. */
static inline uint32_t token_of(const engine *e, uint32_t item)
{
    uint32_t k = (uint32_t)((double)item * e->inverse_stride);
    uint64_t low = (uint64_t)k * e->loop_stride;
    if (low > item)
        k--;
    else if (low + e->loop_stride <= item)
        k++;
    return k;
}

/* The configured time of op, before any per-op scale. */
static double configured_duration(const engine *e, const bs_op *op)
{
    switch (op->kind) {
    case BS_OP_FORWARD:
        return e->costs.forward[op->stage] + e->overhead;
    case BS_OP_BACKWARD:
        return e->costs.backward[op->stage] + e->costs.weight[op->stage] + e->overhead +
               (e->update_per_backward ? e->costs.optimizer : 0.0);
    case BS_OP_INPUT_GRAD:
        return e->costs.backward[op->stage] + e->overhead;
    case BS_OP_WEIGHT_GRAD:
        return e->costs.weight[op->stage] + e->overhead;
    case BS_OP_DECODE:
        if (e->decode_grows) {
            /* Compute against memory traffic at this step's context. */
            double c = e->prompt_tokens + (double)token_of(e, op->microbatch);
            double compute = e->costs.decode[op->stage] + e->costs.decode_per_token[op->stage] * c;
            double memory =
                e->costs.decode_memory[op->stage] + e->costs.decode_memory_per_token[op->stage] * c;
            return (compute > memory ? compute : memory) + e->overhead;
        }
        return e->costs.decode[op->stage] + e->overhead;
    default:
        return e->costs.optimizer;
    }
}

static double op_duration(const engine *e, const bs_op *op)
{
    double t = configured_duration(e, op);
    return e->op_scale ? t * e->op_scale[op - e->prog->ops] : t;
}

/* Sends a message across boundary `boundary` (chunks s and s+1) on link
 * `link` at time t; returns its arrival time. A decode step's output and a
 * token looped back to stage 0 are decode messages (costs from
 * cfg->decode_message_bytes; the boundary is then not read). */
static double send(engine *e, int32_t link, int boundary, double t, size_t producer, int src,
                   int dst, uint32_t *msg_slot, int decode)
{
    double start = t > e->x->link_free[link] ? t : e->x->link_free[link];
    double arrive = start + (decode ? e->decode_message_time : e->x->delay[boundary]);
    e->x->link_free[link] = start + (decode ? e->decode_message_hold : e->x->hold[boundary]);
    /* network.blocking: the sender computes nothing until it has arrived. */
    if (e->blocking && arrive > e->x->device_free[src])
        e->x->device_free[src] = arrive;
    e->tl->messages_sent++;
    e->tl->message_bytes_sent += decode ? e->decode_message_bytes : e->message_bytes;
    if (e->record) {
        bs_timeline *tl = e->tl;
        bs_message *msg = &tl->messages[tl->message_count];
        *msg = (bs_message){t,          start,         arrive,       (uint32_t)producer,
                            UINT32_MAX, (uint16_t)src, (uint16_t)dst};
        *msg_slot = (uint32_t)tl->message_count++;
    }
    return arrive;
}

/* Puts a device that was waiting for an input back on the worklist. */
static void wake(engine *e, int d)
{
    if (e->x->blocked[d] == WAITING_INPUT) {
        e->x->blocked[d] = RUNNING;
        e->x->worklist[e->worklist_size++] = d;
    }
}

static void fill_rows(engine *e, uint32_t mb);

/* Queues every collective that op idx (already timed, on device d)
 * triggers on d's communication stream (see the top of the file). Kept out
 * of line: it runs once per chunk and iteration, finish_op_at once per op. */
__attribute__((noinline, cold)) static void launch_collectives(engine *e, int d, size_t idx)
{
    struct bs_engine_scratch *x = e->x;
    bs_timeline *tl = e->tl;
    double at = tl->times[idx].start, end = tl->times[idx].end;
    while (x->cursor[d] < x->cursor_end[d] && x->triggers[x->cursor[d]].op == idx) {
        const struct trigger *t = &x->triggers[x->cursor[d]++];
        double c = e->dp->chunk_sync_ms[t->stage], free_at = x->comm_free[d], start, finish;
        if (e->dp->overlap_grad_reduce) {
            double n = e->dp->chunk_buckets[t->stage], first = at + (end - at) / n;
            start = free_at > first ? free_at : first;
            finish = fmax(fmax(free_at + c, first + c), end + c / n);
        } else {
            start = free_at > end ? free_at : end;
            finish = start + c;
        }
        x->comm_free[d] = finish;
        tl->collectives[tl->collective_count++] =
            (bs_collective){start, finish, t->iteration, (uint16_t)d, t->stage};
    }
}

/* Records op idx on device d as running from `at` to `end` and sends its
 * output. */
static void finish_op_at(engine *e, int d, size_t idx, double at, double end)
{
    struct bs_engine_scratch *x = e->x;
    const bs_program *prog = e->prog;
    const bs_op *op = &prog->ops[idx];
    e->tl->times[idx] = (bs_op_time){at, end};
    /* Each device walks its own stretch of ops and times, so a run
     * interleaves 2 * P sequential streams: too many for the hardware
     * prefetcher. Fetch the device's next cache lines now; by the time the
     * device runs again (after the other devices' ops) they are in. (The
     * per-pair slots need no prefetch: fill_rows writes them shortly before
     * their first use.) */
    if (idx + 2 * PREFETCH_AHEAD < prog->op_count)
        __builtin_prefetch(&prog->ops[idx + 2 * PREFETCH_AHEAD], 0);
    if (idx + PREFETCH_AHEAD < prog->device_first[d + 1])
        __builtin_prefetch(&e->tl->times[idx + PREFETCH_AHEAD], 1);
    /* The device was free at most at `at` <= end when the op started, so
     * the maximum only matters for the second op of an overlapped pair,
     * whose partner may have held the device with a blocking send (send()
     * raises device_free to the arrival then). */
    if (!e->blocking || end > x->device_free[d])
        x->device_free[d] = end;
    x->next[d] = idx + 1;
    if (__builtin_expect(e->dp != NULL, 0) && x->cursor[d] < x->cursor_end[d] &&
        x->triggers[x->cursor[d]].op == idx)
        launch_collectives(e, d, idx);
    if ((op->kind == BS_OP_FORWARD || op->kind == BS_OP_DECODE) && op->stage + 1 < prog->stages) {
        size_t pair = bs_pair(prog, op->stage + 1u, op->microbatch);
        int32_t link = x->fwd_link[op->stage];
        int dst = prog->stage_device[op->stage + 1];
        x->fin[pair] = link < 0 ? end
                                : send(e, link, op->stage, end, idx, d, dst,
                                       e->record ? &x->fmsg[pair] : NULL, op->kind == BS_OP_DECODE);
        if (dst != d)
            wake(e, dst);
    } else if ((op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) && op->stage > 0) {
        size_t pair = bs_pair(prog, op->stage - 1u, op->microbatch);
        int32_t link = x->bwd_link[op->stage - 1];
        int dst = prog->stage_device[op->stage - 1];
        x->gin[pair] = link < 0 ? end
                                : send(e, link, op->stage - 1, end, idx, d, dst,
                                       e->record ? &x->gmsg[pair] : NULL, 0);
        if (dst != d)
            wake(e, dst);
    } else if (e->loop_stride && op->stage + 1 == prog->stages &&
               op->microbatch + (size_t)e->loop_stride < e->m) {
        /* The token goes back to stage 0 for the item's next decode step.
         * This is the one write to a row other than the op's own, so that
         * row is made ready first. */
        uint32_t next = op->microbatch + e->loop_stride;
        if (next >= e->rows_ready)
            fill_rows(e, next);
        size_t pair = bs_pair(prog, 0, next);
        int32_t link = x->loop_link;
        int dst = prog->stage_device[0];
        x->fin[pair] =
            link < 0 ? end
                     : send(e, link, 0, end, idx, d, dst, e->record ? &x->fmsg[pair] : NULL, 1);
        if (dst != d)
            wake(e, dst);
    }
}

static void finish_op(engine *e, int d, size_t idx, double at)
{
    finish_op_at(e, d, idx, at, at + op_duration(e, &e->prog->ops[idx]));
}

/* When the input of op idx is present at its device (0 when it needs none,
 * INFINITY while it has not arrived); *msg is the message that brings it. */
static double input_time(engine *e, size_t idx, uint32_t **msg)
{
    struct bs_engine_scratch *x = e->x;
    const bs_op *op = &e->prog->ops[idx];
    size_t pair = bs_pair(e->prog, op->stage, op->microbatch);
    *msg = NULL;
    switch (op->kind) {
    case BS_OP_DECODE: /* at stage 0 too: the loop back brings its token */
        *msg = e->record ? &x->fmsg[pair] : NULL;
        return x->fin[pair];
    case BS_OP_FORWARD:
        if (op->stage > 0) {
            *msg = e->record ? &x->fmsg[pair] : NULL;
            return x->fin[pair];
        }
        break;
    case BS_OP_BACKWARD:
    case BS_OP_INPUT_GRAD:
        if (op->stage + 1 < e->prog->stages) {
            *msg = e->record ? &x->gmsg[pair] : NULL;
            return x->gin[pair];
        }
        break;
    default:
        break;
    }
    return 0.0;
}

/* Marks the per-pair slots of micro-batches rows_ready .. mb (and a few
 * more) as empty. Filling them as the run reaches them, rather than all
 * before it, keeps the arrays out of memory traffic: a slot is written here
 * just before its first use and is still in the cache then. Every access to
 * a slot of micro-batch mb comes from an op of micro-batch mb (its input, or
 * the output it sends to the neighbouring stage), and advance() calls this
 * before such an op reads or writes anything. */
static void fill_rows(engine *e, uint32_t mb)
{
    struct bs_engine_scratch *x = e->x;
    size_t stages = (size_t)e->prog->stages;
    size_t to = (size_t)mb + e->rows_per_fill;
    if (to > e->m)
        to = e->m;
    size_t from_slot = e->rows_ready * stages, to_slot = to * stages;
    for (size_t i = from_slot; i < to_slot; i++)
        x->fin[i] = INFINITY;
    if (!(e->prog->flags & BS_PROGRAM_FORWARD_ONLY))
        for (size_t i = from_slot; i < to_slot; i++)
            x->gin[i] = INFINITY;
    if (e->record) {
        memset(x->fmsg + from_slot, 0xff, (to_slot - from_slot) * sizeof *x->fmsg);
        memset(x->gmsg + from_slot, 0xff, (to_slot - from_slot) * sizeof *x->gmsg);
    }
    e->rows_ready = to;
}

/* Counts device d in at the flush barrier; the last device in releases all
 * of them at the latest arrival time. Returns 1 when d may go on. */
static int arrive_at_barrier(engine *e, int d)
{
    struct bs_engine_scratch *x = e->x;
    x->blocked[d] = WAITING_BARRIER;
    if (x->device_free[d] > e->barrier_time)
        e->barrier_time = x->device_free[d];
    /* The step needs the reduced gradients. */
    if (e->dp && x->comm_free[d] > e->barrier_time)
        e->barrier_time = x->comm_free[d];
    if (++e->at_barrier < e->prog->devices)
        return 0;
    double at = e->barrier_time;
    e->at_barrier = 0;
    e->barrier_time = 0.0;
    for (int k = 0; k < e->prog->devices; k++) {
        x->blocked[k] = RUNNING;
        finish_op(e, k, x->next[k], at);
        if (k != d)
            x->worklist[e->worklist_size++] = k;
    }
    return 1;
}

/* Runs device d's ops until one lacks its input, the barrier holds it, or
 * its list ends. */
static void advance(engine *e, int d)
{
    struct bs_engine_scratch *x = e->x;
    const bs_program *prog = e->prog;
    size_t end_of_list = prog->device_first[d + 1];
    while (x->next[d] < end_of_list) {
        size_t idx = x->next[d];
        const bs_op *op = &prog->ops[idx];
        if (op->kind == BS_OP_OPTIMIZER) {
            if (!arrive_at_barrier(e, d))
                return;
            continue;
        }
        int overlapped = (op->reserved & BS_OP_OVERLAP_NEXT) != 0;
        uint32_t *msg = NULL, *msg2 = NULL;
        if (op->microbatch >= e->rows_ready)
            fill_rows(e, op->microbatch);
        if (overlapped && op[1].microbatch >= e->rows_ready)
            fill_rows(e, op[1].microbatch);
        double ready = input_time(e, idx, &msg);
        if (overlapped) {
            double second = input_time(e, idx + 1, &msg2);
            if (second > ready)
                ready = second;
        }
        if (ready == INFINITY) {
            x->blocked[d] = WAITING_INPUT;
            return;
        }
        if (msg && *msg != UINT32_MAX)
            e->tl->messages[*msg].consumer_op = (uint32_t)idx;
        if (msg2 && *msg2 != UINT32_MAX)
            e->tl->messages[*msg2].consumer_op = (uint32_t)idx + 1;
        double at = ready > x->device_free[d] ? ready : x->device_free[d];
        if (overlapped) {
            double end = at + (op_duration(e, op) + op_duration(e, op + 1)) * e->overlap;
            finish_op_at(e, d, idx, at, end);
            finish_op_at(e, d, idx + 1, at, end);
        } else {
            finish_op(e, d, idx, at);
        }
    }
}

void bs_timeline_init(bs_timeline *tl)
{
    memset(tl, 0, sizeof *tl);
}

void bs_timeline_free(bs_timeline *tl)
{
    bs_free(tl->times);
    bs_free(tl->messages);
    bs_free(tl->collectives);
    scratch_free(tl->scratch);
    bs_timeline_init(tl);
}

int bs_timeline_reserve(bs_timeline *tl, size_t ops)
{
    if (ops > tl->capacity) {
        if (bs_realloc_array((void **)&tl->times, ops, sizeof *tl->times))
            return -1;
        tl->capacity = ops;
    }
    return 0;
}

static int timeline_reserve(bs_timeline *tl, const bs_program *prog, int record)
{
    if (bs_timeline_reserve(tl, prog->op_count))
        return -1;
    /* At most one message per op. */
    if (record && prog->op_count > tl->message_capacity) {
        if (bs_realloc_array((void **)&tl->messages, prog->op_count, sizeof *tl->messages))
            return -1;
        tl->message_capacity = prog->op_count;
    }
    if (!tl->scratch && !(tl->scratch = bs_zalloc_array(1, sizeof *tl->scratch)))
        return -1;
    return scratch_reserve(tl->scratch, prog, record);
}

/* How long a message across each boundary holds its link and when it
 * arrives: latency + bytes / bandwidth of the pipeline link, or of the node
 * link where the model's topology says the boundary crosses nodes. With
 * latency_holds_link off, only the transfer serialises on the link. */
static void set_boundaries(engine *e, const bs_config *cfg, const bs_device_plan *dp)
{
    struct bs_engine_scratch *x = e->x;
    for (int s = 0; s < e->prog->stages; s++)
        bs_boundary_time(cfg, dp, s, &x->delay[s], &x->hold[s]);
}

static int by_op(const void *a, const void *b)
{
    const struct trigger *x = a, *y = b;
    if (x->op != y->op)
        return x->op < y->op ? -1 : 1;
    return x->stage < y->stage ? -1 : x->stage > y->stage;
}

/* Finds the op that triggers each chunk's collective in each iteration
 * (see the top of the file) and sets up the devices' cursors. Returns -1
 * when memory runs out. */
static int plan_collectives(engine *e, const bs_config *cfg)
{
    const bs_program *prog = e->prog;
    struct bs_engine_scratch *x = e->x;
    size_t iterations = (size_t)cfg->iterations, stages = (size_t)prog->stages;
    size_t p = (size_t)prog->devices, n = stages * iterations;
    if (n > x->trigger_capacity) {
        if (bs_realloc_array((void **)&x->triggers, n, sizeof *x->triggers))
            return -1;
        x->trigger_capacity = n;
    }
    if (n > x->last_grad_capacity) {
        if (bs_realloc_array((void **)&x->last_grad, n, sizeof *x->last_grad))
            return -1;
        x->last_grad_capacity = n;
    }
    if (prog->devices > x->comm_capacity) {
        if (bs_realloc_array((void **)&x->cursor, p, sizeof *x->cursor) ||
            bs_realloc_array((void **)&x->cursor_end, p, sizeof *x->cursor_end) ||
            bs_realloc_array((void **)&x->comm_free, p, sizeof *x->comm_free))
            return -1;
        x->comm_capacity = prog->devices;
    }
    if (n > e->tl->collective_capacity) {
        if (bs_realloc_array((void **)&e->tl->collectives, n, sizeof *e->tl->collectives))
            return -1;
        e->tl->collective_capacity = n;
    }
    for (size_t k = 0; k < n; k++)
        x->last_grad[k] = SIZE_MAX;
    /* Ops of a device are in its order, so the last write wins. */
    for (size_t i = 0; i < prog->op_count; i++) {
        const bs_op *op = &prog->ops[i];
        if (op->kind != BS_OP_BACKWARD && op->kind != BS_OP_WEIGHT_GRAD)
            continue;
        size_t it = op->microbatch / prog->per_iteration;
        if (it < iterations)
            x->last_grad[op->stage * iterations + it] = i;
    }
    size_t count = 0;
    if (e->dp->sync_per_microbatch) {
        /* Every gradient-completing op triggers, in op order: at most one
         * per op, so the arrays grow to the op count. */
        if (prog->op_count > x->trigger_capacity) {
            if (bs_realloc_array((void **)&x->triggers, prog->op_count, sizeof *x->triggers))
                return -1;
            x->trigger_capacity = prog->op_count;
        }
        if (prog->op_count > e->tl->collective_capacity) {
            if (bs_realloc_array((void **)&e->tl->collectives, prog->op_count,
                                 sizeof *e->tl->collectives))
                return -1;
            e->tl->collective_capacity = prog->op_count;
        }
        for (size_t i = 0; i < prog->op_count; i++) {
            const bs_op *op = &prog->ops[i];
            if ((op->kind == BS_OP_BACKWARD || op->kind == BS_OP_WEIGHT_GRAD) &&
                e->dp->chunk_sync_ms[op->stage] > 0)
                x->triggers[count++] =
                    (struct trigger){i, op->microbatch / prog->per_iteration, op->stage};
        }
    }
    for (size_t s = 0; s < stages && !e->dp->sync_per_microbatch; s++)
        for (size_t it = 0; it < iterations; it++) {
            size_t op = x->last_grad[s * iterations + it];
            if (op == SIZE_MAX || !(e->dp->chunk_sync_ms[s] > 0))
                continue;
            if (!e->dp->overlap_grad_reduce)
                /* Wait for the device's last gradient of the iteration. */
                for (size_t s2 = 0; s2 < stages; s2++)
                    if (prog->stage_device[s2] == prog->stage_device[s] &&
                        x->last_grad[s2 * iterations + it] != SIZE_MAX &&
                        x->last_grad[s2 * iterations + it] > op)
                        op = x->last_grad[s2 * iterations + it];
            x->triggers[count++] = (struct trigger){op, (uint32_t)it, (uint16_t)s};
        }
    if (!e->dp->sync_per_microbatch)
        qsort(x->triggers, count, sizeof *x->triggers, by_op);
    size_t k = 0;
    for (size_t d = 0; d < p; d++) {
        x->cursor[d] = k;
        while (k < count && x->triggers[k].op < prog->device_first[d + 1])
            k++;
        x->cursor_end[d] = k;
        x->comm_free[d] = 0.0;
    }
    return 0;
}

int bs_engine_run(bs_timeline *tl, const bs_program *prog, const bs_config *cfg,
                  int record_messages, bs_error *err)
{
    return bs_engine_run_scaled(tl, prog, cfg, record_messages, NULL, err);
}

int bs_engine_run_scaled(bs_timeline *tl, const bs_program *prog, const bs_config *cfg,
                         int record_messages, const double *op_scale, bs_error *err)
{
    engine e;
    memset(&e, 0, sizeof e);
    int rc = BS_OK;
    e.op_scale = op_scale;
    if (timeline_reserve(tl, prog, record_messages))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for the timeline of %zu ops",
                       prog->op_count);
    if ((rc = bs_chunk_costs_resolve(&e.costs, cfg, prog->stage_device, err)))
        return rc;
    tl->program = prog;
    tl->message_count = 0;
    tl->messages_sent = 0;
    tl->message_bytes_sent = 0;
    e.prog = prog;
    e.x = tl->scratch;
    e.tl = tl;
    e.m = prog->microbatches;
    e.record = record_messages;
    e.update_per_backward = (prog->flags & BS_PROGRAM_UPDATE_PER_BACKWARD) != 0;
    e.message_bytes = cfg->message_bytes;
    e.overlap = cfg->overlap;
    e.message_time = bs_message_time(cfg);
    if (prog->flags & BS_PROGRAM_DECODE_LOOP) {
        e.loop_stride = prog->per_iteration;
        e.inverse_stride = 1.0 / prog->per_iteration;
        bs_config small = *cfg;
        if (cfg->decode_message_bytes > 0)
            small.message_bytes = cfg->decode_message_bytes;
        e.decode_message_time = bs_message_time(&small);
        e.decode_message_hold =
            cfg->latency_holds_link ? e.decode_message_time : e.decode_message_time - small.latency;
        e.decode_message_bytes = small.message_bytes;
        e.prompt_tokens = cfg->prompt_tokens;
        e.decode_grows = e.costs.decode_grows;
    }
    e.blocking = cfg->blocking;
    e.overhead = cfg->overhead;

    struct bs_engine_scratch *x = e.x;
    /* About 4 KiB of each per-pair array per fill. */
    e.rows_per_fill = 512 / (size_t)prog->stages + 1;
    assign_links(&e);
    tl->collective_count = 0;
    const bs_device_plan *dp = cfg->device_plan;
    if (dp && (dp->devices != prog->devices || dp->chunks != prog->stages))
        dp = NULL; /* made for another shape */
    set_boundaries(&e, cfg, dp);
    if (dp && !(prog->flags & BS_PROGRAM_FORWARD_ONLY) && bs_device_plan_has_collectives(dp)) {
        e.dp = dp;
        if (plan_collectives(&e, cfg)) {
            bs_chunk_costs_free(&e.costs);
            return bs_fail(err, BS_ERR_NOMEM, "out of memory planning the gradient collectives");
        }
    }
    for (int d = 0; d < prog->devices; d++) {
        x->device_free[d] = 0.0;
        x->next[d] = prog->device_first[d];
        x->blocked[d] = RUNNING;
    }
    for (int d = prog->devices - 1; d >= 0; d--)
        x->worklist[e.worklist_size++] = d;
    while (e.worklist_size > 0)
        advance(&e, x->worklist[--e.worklist_size]);
    for (int d = 0; d < prog->devices; d++) {
        if (x->next[d] < prog->device_first[d + 1]) {
            char a[48];
            rc = bs_fail(err, BS_ERR_DEADLOCK,
                         "deadlock: device %d cannot start %s (the validator should have "
                         "caught this)",
                         d, bs_op_format(&prog->ops[x->next[d]], a, sizeof a));
            break;
        }
    }
    bs_chunk_costs_free(&e.costs);
    return rc;
}
