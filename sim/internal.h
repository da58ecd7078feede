/*
 * internal.h - helpers shared by the library's modules; not installed.
 *
 * All allocation goes through bs_alloc_array / bs_realloc_array so that
 * size overflow is checked in one place and a failure is always reported as
 * BS_ERR_NOMEM rather than a crash.
 */
#ifndef BS_INTERNAL_H
#define BS_INTERNAL_H

#include "bubblesim.h"

#include <stdarg.h>

/* Allocates count * size bytes (uninitialised), or NULL on overflow or
 * failure. */
void *bs_alloc_array(size_t count, size_t size);
/* Like calloc, with the same overflow check. */
void *bs_zalloc_array(size_t count, size_t size);
/* Resizes *p to count * size bytes; on failure *p is untouched and -1 is
 * returned. */
int bs_realloc_array(void **p, size_t count, size_t size);
void bs_free(void *p);

struct cJSON;
/* "a string", "a number", ... for error messages about a JSON value. */
const char *bs_json_kind(const struct cJSON *item);
/* Element `index` of the array at `path` in `source` as an integer from lo
 * to hi into *value; otherwise BS_ERR_INVALID with "SOURCE: PATH[INDEX]:
 * expected WHAT from LO to HI, got ..." (WHAT: "an integer", ...). */
int bs_json_array_int(const struct cJSON *el, int lo, int hi, const char *what, const char *source,
                      const char *path, size_t index, int *value, bs_error *err);

/* Like the loop "every key against every other", but n log n: BS_ERR_INVALID
 * "SOURCE: PREFIX.KEY: key appears more than once" for the first duplicated
 * key of obj (prefix NULL at the top level). */
int bs_json_check_duplicates(const struct cJSON *obj, const char *prefix, const char *source,
                             bs_error *err);

/* "Did you mean": bs_suggest_init with the unknown word, bs_suggest_consider
 * with each known name, then bs_suggest_hint writes 'did you mean "NAME"? '
 * into buf, or "" when no name is close (sim/suggest.c says how close). */
typedef struct bs_suggest {
    const char *word;
    const char *best;
    int distance;
} bs_suggest;
void bs_suggest_init(bs_suggest *s, const char *word);
void bs_suggest_consider(bs_suggest *s, const char *candidate);
const char *bs_suggest_hint(const bs_suggest *s, char *buf, size_t size);

