/*
 * schedule_custom.c - a schedule the user writes: `"schedule": "custom"` with
 * an `order` (per-device arrays of action strings, inline) or an
 * `order_file` (PyTorch pipelining's text format, one row per device), and a
 * `placement` of model chunks on devices (looped, v, or an explicit array).
 * config.c turns both forms into the same text, read here.
 *
 * The order describes one iteration, micro-batches 0..M-1; each further
 * iteration repeats it with its micro-batches, after a flush (an optimizer
 * op), as PyTorch runs one schedule per step; `updates` can drop the flush
 * ("no-flush", as zb-h2 and zbv run) or update weights after every backward
 * ("per-backward", asynchronous PipeDream). An order without any backward
 * is a forward-only (inference) program: no flush, nothing kept.
 *
 * Errors name the device, the position (the field's index in the row,
 * counting idle slots from 0) and the action as written. The structural
 * rules a single row can break (ownership, one forward then one backward
 * or I then W) are checked here on the text so that positions match it;
 * whole-program rules (a missing op, a deadlock with its cycle of waits)
 * come from the validator, whose positions count ops without idle slots.
 */
#include "internal.h"

#include <string.h>

enum { SEEN_F = 1, SEEN_B = 2, SEEN_I = 4, SEEN_W = 8 };

typedef struct row {
    const char *text;
    size_t len;
    int line; /* 1-based line of the order text */
} row;

/* Communication actions seen per (stage, micro-batch), for the checks
 * against the compute order (check_comm). */
enum { SENT_F = 1, SENT_B = 2, WAITED_F = 4, WAITED_B = 8, RECEIVED_F = 16, RECEIVED_B = 32 };

static int custom_check(const bs_config *cfg, bs_error *err)
{
    if (cfg->updates == BS_UPDATES_NO_FLUSH)
        return bs_check_no_flush_optimizer(cfg, "custom with \"updates\": \"no-flush\"", err);
    if (!cfg->order)
        return bs_fail(err, BS_ERR_INVALID,
                       "order: the custom schedule needs an order: \"order\": [[\"0F0\", ...], "
                       "...] with one array of actions per device, or \"order_file\": a PyTorch "
                       "pipelining schedule text file");
    return BS_OK;
}

/* Splits the order text into rows, leaving out blank lines and '#' comment
 * lines and a UTF-8 byte-order mark at the start (as editors on Windows
 * write); fails unless there is one row per device. */
static int split_rows(const bs_config *cfg, row *rows, bs_error *err)
{
    int count = 0, line = 0;
    const char *text = cfg->order;
    if (strncmp(text, "\xEF\xBB\xBF", 3) == 0)
        text += 3;
    for (const char *at = text; *at;) {
        line++;
        const char *end = strchr(at, '\n');
        size_t len = end ? (size_t)(end - at) : strlen(at);
        size_t k = 0;
        while (k < len && (at[k] == ' ' || at[k] == '\t' || at[k] == '\r'))
            k++;
        if (k < len && at[k] != '#') {
            if (count < cfg->stages)
                rows[count] = (row){at, len, line};
            count++;
        }
        at += len + (end ? 1 : 0);
    }
    if (count != cfg->stages)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: has %d rows of actions; expected one per device, stages = %d",
                       cfg->order_source, count, cfg->stages);
    return BS_OK;
}

/* Checks one parsed op of device d against the placement and what its row
 * has done so far; NULL when fine. */
static const char *op_problem(const bs_program *prog, const bs_op *op, int d, uint8_t *seen,
                              uint32_t m, char *buf, size_t size)
{
    if (op->stage >= prog->stages) {
        snprintf(buf, size, "stage %u does not exist (P*V = %d model chunks)", op->stage,
                 prog->stages);
        return buf;
    }
    if (op->microbatch >= m) {
        snprintf(buf, size, "micro-batch %u does not exist (microbatches = %u)", op->microbatch, m);
        return buf;
    }
    if (prog->stage_device[op->stage] != d) {
        snprintf(buf, size, "stage %u is placed on device %u, not on this device", op->stage,
                 prog->stage_device[op->stage]);
        return buf;
    }
    uint8_t *f = &seen[(size_t)op->stage * m + op->microbatch];
    switch (op->kind) {
    case BS_OP_FORWARD:
        if (*f & SEEN_F)
            return "second forward of this stage and micro-batch";
        *f |= SEEN_F;
        break;
    case BS_OP_BACKWARD:
    case BS_OP_INPUT_GRAD:
        if (!(*f & SEEN_F))
            return "backward before the forward of this stage and micro-batch";
        if (*f & (SEEN_B | SEEN_I))
            return "second backward of this stage and micro-batch";
        *f |= op->kind == BS_OP_BACKWARD ? SEEN_B : SEEN_I;
        break;
    case BS_OP_WEIGHT_GRAD:
        if (!(*f & SEEN_I))
            return "weight gradient before the input gradient (I) of this stage and micro-batch";
        if (*f & SEEN_W)
            return "second weight gradient of this stage and micro-batch";
        *f |= SEEN_W;
        break;
    }
    return NULL;
}

