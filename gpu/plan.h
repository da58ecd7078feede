/*
 * plan.h - a bs_program turned into GPU commands, in plain C so that it is
 * tested on any CPU.
 *
 * One device stage of the pipeline becomes one queue (a CUDA stream on its
 * own SM partition); every directed device pair that carries messages gets a
 * copy queue of its own. The plan is ONE sequence of commands in host issue
 * order; each command names the queue it goes to, and the restriction of the
 * sequence to a queue is that queue's command list. It is one sequence
 * rather than separate lists because a CUDA stream wait captures the event's
 * most recent record at the moment the wait is issued: every wait must be
 * issued after the record it refers to, which only a shared order can say.
 *
 * Invariants (checked by tests/test_gpu_plan.c):
 *  - restricted to stage queue d, the kernels are exactly device d's ops of
 *    the program, in the program's order;
 *  - one copy per message the engine sends (same producer/consumer rule as
 *    sim/engine.c: F(s,m) -> F(s+1,m), B or I(s,m) -> B or I(s-1,m), only
 *    when the two stages sit on different devices);
 *  - each event is recorded exactly once, and every wait comes after the
 *    record of its event in the sequence;
 *  - an activation is allocated right before its forward and freed right
 *    after its backward, on the stage's queue, so stream order is allocation
 *    order. Where the backward is split, it comes in two parts, as
 *    sim/metrics.c counts it: memory.kept_fraction of it freed at the weight
 *    gradient, the rest at the input gradient. Forward-only programs keep no
 *    activations;
 *  - an overlapped pair (BS_OP_OVERLAP_NEXT) is one kernel covering both ops,
 *    of (duration + duration) * costs.overlap, after the waits for both
 *    inputs, as the engine runs it;
 *  - an optimizer op is a barrier: every device records an arrival event,
 *    then every device waits for all the others' before its optimizer kernel.
 */
#ifndef BS_GPU_PLAN_H
#define BS_GPU_PLAN_H

#include "bubblesim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bs_gpu_cmd_kind {
    BS_GPU_ALLOC = 0,  /* allocate the activation of (stage, micro-batch) of `op` */
    BS_GPU_WAIT = 1,   /* the queue waits for `event` */
    BS_GPU_KERNEL = 2, /* run program op `op` for `duration` ms */
    BS_GPU_RECORD = 3, /* the queue records `event` */
    BS_GPU_COPY = 4,   /* copy queue: `bytes` from device src to dst for op -> consumer */
    BS_GPU_FREE = 5    /* free the activation of (stage, micro-batch) of `op` */
} bs_gpu_cmd_kind;

typedef enum bs_gpu_part {
    BS_GPU_PART_WHOLE = 0,     /* a chunk's activation, freed at its backward */
    BS_GPU_PART_TRANSIENT = 1, /* split backward: the share freed at the input gradient */
    BS_GPU_PART_KEPT = 2       /* split backward: the share kept until the weight gradient */
} bs_gpu_part;

typedef struct bs_gpu_cmd {
    uint8_t kind;        /* bs_gpu_cmd_kind */
    uint8_t op_kind;     /* bs_op_kind of `op` (kernel, alloc, free) */
    uint8_t ops;         /* kernel: 1, or 2 for an overlapped pair (op and op + 1) */
    uint8_t part;        /* alloc, free: bs_gpu_part */
    uint16_t stage;      /* model chunk of `op` */
    uint16_t src, dst;   /* copy: devices */
    uint32_t queue;      /* 0..devices-1 stage queues, then the copy queues */
    uint32_t op;         /* program op index; for a copy, the producer */
    uint32_t consumer;   /* copy: the program op that reads the message */
    uint32_t microbatch; /* of `op` (iteration index for an optimizer op) */
    uint32_t event;      /* record, wait; copy: the event its RECORD will record */
    double duration;     /* kernel: ms under the config's costs */
    double bytes;        /* copy: message bytes; alloc, free: bytes of this part */
    double share;        /* alloc, free: fraction of one chunk's activation */
} bs_gpu_cmd;

typedef struct bs_gpu_plan {
    int devices;                   /* P: stage queues 0..P-1 */
    int links;                     /* copy queues P..P+links-1 */
    uint16_t *link_src, *link_dst; /* [links] */
    bs_gpu_cmd *cmds;              /* in issue order */
    size_t cmd_count, cmd_capacity;
    uint32_t event_count;
    uint32_t *event_queue; /* [event_count]: the queue that records each event */
    size_t event_capacity;
    size_t copies, kernels, allocs, frees, waits, records, barriers;
} bs_gpu_plan;

void bs_gpu_plan_init(bs_gpu_plan *plan);
void bs_gpu_plan_free(bs_gpu_plan *plan);

/* Builds the plan of a validated program (bs_program_build) under cfg's
 * costs and message size. The plan reuses its buffers when built again.
 * Fails with BS_ERR_DEADLOCK if the program cannot be issued (the validator
 * should have refused it first), BS_ERR_LIMIT past 2^32 - 1 events, and
 * BS_ERR_INVALID, naming the key, for a decode program and for a config
 * that switches on an engine timing rule the GPU run does not follow
 * (costs.overhead, network.blocking, network.latency_holds_link false, a
 * boundary across nodes from hardware.gpus_per_node, data-parallel gradient
 * collectives): the prediction would then describe another run. */
int bs_gpu_plan_build(bs_gpu_plan *plan, const bs_program *prog, const bs_config *cfg,
                      bs_error *err);

/* Whether queue q is a copy queue (link q - devices) rather than a stage's. */
static inline int bs_gpu_plan_is_copy_queue(const bs_gpu_plan *plan, uint32_t q)
{
    return q >= (uint32_t)plan->devices;
}

/* Checks the invariants above against prog; BS_ERR_INTERNAL names the first
 * command that breaks one. Used by the tests and by the executor before it
 * issues anything. */
int bs_gpu_plan_check(const bs_gpu_plan *plan, const bs_program *prog, bs_error *err);

/* Largest activation alive at once on each device's queue, walking its
 * allocs and frees in queue order: in chunks (the sum of the live parts'
 * shares) into peak, in bytes into peak_bytes. Each, when not NULL, must
 * hold plan->devices values. */
int bs_gpu_plan_peak_live(const bs_gpu_plan *plan, double *peak, double *peak_bytes, bs_error *err);

/* Runs the plan under ideal stream semantics: each queue runs its commands
 * in order, a kernel lasts its duration, a copy `copy_ms`, a record marks
 * the queue's time, a wait holds the queue until that time, and nothing else
 * costs time. Fills tl (start and end of every op in ms, messages_sent =
 * copies) as a GPU run would. With copy_ms equal to the engine's message time
 * the result is the engine's timeline; a plan that lost a wait or serialised
 * too much would differ, which is what the tests check. */
int bs_gpu_plan_simulate(const bs_gpu_plan *plan, const bs_program *prog, double copy_ms,
                         bs_timeline *tl, bs_error *err);

/* "F(s1,m3)" style text of a command for messages and dumps. */
const char *bs_gpu_cmd_format(const bs_gpu_cmd *cmd, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
