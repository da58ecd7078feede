/*
 * write_trace.c - the timeline in the Chrome trace event format, which
 * Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Layout: one process per device (pid = device), with three threads:
 * tid 0 compute (every op is one "X" complete event), tid 1 send and tid 2
 * receive (one "X" event per message, from the moment the link took it to
 * its arrival). A flow ("s" on the sender's send slice, "f" on the
 * receiver's receive slice, same id) draws an arrow from each send to its
 * receive. Timestamps are microseconds (config times are ms, so x1000).
 * Messages exist only when the run recorded them (record_messages); without
 * them the trace holds the compute threads alone.
 *
 * Events are streamed with fprintf rather than built as a cJSON tree: a
 * large timeline has millions of events, and every string here is our own
 * (no escaping needed).
 */
#include "internal.h"

#include <inttypes.h>

#define US_PER_MS 1000.0

static const char *const kind_name[] = {"forward",     "backward",  "input-grad",
                                        "weight-grad", "optimizer", "decode"};
static const char kind_letter[] = {'F', 'B', 'I', 'W', 'O', 'D'};

static void op_name(char *buf, size_t size, const bs_op *op)
{
    if (op->kind == BS_OP_OPTIMIZER)
        snprintf(buf, size, "optimizer it%" PRIu32, op->microbatch);
    else
        snprintf(buf, size, "%c s%u m%" PRIu32, kind_letter[op->kind], op->stage, op->microbatch);
}

/* Every event but the first opens with the comma that separates it. */
static void metadata(FILE *out, int first, const char *what, int pid, int tid, const char *key,
                     const char *value)
{
    fprintf(out, "%s{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"%s\":%s}}",
            first ? "" : ",\n", what, pid, tid, key, value);
}

static int write_trace(FILE *out, const bs_result *res, const bs_config *cfg, bs_error *err)
{
    (void)cfg;
    const bs_timeline *tl = res->timeline;
    const bs_program *prog = tl->program;
    char name[64];
    fprintf(out,
            "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":\"bubblesim %s\","
            "\"schedule\":\"%s\",\"stages\":%d,\"microbatches\":%d,\"virtual_stages\":%d,"
            "\"iterations\":%d,\"makespan_ms\":%.17g,\"bubble_ratio\":%.17g},\n"
            "\"traceEvents\":[\n",
            BS_VERSION, res->schedule, res->stages, res->microbatches, res->virtual_stages,
            res->iterations, res->makespan, res->bubble_ratio);
    for (int d = 0; d < prog->devices; d++) {
        char value[32];
        snprintf(value, sizeof value, "\"device %d\"", d);
        metadata(out, d == 0, "process_name", d, 0, "name", value);
        snprintf(value, sizeof value, "%d", d);
        metadata(out, 0, "process_sort_index", d, 0, "sort_index", value);
        metadata(out, 0, "thread_name", d, 0, "name", "\"compute\"");
        metadata(out, 0, "thread_name", d, 1, "name", "\"send\"");
        metadata(out, 0, "thread_name", d, 2, "name", "\"receive\"");
    }
    for (int d = 0; d < prog->devices; d++) {
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            const bs_op *op = &prog->ops[i];
            int kind = op->kind <= BS_OP_DECODE ? op->kind : BS_OP_OPTIMIZER;
            op_name(name, sizeof name, op);
            fprintf(out,
                    ",\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":0,"
                    "\"ts\":%.17g,\"dur\":%.17g,\"args\":{\"stage\":%u,\"microbatch\":%" PRIu32
                    ",\"kind\":\"%s\",\"op\":%zu}}",
                    name, kind_name[kind], d, tl->times[i].start * US_PER_MS,
                    (tl->times[i].end - tl->times[i].start) * US_PER_MS, op->stage, op->microbatch,
                    kind_name[kind], i);
        }
    }
    for (size_t k = 0; tl->messages && k < tl->message_count; k++) {
        const bs_message *m = &tl->messages[k];
        const bs_op *op = &prog->ops[m->producer_op];
        double ts = m->start * US_PER_MS, dur = (m->arrive - m->start) * US_PER_MS;
        const char *what = op->kind == BS_OP_FORWARD || op->kind == BS_OP_DECODE
                               ? (op->stage + 1 == prog->stages ? "token" : "activation")
                               : "gradient";
        op_name(name, sizeof name, op);
        fprintf(out,
                ",\n{\"name\":\"send %s\",\"cat\":\"message\",\"ph\":\"X\",\"pid\":%u,\"tid\":1,"
                "\"ts\":%.17g,\"dur\":%.17g,\"args\":{\"to\":%u,\"data\":\"%s\",\"ready\":%.17g,"
                "\"stage\":%u,\"microbatch\":%" PRIu32 "}}",
                name, m->src, ts, dur, m->dst, what, m->ready * US_PER_MS, op->stage,
                op->microbatch);
        fprintf(out,
                ",\n{\"name\":\"recv %s\",\"cat\":\"message\",\"ph\":\"X\",\"pid\":%u,\"tid\":2,"
                "\"ts\":%.17g,\"dur\":%.17g,\"args\":{\"from\":%u,\"data\":\"%s\",\"stage\":%u,"
                "\"microbatch\":%" PRIu32 "}}",
                name, m->dst, ts, dur, m->src, what, op->stage, op->microbatch);
        fprintf(out,
                ",\n{\"name\":\"%s\",\"cat\":\"message\",\"ph\":\"s\",\"id\":%zu,\"pid\":%u,"
                "\"tid\":1,\"ts\":%.17g}",
                what, k, m->src, ts);
        fprintf(out,
                ",\n{\"name\":\"%s\",\"cat\":\"message\",\"ph\":\"f\",\"bp\":\"e\",\"id\":%zu,"
                "\"pid\":%u,\"tid\":2,\"ts\":%.17g}",
                what, k, m->dst, ts + dur);
    }
    fputs("\n]}\n", out);
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "cannot write the trace");
    return BS_OK;
}

const bs_writer bs_writer_trace = {"trace", "json", write_trace};