/* Checks a communication action of device d against the compute order read
 * so far (PyTorch 2.15's compute_comms format): its stage on this device
 * and within range; a send after the compute op that produces it and once;
 * a receive before the op that needs it and once; a wait after its send;
 * REDUCE_GRAD and WAIT_REDUCE_GRAD in pairs (*reducing: the stage with a
 * reduction pending on this device, or -1). What a communication action
 * costs is not taken from the file: the engine models every message
 * itself. NULL when fine. */
static const char *comm_problem(const bs_program *prog, const bs_action *a, int d,
                                const uint8_t *seen, uint8_t *comm, uint32_t m, long *reducing,
                                char *buf, size_t size)
{
    unsigned s = a->comm_stage, last = (unsigned)prog->stages - 1;
    const char *name = bs_comm_name(a->comm);
    if (s >= (unsigned)prog->stages) {
        snprintf(buf, size, "stage %u does not exist (P*V = %d model chunks)", s, prog->stages);
        return buf;
    }
    if (prog->stage_device[s] != d) {
        snprintf(buf, size, "stage %u is placed on device %u, not on this device", s,
                 prog->stage_device[s]);
        return buf;
    }
    if (a->comm_has_mb && a->comm_mb >= m) {
        snprintf(buf, size, "micro-batch %u does not exist (microbatches = %u)", a->comm_mb, m);
        return buf;
    }
    if (a->comm >= BS_COMM_UNSHARD && a->comm <= BS_COMM_RESHARD)
        return NULL; /* parameter sharding: not modelled */
    if (a->comm == BS_COMM_REDUCE_GRAD) {
        if (*reducing >= 0)
            return "REDUCE_GRAD while another stage's reduction on this device has no "
                   "WAIT_REDUCE_GRAD yet";
        *reducing = (long)s;
        return NULL;
    }
    if (a->comm == BS_COMM_WAIT_REDUCE_GRAD) {
        if (*reducing != (long)s)
            return "WAIT_REDUCE_GRAD without a REDUCE_GRAD of this stage before it";
        *reducing = -1;
        return NULL;
    }
    size_t pair = (size_t)s * m + a->comm_mb;
    uint8_t done = seen[pair], *c = &comm[pair];
    switch (a->comm) {
    case BS_COMM_SEND_F:
        if (s == last)
            return "the last stage sends no activation";
        if (!(done & SEEN_F))
            return "SEND_F before the forward (F) of this stage and micro-batch";
        if (*c & SENT_F)
            return "second SEND_F of this stage and micro-batch";
        *c |= SENT_F;
        return NULL;
    case BS_COMM_SEND_B:
        if (s == 0)
            return "the first stage sends no gradient";
        if (!(done & (SEEN_B | SEEN_I)))
            return "SEND_B before the backward (B or I) of this stage and micro-batch";
        if (*c & SENT_B)
            return "second SEND_B of this stage and micro-batch";
        *c |= SENT_B;
        return NULL;
    case BS_COMM_RECV_F:
        if (s == 0)
            return "the first stage receives no activation";
        if (done & SEEN_F)
            return "RECV_F after the forward (F) that needs it";
        if (*c & RECEIVED_F)
            return "second RECV_F of this stage and micro-batch";
        *c |= RECEIVED_F;
        return NULL;
    case BS_COMM_RECV_B:
        if (s == last)
            return "the last stage receives no gradient";
        if (done & (SEEN_B | SEEN_I))
            return "RECV_B after the backward (B or I) that needs it";
        if (*c & RECEIVED_B)
            return "second RECV_B of this stage and micro-batch";
        *c |= RECEIVED_B;
        return NULL;
    case BS_COMM_WAIT_SEND_F:
    case BS_COMM_WAIT_SEND_B: {
        int f = a->comm == BS_COMM_WAIT_SEND_F;
        if (!(*c & (f ? SENT_F : SENT_B)))
            return f ? "WAIT_SEND_F without a SEND_F of this stage and micro-batch before it"
                     : "WAIT_SEND_B without a SEND_B of this stage and micro-batch before it";
        if (*c & (f ? WAITED_F : WAITED_B))
            return "second wait for the same send";
        *c |= f ? WAITED_F : WAITED_B;
        return NULL;
    }
    }
    snprintf(buf, size, "%s is not understood here", name);
    return buf;
}

static void place(const bs_config *cfg, bs_program *prog)
{
    if (cfg->placement == BS_PLACEMENT_V)
        bs_place_v(prog);
    else if (cfg->placement == BS_PLACEMENT_EXPLICIT)
        memcpy(prog->stage_device, cfg->placement_map,
               (size_t)prog->stages * sizeof *prog->stage_device);
}

