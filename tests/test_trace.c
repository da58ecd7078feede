/*
 * test_trace.c - the "trace" writer's Chrome trace event output, read back
 * with cJSON: it parses; every op is exactly one complete ("X") event on its
 * device's compute thread with the op's start and duration in microseconds
 * and the required fields; every recorded message is a send slice, a
 * receive slice and a flow pair ("s" then "f" with one id) from the
 * sender's track for that directed link ("send to device D") to the
 * receiver's ("receive from device S"); no two slices on one track overlap,
 * also with slow links; processes and threads are named; the per-device
 * "live activations" counter peaks at the device's peak_activations (a
 * figure metrics.c computes by its own walk).
 */
#include "bubblesim.h"
#include "check.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static char *write_trace_text(const bs_result *res, const bs_config *cfg)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CHECK(f != NULL);
    if (!f)
        return NULL;
    bs_error err = {{0}};
    const bs_writer *w = bs_writer_find("trace");
    CHECK(w != NULL);
    CHECK(w && strcmp(w->extension, "json") == 0);
    int rc = w ? w->write(f, res, cfg, &err) : BS_ERR_INTERNAL;
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    fclose(f);
    return text;
}

static int number_is(const cJSON *o, const char *key, double want, double tol)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(n) && fabs(n->valuedouble - want) <= tol;
}

static const char *string_of(const cJSON *o, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(s) ? s->valuestring : "";
}

typedef struct slice {
    double pid, tid, start, end;
} slice;

static int by_track(const void *a, const void *b)
{
    const slice *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* The name given to track (pid, tid) by a thread_name event, or "". */
static const char *track_name(const cJSON *events, int pid, double tid)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "pid");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "tid");
        if (strcmp(string_of(e, "ph"), "M") == 0 &&
            strcmp(string_of(e, "name"), "thread_name") == 0 && cJSON_IsNumber(p) &&
            p->valueint == pid && cJSON_IsNumber(t) && t->valuedouble == tid)
            return string_of(cJSON_GetObjectItemCaseSensitive(e, "args"), "name");
    }
    return "";
}

