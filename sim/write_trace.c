/*
 * write_trace.c - the timeline in the Chrome trace event format, which
 * Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Layout: one process per device (pid = device). Thread (track) tid 0 is
 * compute: every op is one "X" complete event. Every directed link gets its
 * own track at both ends: "send to device E" in the sender's process and
 * "receive from device S" in the receiver's, one "X" event per message from
 * the moment the link took it to its arrival. Slices on one track never
 * overlap: when a link carries messages at once (slow links, several
 * chunks), the later ones go to lanes "send to device E (lane 2)", ... so
 * Perfetto never stacks unrelated slices. Track ids: send to E in lane l is
 * 1 + 2 (l P + E), receive from S in lane l is 2 + 2 (l P + S). A flow ("s"
 * on the send slice, "f" on the receive slice, same id) draws an arrow from
 * each send to its receive. Messages exist only when the run recorded them
 * (record_messages); without them the trace holds compute tracks alone.
 *
 * Memory: a counter track per device ("C" events named "live
 * activations"), the activations held in micro-batch units as metrics.c
 * counts them (a forward adds one at its end, a backward frees one at its
 * start, a split backward frees 1 - kept_fraction at the input gradient and
 * the rest at the weight gradient), divided by the device's chunks like
 * peak_activations; with activation_bytes known, also in bytes.
 * Timestamps are microseconds (config times are ms, so x1000).
 *
 * Events are streamed with fprintf rather than built as a cJSON tree: a
 * large timeline has millions of events, and every string here is our own
 * (no escaping needed).
 */
#include "internal.h"

#include <inttypes.h>
#include <stdlib.h>

#define US_PER_MS 1000.0

static const char *const kind_name[] = {"forward",     "backward",  "input-grad",
                                        "weight-grad", "optimizer", "decode"};

static void op_name(char *buf, size_t size, const bs_op *op)
{
    if (op->kind == BS_OP_OPTIMIZER)
        snprintf(buf, size, "optimizer it%" PRIu32, op->microbatch);
    else
        snprintf(buf, size, "%c s%u m%" PRIu32, bs_op_letter(op->kind), op->stage, op->microbatch);
}

/* Every event but the first opens with the comma that separates it. */
static void metadata(FILE *out, int first, const char *what, int pid, int tid, const char *key,
                     const char *value)
{
    fprintf(out, "%s{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"%s\":%s}}",
            first ? "" : ",\n", what, pid, tid, key, value);
}

typedef struct link_message {
    uint32_t src, dst;
    double start, arrive;
    size_t index; /* into tl->messages */
} link_message;

static int by_link_then_start(const void *a, const void *b)
{
    const link_message *x = a, *y = b;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    if (x->dst != y->dst)
        return x->dst < y->dst ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static unsigned long long send_tid(int devices, uint32_t lane, uint32_t dst)
{
    return 1 + 2 * ((unsigned long long)lane * (unsigned)devices + dst);
}

static unsigned long long recv_tid(int devices, uint32_t lane, uint32_t src)
{
    return 2 + 2 * ((unsigned long long)lane * (unsigned)devices + src);
}

/* Names the tracks of lane l of the link src -> dst at both ends. */
static void name_link_lane(FILE *out, int devices, uint32_t src, uint32_t dst, uint32_t l)
{
    char suffix[32] = "";
    if (l > 0)
        snprintf(suffix, sizeof suffix, " (lane %u)", l + 1);
    fprintf(out,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%llu,"
            "\"args\":{\"name\":\"send to device %u%s\"}}",
            src, send_tid(devices, l, dst), dst, suffix);
    fprintf(out,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%llu,"
            "\"args\":{\"name\":\"receive from device %u%s\"}}",
            dst, recv_tid(devices, l, src), src, suffix);
}

/* lane[k]: the lane of message k on its directed link, the lowest whose
 * previous message has arrived by the time k starts; each new lane's
 * tracks are named on out as it opens. Returns 0, or -1 on no memory. */
static int assign_lanes(FILE *out, const bs_timeline *tl, int devices, uint32_t *lane)
{
    size_t n = tl->message_count;
    link_message *m = malloc((n ? n : 1) * sizeof *m);
    double *lane_end = NULL;
    uint32_t lanes = 1, used = 0;
    if (!m)
        return -1;
    for (size_t k = 0; k < n; k++)
        m[k] = (link_message){tl->messages[k].src, tl->messages[k].dst, tl->messages[k].start,
                              tl->messages[k].arrive, k};
    qsort(m, n, sizeof *m, by_link_then_start);
    if (!(lane_end = malloc(sizeof *lane_end))) {
        free(m);
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        if (k == 0 || m[k].src != m[k - 1].src || m[k].dst != m[k - 1].dst)
            used = 0; /* a new link: its lanes start empty */
        uint32_t l = 0;
        while (l < used && lane_end[l] > m[k].start)
            l++;
        if (l == used) {
            if (used == lanes) {
                double *grown = realloc(lane_end, 2 * lanes * sizeof *grown);
                if (!grown) {
                    free(lane_end);
                    free(m);
                    return -1;
                }
                lane_end = grown;
                lanes *= 2;
            }
            used++;
            name_link_lane(out, devices, m[k].src, m[k].dst, l);
        }
        lane_end[l] = m[k].arrive;
        lane[m[k].index] = l;
    }
    free(lane_end);
    free(m);
    return 0;
}

/* The live-activation counter of every device (see the header). */
static void write_memory_counters(FILE *out, const bs_result *res, const bs_config *cfg)
{
    const bs_timeline *tl = res->timeline;
    const bs_program *prog = tl->program;
    double kept = cfg ? cfg->kept_fraction : BS_DEFAULT_KEPT_FRACTION;
    double bytes = cfg ? cfg->activation_bytes : 0;
    if (prog->flags & BS_PROGRAM_FORWARD_ONLY)
        return;
    for (int d = 0; d < prog->devices; d++) {
        double live = 0, chunks = prog->chunks_per_device > 0 ? prog->chunks_per_device : 1;
        fprintf(out,
                ",\n{\"name\":\"live activations\",\"ph\":\"C\",\"pid\":%d,\"tid\":0,"
                "\"ts\":0,\"args\":{\"micro-batches\":0%s}}",
                d, bytes > 0 ? ",\"bytes\":0" : "");
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            const bs_op *op = &prog->ops[i];
            double at = tl->times[i].start;
            switch (op->kind) {
            case BS_OP_FORWARD:
                live += 1;
                at = tl->times[i].end;
                break;
            case BS_OP_BACKWARD:
                live -= 1;
                break;
            case BS_OP_INPUT_GRAD:
                live -= 1 - kept;
                break;
            case BS_OP_WEIGHT_GRAD:
                live -= kept;
                break;
            default:
                continue;
            }
            fprintf(out,
                    ",\n{\"name\":\"live activations\",\"ph\":\"C\",\"pid\":%d,\"tid\":0,"
                    "\"ts\":%.17g,\"args\":{\"micro-batches\":%.17g",
                    d, at * US_PER_MS, live / chunks);
            if (bytes > 0)
                fprintf(out, ",\"bytes\":%.17g", live / chunks * bytes);
            fputs("}}", out);
        }
    }
}