static int custom_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    int p = cfg->stages, rc = BS_OK, backward = 0;
    uint32_t m = (uint32_t)cfg->microbatches;
    row *rows = bs_alloc_array((size_t)p, sizeof *rows);
    uint8_t *seen = bs_zalloc_array((size_t)prog->stages * m, 1);
    uint8_t *comm = bs_zalloc_array((size_t)prog->stages * m, 1);
    size_t ops_per_iteration = 0;
    if (!rows || !seen || !comm) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory reading the order");
        goto error;
    }
    if ((rc = split_rows(cfg, rows, err)))
        goto error;
    place(cfg, prog);
    /* First pass: parse and check every action, count the ops. */
    for (int d = 0; d < p; d++) {
        const char *at = rows[d].text, *end = at + rows[d].len;
        long reducing = -1;
        for (size_t pos = 0;; pos++) {
            const char *comma = memchr(at, ',', (size_t)(end - at));
            size_t len = comma ? (size_t)(comma - at) : (size_t)(end - at);
            bs_action act;
            char buf[160];
            const char *why = bs_action_parse(at, len, &act);
            for (int k = 0; !why && k < act.count; k++) {
                why = op_problem(prog, &act.op[k], d, seen, m, buf, sizeof buf);
                backward |= act.op[k].kind != BS_OP_FORWARD;
            }
            if (!why && act.comm != BS_COMM_NONE)
                why = comm_problem(prog, &act, d, seen, comm, m, &reducing, buf, sizeof buf);
            if (!why && act.count == 2 && act.op[0].stage == act.op[1].stage &&
                act.op[0].microbatch == act.op[1].microbatch)
                why = "an overlapped pair cannot hold the forward and backward of one stage and "
                      "micro-batch";
            if (why) {
                while (len > 0 && (at[len - 1] == '\r' || at[len - 1] == ' '))
                    len--;
                char line[32] = "";
                if (cfg->order_from_file)
                    snprintf(line, sizeof line, ":%d", rows[d].line);
                rc = bs_fail(err, BS_ERR_INVALID,
                             "%s%s: device %d, position %zu, action \"%.*s\": %s",
                             cfg->order_source, line, d, pos, (int)(len < 64 ? len : 64), at, why);
                goto error;
            }
            ops_per_iteration += (size_t)act.count;
            if (!comma)
                break;
            at = comma + 1;
        }
        if (reducing >= 0) {
            rc = bs_fail(err, BS_ERR_INVALID,
                         "%s: device %d: REDUCE_GRAD of stage %ld has no WAIT_REDUCE_GRAD after it",
                         cfg->order_source, d, reducing);
            goto error;
        }
    }
    /* Every send is waited for, as PyTorch 2.15 requires; files of older
     * releases have no waits at all and are read as they are. */
    int any_wait = 0;
    for (size_t k = 0; k < (size_t)prog->stages * m; k++)
        any_wait |= (comm[k] & (WAITED_F | WAITED_B)) != 0;
    for (size_t k = 0; any_wait && k < (size_t)prog->stages * m; k++) {
        int f = (comm[k] & SENT_F) && !(comm[k] & WAITED_F);
        if (f || ((comm[k] & SENT_B) && !(comm[k] & WAITED_B))) {
            unsigned st = (unsigned)(k / m);
            rc = bs_fail(err, BS_ERR_INVALID,
                         "%s: device %u: %uSEND_%c%u has no WAIT_SEND_%c after it (PyTorch waits "
                         "for every send)",
                         cfg->order_source, prog->stage_device[st], st, f ? 'F' : 'B',
                         (unsigned)(k % m), f ? 'F' : 'B');
            goto error;
        }
    }
    if (!backward)
        prog->flags |= BS_PROGRAM_FORWARD_ONLY;
    else if (cfg->updates == BS_UPDATES_NO_FLUSH)
        prog->flags |= BS_PROGRAM_NO_FLUSH;
    else if (cfg->updates == BS_UPDATES_PER_BACKWARD)
        prog->flags |= BS_PROGRAM_UPDATE_PER_BACKWARD;
    int flush = backward && cfg->updates == BS_UPDATES_FLUSH;
    size_t barriers = flush ? (size_t)cfg->iterations * (size_t)p : 0;
    if ((rc =
             bs_program_reserve(prog, ops_per_iteration * (size_t)cfg->iterations + barriers, err)))
        goto error;
    /* Second pass: emit, once per iteration. */
    for (int d = 0; d < p; d++) {
        for (int it = 0; it < cfg->iterations; it++) {
            const char *at = rows[d].text, *end = at + rows[d].len;
            uint32_t base = (uint32_t)it * m;
            for (;;) {
                const char *comma = memchr(at, ',', (size_t)(end - at));
                size_t len = comma ? (size_t)(comma - at) : (size_t)(end - at);
                bs_action act;
                bs_action_parse(at, len, &act);
                for (int k = 0; k < act.count; k++) {
                    bs_program_emit(prog, act.op[k].kind, act.op[k].stage,
                                    base + act.op[k].microbatch);
                    prog->ops[prog->op_count - 1].reserved = act.op[k].reserved;
                }
                if (!comma)
                    break;
                at = comma + 1;
            }
            if (flush)
                bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, d);
    }
error:
    bs_free(rows);
    bs_free(seen);
    bs_free(comm);
    return rc;
}

const bs_schedule bs_schedule_custom = {
    .name = "custom",
    .summary = "your own order (inline or PyTorch pipelining text) and placement",
    .check = custom_check,
    .generate = custom_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = BS_PROGRAM_VARIABLE_OPS,
};
