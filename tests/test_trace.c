/*
 * test_trace.c - the "trace" writer's Chrome trace event output, read back
 * with cJSON: it parses; every op is exactly one complete ("X") event on its
 * device's compute thread with the op's start and duration in microseconds
 * and the required fields; every recorded message is a send slice, a
 * receive slice and a flow pair ("s" then "f" with one id) from the sender's
 * send thread to the receiver's receive thread; processes and threads are
 * named.
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

static void check_case(const char *schedule, int p, int m, int v, double latency)
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
            sends += tid->valueint == 1;
            receives += tid->valueint == 2;
            CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "ts")));
            CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "dur")));
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
                CHECK(pid->valueint == msg->src && tid->valueint == 1);
                CHECK(number_is(e, "ts", msg->start * 1000, 1e-6));
            } else {
                flow_end[(size_t)id->valuedouble]++;
                CHECK(pid->valueint == msg->dst && tid->valueint == 2);
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
    CHECK(thread_names == 3 * (size_t)p);
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
    check_case("1f1b", 4, 8, 1, 0.0);
    check_case("gpipe", 3, 5, 1, 0.25);
    check_case("interleaved", 4, 8, 2, 0.1);
    check_case("forward", 4, 16, 1, 0.0);
    check_case("pipedream", 2, 6, 1, 0.5);
    return check_finish("trace");
}