/* Formats a message into err (when err is non-NULL) and returns code. */
int bs_fail(bs_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The schema tables, row by row, for bs_config_key_at (sim/keys.c): the
 * core config (config.c), the model and hardware (model.c), "tune" (tune.c). */
size_t bs_config_field_count(void);
void bs_config_field_describe(size_t i, bs_config_key *out);
size_t bs_model_key_count(void);
void bs_model_key_describe(size_t i, bs_config_key *out);
size_t bs_tune_key_count(void);
void bs_tune_key_describe(size_t i, bs_config_key *out);
/* The range of a numeric key as text: "1 to 4096", ">= 0", "> 0 and <= 1". */
void bs_key_range_text(char *buf, size_t size, int integer, double min, int min_exclusive,
                       double max);

/* Grows the program's op array to hold at least `count` ops. */
int bs_program_reserve(bs_program *prog, size_t count, bs_error *err);

/* bs_program_build without the feasibility pass of the validator: the
 * structure is checked, a deadlock is not looked for. bs_context_run uses it
 * because the engine finds a deadlock anyway (its worklist empties), and then
 * asks bs_program_validate for the message that names the cycle of waits. */
int bs_program_build_unchecked(bs_program *prog, const bs_config *cfg, bs_error *err);
/* The structure pass of bs_program_validate alone. */
int bs_program_validate_structure(const bs_program *prog, bs_error *err);

/* The longest time in milliseconds (about 31,700 years) that an op or a
 * message may take, given or derived: every sum the engine forms over at
 * most 10^15 ops then stays finite. */
#define BS_MAX_TIME_MS 1e15

/* Milliseconds a message holds its link: latency + bytes / bandwidth. The
 * engine and the GPU dry run (gpu/report.c) must agree on it exactly. */
static inline double bs_message_time(const bs_config *cfg)
{
    return cfg->latency + (cfg->bandwidth > 0 ? cfg->message_bytes / cfg->bandwidth * 1000.0 : 0.0);
}

/* A message across boundary s (chunks s and s+1): *delay, when it arrives
 * after it starts, latency + bytes / bandwidth of the pipeline link, or of
 * the node link where dp (cfg's device plan, when made for this program's
 * shape; else NULL) says the boundary crosses nodes; *hold, how long it
 * keeps its link busy: the same, or the transfer alone with
 * network.latency_holds_link off. The engine and zb-auto's search both
 * time messages with it, so the search's times are the engine's. */
static inline void bs_boundary_time(const bs_config *cfg, const bs_device_plan *dp, int s,
                                    double *delay, double *hold)
{
    double latency = cfg->latency, bandwidth = cfg->bandwidth;
    if (dp && dp->crosses_node[s] > 0) {
        latency = dp->node_latency;
        bandwidth = dp->node_bandwidth;
    }
    double transfer = bandwidth > 0 ? cfg->message_bytes / bandwidth * 1000.0 : 0.0;
    *delay = latency + transfer;
    *hold = cfg->latency_holds_link ? latency + transfer : transfer;
}

/* Grows tl->times to hold at least `ops` entries (contents unspecified);
 * returns -1, leaving tl as it was, when memory runs out. For the engine and
 * for measured timelines (gpu/). */
int bs_timeline_reserve(bs_timeline *tl, size_t ops);

/* Appends one op to the current device of prog; callers emit devices in
 * order 0..P-1 and call bs_program_end_device after each. */
static inline void bs_program_emit(bs_program *prog, int kind, int stage, uint32_t mb)
{
    bs_op *op = &prog->ops[prog->op_count++];
    op->microbatch = mb;
    op->stage = (uint16_t)stage;
    op->kind = (uint8_t)kind;
    op->reserved = 0;
}

/* Index of a (stage, micro-batch) pair in per-pair arrays. Micro-batch
 * major: at any moment the devices work on micro-batches close to each
 * other, so their reads and writes land in nearby memory. */
static inline size_t bs_pair(const bs_program *prog, unsigned stage, uint32_t microbatch)
{
    return (size_t)microbatch * (size_t)prog->stages + stage;
}

static inline void bs_program_end_device(bs_program *prog, int device)
{
    prog->device_first[device + 1] = prog->op_count;
}

/* Duration of one op under cfg's resolved per-chunk costs. */
typedef struct bs_chunk_costs {
    double *forward, *backward, *weight; /* [stages] */
    double optimizer;
    int uniform; /* all chunks alike */
    /* Decode steps [stages] (zeros when not given); decode_grows: the
     * context-dependent terms of bs_config are given (bubblesim.h). */
    double *decode, *decode_per_token, *decode_memory, *decode_memory_per_token;
    int decode_grows;
} bs_chunk_costs;

/* stage_device may be NULL (looped placement: chunk s on device s mod P). */
int bs_chunk_costs_resolve(bs_chunk_costs *costs, const bs_config *cfg,
                           const uint16_t *stage_device, bs_error *err);
void bs_chunk_costs_free(bs_chunk_costs *costs);

/* The configuration has free communication (no latency, no transfer time). */
int bs_config_network_free(const bs_config *cfg);

/* Ordering helpers shared by the 1F1B-family generators. */
/* 1F1B order on one device: `warmup` forwards, then forward/backward pairs,
 * then the remaining backwards, over micro-batches first_mb .. +count. */
int bs_emit_one_f_one_b(bs_program *prog, int stage, uint32_t first_mb, uint32_t count, int warmup);
/* The optimizer op closing iteration `it` of a flush schedule, if any. */
void bs_emit_iteration_end(bs_program *prog, const bs_config *cfg, int it);
/* Refuses an optimizer cost for schedules that do not flush (schedule_zb.c). */
int bs_check_no_flush_optimizer(const bs_config *cfg, const char *name, bs_error *err);
/* Refuses V != 2 or a placement key for the V-shaped schedules (schedule_zbv.c). */
int bs_check_v_shape(const bs_config *cfg, const char *name, bs_error *err);
/* V-shaped placement: chunk s and chunk 2P-1-s on device s (needs V = 2). */
void bs_place_v(bs_program *prog);
/* Emits device `device`'s ops of kind `kind` (a forward or a decode step)
 * for items first .. first+count-1 in looped placement: in groups of
 * `group` items, chunk by chunk (schedule_forward.c). */
void bs_emit_forward_pass(bs_program *prog, int kind, int device, uint32_t first, uint32_t count,
                          uint32_t group);
/* Refuses V != 1 for schedules with one chunk per device. */
int bs_check_single_chunk(const bs_config *cfg, const char *name, bs_error *err);

/* Schedule table entries, defined one per file. */
extern const bs_schedule bs_schedule_gpipe;
extern const bs_schedule bs_schedule_1f1b;
extern const bs_schedule bs_schedule_pipedream;
extern const bs_schedule bs_schedule_interleaved;
extern const bs_schedule bs_schedule_forward;
extern const bs_schedule bs_schedule_zb_h1;
extern const bs_schedule bs_schedule_zb_h2;
extern const bs_schedule bs_schedule_zb_auto;
extern const bs_schedule bs_schedule_interleaved_zb;
extern const bs_schedule bs_schedule_v_min;
extern const bs_schedule bs_schedule_v_half;
extern const bs_schedule bs_schedule_zbv;
extern const bs_schedule bs_schedule_dualpipev;
extern const bs_schedule bs_schedule_looped_bfs;
extern const bs_schedule bs_schedule_custom;
extern const bs_schedule bs_schedule_decode;

/* PyTorch pipelining's schedule text (order_text.c). One parsed action:
 * one op, or two for an overlapped pair; count 0 for an idle slot or a
 * communication action, which the engine models itself. A communication
 * action is kept in `comm` (BS_COMM_*) with its stage and micro-batch so
 * that the reader can check it against the compute order. */
enum {
    BS_COMM_NONE = 0,
    BS_COMM_SEND_F,
    BS_COMM_RECV_F,
    BS_COMM_SEND_B,
    BS_COMM_RECV_B,
    BS_COMM_WAIT_SEND_F,
    BS_COMM_WAIT_SEND_B,
    BS_COMM_UNSHARD,
    BS_COMM_RESHARD,
    BS_COMM_REDUCE_GRAD,
    BS_COMM_WAIT_REDUCE_GRAD
};
typedef struct bs_action {
    bs_op op[2];
    int count;
    int comm;            /* BS_COMM_*, BS_COMM_NONE for compute or idle */
    uint32_t comm_stage; /* the stage the communication action names */
    uint32_t comm_mb;    /* its micro-batch, when comm_has_mb */
    int comm_has_mb;
} bs_action;
/* PyTorch's name of a BS_COMM_* action ("SEND_F", ...). */
const char *bs_comm_name(int comm);

/* Parses one comma-separated field (without the comma); NULL on success,
 * else what is wrong with it. */
const char *bs_action_parse(const char *text, size_t len, bs_action *out);

/* Serving figures of a decode timeline (inference.c); out->valid = 0 for
 * other programs. */
void bs_inference_compute(bs_inference_result *out, const bs_timeline *tl, const bs_config *cfg,
                          double makespan);

extern const bs_writer bs_writer_table;
extern const bs_writer bs_writer_json;
extern const bs_writer bs_writer_trace;

/* The model keys (sim/model.c). bs_model_is_key says whether a top-level
 * key belongs to the model, so the config reader leaves it to
 * bs_model_apply, which reads them from the whole JSON tree (after the
 * --set overrides) and fills cfg's costs, memory and network; it does
 * nothing when the tree has none of them. */
struct cJSON;
int bs_model_is_key(const char *name);
/* Offers the model's keys to a "did you mean": the top-level ones (model,
 * hardware, tensor_parallel, ...) for section NULL, else those of section. */
void bs_model_suggest(bs_suggest *s, const char *section);
int bs_model_apply(bs_config *cfg, const struct cJSON *root, const char *source, bs_error *err);
/* Decode: the prefill's sequence is inference.prompt_tokens; model.sequence,
 * when given, must agree (sim/model_decode.c). */
int bs_model_decode_prompt(bs_model *m, const bs_config *cfg, const struct cJSON *root,
                           const char *source, bs_error *err);

/* The median of v[0..n) (NAN when n is 0); sorts v in place (trace_read.c). */
double bs_median(double *v, size_t n);

#endif