static void check_case(const char *schedule, int p, int m, int v, double latency, double bandwidth)
{
    static const char *const kind_name[] = {"forward", "backward", "input-grad", "weight-grad",
                                            "optimizer"};
    bs_config cfg;
    bs_context *ctx = NULL;
    bs_error err = {{0}};
    const bs_result *res = NULL;
    bs_run_options opts = {.record_messages = 1};
    bs_config_init(&cfg);
    snprintf(cfg.schedule, sizeof cfg.schedule, "%s", schedule);
    cfg.stages = p;
    cfg.microbatches = m;
    cfg.virtual_stages = v;
    cfg.latency = latency;
    if (bandwidth > 0) {
        cfg.bandwidth = bandwidth;
        cfg.message_bytes = 1e6;
    }
    CHECK(bs_context_create(&ctx) == BS_OK);
    int rc = bs_context_run(ctx, &cfg, &opts, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s: %s", schedule, err.message);
    if (rc) {
        bs_context_free(&ctx);
        return;
    }
    const bs_timeline *tl = res->timeline;
    const bs_program *prog = tl->program;
    char *text = write_trace_text(res, &cfg);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(root != NULL, "%s: the trace is not JSON", schedule);
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    CHECK(cJSON_IsArray(events));

    int *seen = calloc(prog->op_count, sizeof *seen);
    int *flow_start = calloc(tl->message_count + 1, sizeof *flow_start);
    int *flow_end = calloc(tl->message_count + 1, sizeof *flow_end);
    size_t complete_compute = 0, sends = 0, receives = 0, process_names = 0, thread_names = 0;
    size_t n_slices = 0, bad_names = 0;
    slice *slices = calloc(2 * tl->message_count + prog->op_count + 1, sizeof *slices);
    double *counter_peak = calloc((size_t)p, sizeof *counter_peak);
    size_t counters = 0;
    int bad_fields = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        const char *ph = string_of(e, "ph"), *name = string_of(e, "name");
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(e, "pid");
        const cJSON *tid = cJSON_GetObjectItemCaseSensitive(e, "tid");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
        if (!cJSON_IsNumber(pid) || !cJSON_IsNumber(tid) || !*name) {
            bad_fields++;
            continue;
        }
        if (strcmp(ph, "X") == 0 && slices) {
            const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "ts");
            const cJSON *dur = cJSON_GetObjectItemCaseSensitive(e, "dur");
            if (cJSON_IsNumber(ts) && cJSON_IsNumber(dur))
                slices[n_slices++] = (slice){pid->valuedouble, tid->valuedouble, ts->valuedouble,
                                             ts->valuedouble + dur->valuedouble};
        }
        if (strcmp(ph, "M") == 0) {
            process_names += strcmp(name, "process_name") == 0;
            thread_names += strcmp(name, "thread_name") == 0;
        } else if (strcmp(ph, "X") == 0 && tid->valueint == 0) {
            const cJSON *op_index = cJSON_GetObjectItemCaseSensitive(args, "op");
            if (!cJSON_IsNumber(op_index) || op_index->valuedouble < 0 ||
                op_index->valuedouble >= (double)prog->op_count) {
                bad_fields++;
                continue;
            }
            size_t i = (size_t)op_index->valuedouble;
            const bs_op *op = &prog->ops[i];
            seen[i]++;
            complete_compute++;
            int device = prog->stage_device[op->stage];
            if (op->kind == BS_OP_OPTIMIZER)
                device = pid->valueint; /* optimizer ops run on every device */
            CHECK_MSG(pid->valueint == device, "op %zu on pid %d, device %d", i, pid->valueint,
                      device);
            CHECK(number_is(e, "ts", tl->times[i].start * 1000, 1e-6));
            CHECK(number_is(e, "dur", (tl->times[i].end - tl->times[i].start) * 1000, 1e-6));
            CHECK(number_is(args, "stage", op->stage, 0));
            CHECK(number_is(args, "microbatch", op->microbatch, 0));
            CHECK(strcmp(string_of(args, "kind"), kind_name[op->kind]) == 0);
            CHECK(strcmp(string_of(e, "cat"), kind_name[op->kind]) == 0);
        } else if (strcmp(ph, "X") == 0) {
            int send = (long long)tid->valuedouble % 2 == 1;
            const cJSON *peer = cJSON_GetObjectItemCaseSensitive(args, send ? "to" : "from");
            char want[64];
            sends += send;
            receives += !send;
            CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "ts")));
            CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "dur")));
            /* The slice sits on the track of its directed link. */
            snprintf(want, sizeof want, "%s device %d", send ? "send to" : "receive from",
                     cJSON_IsNumber(peer) ? peer->valueint : -1);
            if (strncmp(track_name(events, pid->valueint, tid->valuedouble), want, strlen(want)) !=
                0)
                bad_names++;
        } else if (strcmp(ph, "C") == 0) {
            const cJSON *live = cJSON_GetObjectItemCaseSensitive(args, "micro-batches");
            counters++;
            if (cJSON_IsNumber(live) && pid->valueint >= 0 && pid->valueint < p &&
                live->valuedouble > counter_peak[pid->valueint])
                counter_peak[pid->valueint] = live->valuedouble;
        } else if (strcmp(ph, "s") == 0 || strcmp(ph, "f") == 0) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
            if (!cJSON_IsNumber(id) || id->valuedouble < 0 ||
                id->valuedouble >= (double)tl->message_count) {
                bad_fields++;
                continue;
            }
            const bs_message *msg = &tl->messages[(size_t)id->valuedouble];
            if (ph[0] == 's') {
                flow_start[(size_t)id->valuedouble]++;
                CHECK(pid->valueint == msg->src && (long long)tid->valuedouble % 2 == 1);
                CHECK(number_is(e, "ts", msg->start * 1000, 1e-6));
            } else {
                flow_end[(size_t)id->valuedouble]++;
                CHECK(pid->valueint == msg->dst && tid->valuedouble >= 2 &&
                      (long long)tid->valuedouble % 2 == 0);
                CHECK(number_is(e, "ts", msg->arrive * 1000, 1e-6));
                CHECK(strcmp(string_of(e, "bp"), "e") == 0);
            }
        }
    }
    CHECK_MSG(bad_fields == 0, "%s: %d events without required fields", schedule, bad_fields);
    CHECK_MSG(complete_compute == prog->op_count, "%s: %zu compute events for %zu ops", schedule,
              complete_compute, prog->op_count);
    for (size_t i = 0; i < prog->op_count; i++)
        CHECK_MSG(seen[i] == 1, "%s: op %zu appears %d times", schedule, i, seen[i]);
    CHECK(tl->message_count == res->messages);
    CHECK(sends == tl->message_count && receives == tl->message_count);
    for (size_t k = 0; k < tl->message_count; k++)
        CHECK_MSG(flow_start[k] == 1 && flow_end[k] == 1, "%s: message %zu flows %d/%d", schedule,
                  k, flow_start[k], flow_end[k]);
    CHECK(process_names == (size_t)p);
    /* A compute track per device and, per directed link (and lane), two. */
    CHECK_MSG(thread_names >= (size_t)p + (tl->message_count ? 2 : 0) &&
                  (thread_names - (size_t)p) % 2 == 0,
              "%s: %zu named threads", schedule, thread_names);
    CHECK_MSG(bad_names == 0, "%s: %zu message slices off their link's track", schedule, bad_names);
    /* No two slices on one track overlap. */
    qsort(slices, n_slices, sizeof *slices, by_track);
    size_t overlaps = 0;
    for (size_t i = 1; i < n_slices; i++)
        overlaps += slices[i].pid == slices[i - 1].pid && slices[i].tid == slices[i - 1].tid &&
                    slices[i].start < slices[i - 1].end - 1e-6;
    CHECK_MSG(overlaps == 0, "%s: %zu overlapping slices on one track", schedule, overlaps);
    /* The memory counters: one track per device, peaking at the metric. */
    if (!(prog->flags & BS_PROGRAM_FORWARD_ONLY)) {
        CHECK_MSG(counters >= (size_t)p, "%s: %zu counter events", schedule, counters);
        for (int d = 0; d < p; d++)
            CHECK_MSG(fabs(counter_peak[d] - res->device[d].peak_activations) < 1e-9,
                      "%s: device %d counter peaks at %g, peak_activations %g", schedule, d,
                      counter_peak[d], res->device[d].peak_activations);
    } else {
        CHECK(counters == 0);
    }
    free(slices);
    free(counter_peak);
    free(seen);
    free(flow_start);
    free(flow_end);
    cJSON_Delete(root);
    free(text);
    bs_context_free(&ctx);
    bs_config_free(&cfg);
}

int main(void)
{
    check_case("1f1b", 4, 8, 1, 0.0, 0);
    check_case("gpipe", 3, 5, 1, 0.25, 0);
    check_case("interleaved", 4, 8, 2, 0.1, 0);
    check_case("forward", 4, 16, 1, 0.0, 0);
    check_case("pipedream", 2, 6, 1, 0.5, 0);
    /* Slow links: a device sends to both neighbours at once (interleaved
     * wraps around), and messages queue on each link. */
    check_case("interleaved", 4, 8, 2, 0.5, 2e8);
    check_case("zbv", 4, 8, 2, 1.0, 1e8);
    check_case("1f1b", 4, 16, 1, 2.0, 1e8);
    return check_finish("trace");
}