static int write_trace(FILE *out, const bs_result *res, const bs_config *cfg, bs_error *err)
{
    const bs_timeline *tl = res->timeline;
    const bs_program *prog = tl->program;
    char name[64];
    uint32_t *lane = NULL;
    if (tl->messages && tl->message_count && !(lane = malloc(tl->message_count * sizeof *lane)))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory writing the trace");
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
    }
    if (lane && assign_lanes(out, tl, prog->devices, lane)) {
        free(lane);
        return bs_fail(err, BS_ERR_NOMEM, "out of memory writing the trace");
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
    for (size_t k = 0; lane && k < tl->message_count; k++) {
        const bs_message *m = &tl->messages[k];
        const bs_op *op = &prog->ops[m->producer_op];
        double ts = m->start * US_PER_MS, dur = (m->arrive - m->start) * US_PER_MS;
        const char *what = op->kind == BS_OP_FORWARD || op->kind == BS_OP_DECODE
                               ? (op->stage + 1 == prog->stages ? "token" : "activation")
                               : "gradient";
        op_name(name, sizeof name, op);
        fprintf(out,
                ",\n{\"name\":\"send %s\",\"cat\":\"message\",\"ph\":\"X\",\"pid\":%u,"
                "\"tid\":%llu,\"ts\":%.17g,\"dur\":%.17g,\"args\":{\"to\":%u,\"data\":\"%s\","
                "\"ready\":%.17g,\"stage\":%u,\"microbatch\":%" PRIu32 "}}",
                name, m->src, send_tid(prog->devices, lane[k], m->dst), ts, dur, m->dst, what,
                m->ready * US_PER_MS, op->stage, op->microbatch);
        fprintf(out,
                ",\n{\"name\":\"recv %s\",\"cat\":\"message\",\"ph\":\"X\",\"pid\":%u,"
                "\"tid\":%llu,\"ts\":%.17g,\"dur\":%.17g,\"args\":{\"from\":%u,\"data\":\"%s\","
                "\"stage\":%u,\"microbatch\":%" PRIu32 "}}",
                name, m->dst, recv_tid(prog->devices, lane[k], m->src), ts, dur, m->src, what,
                op->stage, op->microbatch);
        fprintf(out,
                ",\n{\"name\":\"%s\",\"cat\":\"message\",\"ph\":\"s\",\"id\":%zu,\"pid\":%u,"
                "\"tid\":%llu,\"ts\":%.17g}",
                what, k, m->src, send_tid(prog->devices, lane[k], m->dst), ts);
        fprintf(out,
                ",\n{\"name\":\"%s\",\"cat\":\"message\",\"ph\":\"f\",\"bp\":\"e\",\"id\":%zu,"
                "\"pid\":%u,\"tid\":%llu,\"ts\":%.17g}",
                what, k, m->dst, recv_tid(prog->devices, lane[k], m->src), ts + dur);
    }
    write_memory_counters(out, res, cfg);
    free(lane);
    fputs("\n]}\n", out);
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "cannot write the trace");
    return BS_OK;
}

const bs_writer bs_writer_trace = {"trace", "json", write_trace};
