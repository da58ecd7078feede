/*
 * bubblesim.h - public interface of the bubblesim library.
 *
 * The library turns a pipeline-parallel training configuration into a
 * simulated timeline and its metrics:
 *
 *   bs_config --(schedule)--> bs_program --(engine)--> bs_timeline
 *             --(metrics)--> bs_result
 *
 * Rules every function follows:
 *  - It returns BS_OK (0) or a negative bs_status; on failure, when an
 *    error record is passed, its message says what went wrong in words a
 *    user can act on (file, key path, what was expected).
 *  - The library never prints and never exits; the caller decides.
 *  - Objects come in create/free pairs; a free function accepts NULL.
 *
 * Units: times in milliseconds, sizes in bytes, bandwidth in bytes per
 * second (0 means unlimited).
 */
#ifndef BUBBLESIM_H
#define BUBBLESIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BS_VERSION "0.1.0"

typedef enum bs_status {
    BS_OK = 0,
    BS_ERR_INVALID = -1,  /* bad input: config value, schedule constraint */
    BS_ERR_DEADLOCK = -2, /* the schedule can never finish */
    BS_ERR_NOMEM = -3,    /* an allocation failed */
    BS_ERR_IO = -4,       /* a file could not be read or written */
    BS_ERR_LIMIT = -5,    /* the run would exceed a size limit */
    BS_ERR_INTERNAL = -6  /* a bug: an invariant did not hold */
} bs_status;

typedef struct bs_error {
    char message[1024];
} bs_error;

/* ---------------------------------------------------------------- config */

/* A cost given as one number (count 1: every stage alike) or as an array of
 * P values (per device stage, split evenly among its V chunks) or P*V values
 * (per model chunk, in model order). The arrays bs_config_init installs are
 * read-only defaults: replace a bs_values, never write through its v. */
typedef struct bs_values {
    size_t count;
    double *v;
} bs_values;

#define BS_NAME_MAX 32

typedef struct bs_config {
    char schedule[BS_NAME_MAX];
    int stages;         /* P: devices in the pipeline */
    int microbatches;   /* M: micro-batches per iteration */
    int virtual_stages; /* V: model chunks per device */
    int iterations;     /* training iterations back to back */
    int group_size;     /* interleaved: micro-batches per group, 0 = P */
    bs_values forward, backward, weight;
    double optimizer;        /* per-device optimizer step time */
    double activation_bytes; /* one micro-batch's activations, one device stage */
    double weight_bytes;     /* one device stage's weights */
    double latency;          /* per message */
    double bandwidth;        /* bytes/s per directed link, 0 = unlimited */
    double message_bytes;    /* bytes per activation or gradient message */
    /* Split backward: fraction of a chunk's activation kept from the input
     * gradient until the weight gradient (memory.kept_fraction). */
    double kept_fraction;
    /* zb-auto: the most activations a device may hold, in the unit of
     * peak_activations (memory.limit_activations); 0 means P. */
    double limit_activations;
    /* An overlapped forward+backward pair lasts (F + B) * overlap. */
    double overlap;
    /* costs.overhead: fixed time added to every compute op (kernel
     * launches, framework), ms. */
    double overhead;
    /* network.blocking: a send holds its device's compute until the message
     * has arrived (Megatron without p2p overlap); 0 = links overlap compute. */
    int blocking;
    /* network.latency_holds_link: the link is busy for latency + transfer
     * (1, the default) or only for the transfer, latency then being a delay
     * the next message on the link overlaps (0). */
    int latency_holds_link;
    /* custom: stage -> device placement, and the op order as PyTorch
     * pipelining text (one row per device), from `order` or `order_file`. */
    int placement;           /* BS_PLACEMENT_* */
    int updates;             /* custom: BS_UPDATES_* */
    uint16_t *placement_map; /* [placement_count], BS_PLACEMENT_EXPLICIT */
    size_t placement_count;
    char *order;            /* NULL when none was given */
    char order_source[256]; /* names the order in messages: a file or "order" */
    int order_from_file;    /* order came from order_file: messages give its line */
    /* limits.max_ops and limits.max_memory (bytes): a run larger than these,
     * by its op count or its estimated memory (BS_BYTES_PER_OP per op plus
     * BS_BYTES_PER_PAIR per stage and micro-batch), is refused before
     * anything is allocated. 0 means the default (BS_DEFAULT_MAX_*). */
    double max_ops, max_memory;
    /* Decode (schedule "decode", docs/inference.md): costs.decode is one
     * decode step's op (count 0: not given); each of the M micro-batches is
     * prefilled with a prompt of inference.prompt_tokens tokens (costs.forward
     * is the prefill op) and then generates inference.output_tokens tokens,
     * the first one by the prefill. 0 means not given. */
    bs_values decode;
    int prompt_tokens, output_tokens;
    /* Set only from a model (sim/model_decode.c), never read from JSON: a
     * decode step at context length c (tokens in the KV cache, its own
     * included) lasts
     *   max(decode + decode_per_token * c, decode_memory + decode_memory_per_token * c)
     * (compute against memory traffic, each with the TP all-reduces added).
     * Count 0: the step lasts costs.decode whatever the context. */
    bs_values decode_per_token, decode_memory, decode_memory_per_token;
    /* Set only from a model: each device's KV cache at the end of decode
     * (count P), reported per device; count 0 otherwise. */
    bs_values kv_cache_bytes;
    /* Sequences in one micro-batch (model.microbatch_size; 1 without a
     * model), for tokens per second. 0 means 1. */
    int sequences_per_microbatch;
    /* Bytes of a message a decode step sends, and of a token looped back to
     * stage 0 (a model sets b * hidden * bytes_per_element); 0 means
     * network.message_bytes. */
    double decode_message_bytes;
    /* What a config's "model" (sim/model.c) tells the engine and the
     * metrics beyond op costs, NULL without a model: each device's static
     * memory, each chunk's activations, and the data-parallel gradient
     * collectives. Owned by the config. */
    struct bs_device_plan *device_plan;
} bs_config;

/* Static bytes of one device (one tensor-parallel rank of one pipeline
 * stage of one data-parallel replica), already divided by T and, as the
 * ZeRO stage says, by D. */
typedef struct bs_device_static {
    double weights, gradients, optimizer;
    double kv_cache; /* inference: keys and values of the whole batch */
    double buffers;  /* ZeRO-3: gathered parameters of the largest layer, twice */
} bs_device_static;

/* One allocation holding the struct and its arrays (device_plan.c). */
typedef struct bs_device_plan {
    int devices, chunks;
    double limit;             /* hardware.memory_bytes, 0 = not given */
    bs_device_static *device; /* [devices] */
    double *chunk_activation; /* [chunks], model order: one micro-batch */
    /* Data parallelism: after the last gradient of chunk c in an iteration
     * its gradients are reduced over the D replicas, chunk_sync_ms[c] on
     * the device's own communication stream (0: no collective, D = 1).
     * With overlap_grad_reduce the chunk's collective starts as soon as the
     * chunk's last backward has produced its first bucket (chunk_buckets[c]
     * equal buckets, one per layer); without it, every chunk of the device
     * waits for the device's last backward of the iteration. The optimizer
     * step waits for the collectives. */
    int overlap_grad_reduce;
    /* ZeRO-2/3 keep only a shard of the gradients, so the gradients of
     * every micro-batch are reduce-scattered as its backward produces them
     * (instead of once per iteration): chunk_sync_ms[c] then follows every
     * backward (or weight gradient) of chunk c. */
    int sync_per_microbatch;
    double *chunk_sync_ms; /* [chunks] */
    double *chunk_buckets; /* [chunks], >= 1 */
    /* Topology: crosses_node[s] is 1 when the devices of chunks s and s+1
     * sit on different nodes; their messages then use the node link. */
    double *crosses_node; /* [chunks] */
    double node_bandwidth, node_latency;
} bs_device_plan;

/* A plan for `devices` devices and `chunks` chunks, zero-filled (one
 * bucket per chunk); NULL when memory runs out. */
bs_device_plan *bs_device_plan_create(int devices, int chunks);
/* Deep copy (NULL for NULL, or when memory runs out and src is not NULL). */
bs_device_plan *bs_device_plan_copy(const bs_device_plan *src);
void bs_device_plan_free(bs_device_plan *plan);
/* Whether the plan asks for any gradient collective. */
int bs_device_plan_has_collectives(const bs_device_plan *plan);

#define BS_DEFAULT_MAX_OPS 1e8
#define BS_DEFAULT_MAX_MEMORY 8589934592.0 /* 8 GiB */
/* Measured (docs/performance.md): program ops 8 bytes, start and end 16;
 * per (stage, micro-batch): engine arrivals 16, validator flags 1, weight
 * versions 4. Recording messages (timelines, traces) adds about 48 per op. */
#define BS_BYTES_PER_OP 24.0
#define BS_BYTES_PER_PAIR 21.0

enum { BS_PLACEMENT_LOOPED = 0, BS_PLACEMENT_V = 1, BS_PLACEMENT_EXPLICIT = 2 };

/* How a custom schedule's iterations meet the optimizer: a flush before
 * each step (default), none (each device starts its next iteration when
 * its own ops allow, as zb-h2 and zbv do), or a weight update after every
 * backward (asynchronous PipeDream). */
enum { BS_UPDATES_FLUSH = 0, BS_UPDATES_NO_FLUSH = 1, BS_UPDATES_PER_BACKWARD = 2 };

/* The documented default of memory.kept_fraction: the zero-bubble paper's
 * per-layer count keeps 32h of 34h bytes per token until W (with fused
 * attention, so without the 5as term). */
#define BS_DEFAULT_KEPT_FRACTION (32.0 / 34.0)

/* Fills cfg with the documented defaults (1f1b, P=4, M=8, V=1, F=1, B=2).
 * cfg owns no memory afterwards beyond what bs_config_free releases. */
void bs_config_init(bs_config *cfg);

/* Releases the cost arrays and resets cfg to defaults. */
void bs_config_free(bs_config *cfg);

/* Deep copy; dst must be initialised (it is freed first). */
int bs_config_copy(bs_config *dst, const bs_config *src, bs_error *err);

/* One --set override: a dotted key path and a value in JSON syntax; a value
 * that is not valid JSON is taken as a string (so schedule=gpipe works). */
typedef struct bs_override {
    const char *path;
    const char *value;
} bs_override;

/* Parses a JSON config text. `source` names it in error messages (a file
 * name, or "<built-in>"). Overrides are applied to the JSON before it is
 * read, so they are checked exactly like keys in the file. On failure cfg
 * is left in its default state. */
int bs_config_parse(bs_config *cfg, const char *text, const char *source,
                    const bs_override *overrides, size_t n_overrides, bs_error *err);

/* The config text with the overrides written into it, checked as
 * bs_config_parse checks them, as a new compact JSON text that the caller
 * releases with bs_text_free: for tools that read sections bs_config_parse
 * does not (bubblesim tune's "tune"). */
int bs_config_apply_overrides(const char *text, const char *source, const bs_override *overrides,
                              size_t n_overrides, char **out, bs_error *err);

/* Checks the config text and the overrides key by key, as bs_config_parse
 * does (syntax, known keys, types, ranges, a known schedule name, the model's
 * keys), but not the values against each other (cost arrays against P and V,
 * a schedule's constraints, size limits): for a base config whose values a
 * sweep completes point by point. */
int bs_config_check_keys(const char *text, const char *source, const bs_override *overrides,
                         size_t n_overrides, bs_error *err);

/* Reads and parses a config file (see bs_config_parse). */
int bs_config_load(bs_config *cfg, const char *path, const bs_override *overrides,
                   size_t n_overrides, bs_error *err);

/* Reads a whole text file (a regular file of at most 64 MiB, no NUL bytes)
 * into a new NUL-terminated buffer that the caller releases with
 * bs_text_free. A FIFO, directory, device or socket is refused without
 * blocking (BS_ERR_INVALID); "-" is a file name, not standard input.
 * Errors name the file: cannot open, not a regular file, read error, too
 * large (BS_ERR_LIMIT), NUL byte. */
int bs_read_text_file(const char *path, char **out, bs_error *err);
void bs_text_free(char *text);

/* One config key the library's schema tables accept, described for people
 * (`bubblesim help config`): its dotted path (what --set takes), its JSON
 * type, its allowed range, one line of meaning, and the page documenting it. */
typedef struct bs_config_key {
    char path[64];
    char type[48];
    char range[96];
    const char *description;
    const char *doc; /* "docs/config.md", ... */
} bs_config_key;

/* Every key of every section (the core config, the model and hardware, the
 * planner's "tune"), in table order; keys added to a table appear here. */
size_t bs_config_key_count(void);
/* Fills *out with key i; BS_ERR_INVALID when i >= bs_config_key_count(). */
int bs_config_key_at(size_t i, bs_config_key *out);

/* Checks the values against each other (array lengths against P and V, size
 * limits). `source` prefixes messages. bs_config_parse calls it; callers that
 * fill a bs_config by hand should too (bs_context_run does). */
int bs_config_check(const bs_config *cfg, const char *source, bs_error *err);

/* --------------------------------------------------------------- program */

typedef enum bs_op_kind {
    BS_OP_FORWARD = 0,
    BS_OP_BACKWARD = 1,    /* full backward: input and weight gradient */
    BS_OP_INPUT_GRAD = 2,  /* backward split: input gradient only */
    BS_OP_WEIGHT_GRAD = 3, /* backward split: weight gradient only */
    BS_OP_OPTIMIZER = 4,   /* flush barrier + optimizer step on every device */
    /* One decode step: a forward of one new token per sequence, costed by
     * costs.decode. Its input is the previous stage's output of the same
     * item, and at stage 0 the last stage's output of the item's previous
     * token (see BS_PROGRAM_DECODE_LOOP). Otherwise it is a forward. */
    BS_OP_DECODE = 5
} bs_op_kind;

/* One unit of work on a device. `stage` is the model chunk in model order
 * (0 .. P*V-1). `microbatch` counts across iterations (iteration * M + m);
 * for BS_OP_OPTIMIZER it is the iteration index. */
typedef struct bs_op {
    uint32_t microbatch;
    uint16_t stage;
    uint8_t kind;
    uint8_t reserved; /* BS_OP_OVERLAP_NEXT or 0 */
} bs_op;

/* In bs_op.reserved: this op and the next one on the device run overlapped
 * (a forward and a backward): they start together once both inputs are in
 * and end together after (F + B) * costs.overlap. */
#define BS_OP_OVERLAP_NEXT 1u

/* Weights change after every backward (asynchronous PipeDream), rather than
 * only at optimizer ops. */
#define BS_PROGRAM_UPDATE_PER_BACKWARD 1u
/* No backward exists: activations are not kept. */
#define BS_PROGRAM_FORWARD_ONLY 2u
/* No flush between iterations: each device goes on to the next iteration
 * as soon as its own ops allow; no optimizer ops. */
#define BS_PROGRAM_NO_FLUSH 4u
/* The generator decides the op count itself (custom orders, schedules that
 * mix full and split backwards); it reserves what it needs. */
#define BS_PROGRAM_VARIABLE_OPS 8u
/* Autoregressive decode: the micro-batch field of an op is an item,
 * token * per_iteration + micro-batch (token 0 is the prefill's forward).
 * The last stage's output of item i is stage 0's input of item
 * i + per_iteration: the generated token goes back to the first stage, a
 * message when the two stages are on different devices. The program's
 * `microbatches` counts items (M * output tokens). */
#define BS_PROGRAM_DECODE_LOOP 16u

/* Per-device op lists in one flat array: device d runs
 * ops[device_first[d] .. device_first[d+1]) in that order. */
typedef struct bs_program {
    int devices;           /* P */
    int stages;            /* model chunks, P*V */
    int chunks_per_device; /* V */
    uint32_t microbatches; /* M * iterations */
    uint32_t per_iteration;
    unsigned flags;
    uint16_t *stage_device; /* [stages]: device that owns each chunk */
    bs_op *ops;
    size_t op_count, op_capacity;
    size_t *device_first; /* [devices + 1] */
} bs_program;

/* A schedule generator, chosen by name from a const table. */
typedef struct bs_schedule {
    const char *name;
    const char *summary;
    /* Returns BS_OK when the schedule can run cfg, else BS_ERR_INVALID with
     * the reason in err. */
    int (*check)(const bs_config *cfg, bs_error *err);
    /* Appends every device's ops to prog (already sized and placed). */
    int (*generate)(const bs_config *cfg, bs_program *prog, bs_error *err);
    unsigned ops_per_chunk_microbatch; /* 1 forward-only, 2 F+B, 3 F+I+W */
    unsigned flags;                    /* BS_PROGRAM_* */
    /* Nonzero for the V-shaped schedules: two chunks per device, chunk s and
     * chunk 2P-1-s on device s. A config without virtual_stages gets V = 2
     * for them, and bs_model_chunk_device places their chunks so; their
     * generators place the program the same way (bs_place_v). */
    int v_shape;
} bs_schedule;

size_t bs_schedule_count(void);
const bs_schedule *bs_schedule_at(size_t i);
/* NULL when no schedule has that name. */
const bs_schedule *bs_schedule_find(const char *name);

void bs_program_init(bs_program *prog);
void bs_program_free(bs_program *prog);

/* Runs the schedule's check and generator for cfg into prog (reusing its
 * buffers), then validates the result. */
int bs_program_build(bs_program *prog, const bs_config *cfg, bs_error *err);

/* Structural validation: every (stage, micro-batch) has exactly one forward
 * and exactly one backward (or one input-gradient and one weight-gradient op)
 * after it, on the device that owns the stage; optimizer ops line up; and every
 * dependency can be met (no deadlock). A deadlock is BS_ERR_DEADLOCK with the
 * blocked ops and the cycle of waits in err. */
int bs_program_validate(const bs_program *prog, bs_error *err);

/* Writes the program's ops of micro-batches below `limit` in PyTorch
 * pipelining's text format: one row per device, comma-separated actions
 * such as 0F0, 2I0, 2W0, (0F7;7B3)OVERLAP_F_B; optimizer ops left out. A
 * custom schedule reads it back (order_file). */
int bs_order_write(FILE *out, const bs_program *prog, uint32_t limit, bs_error *err);

/* Writes prog as PyTorch 2.15's compute_comms text: each compute action
 * with the RECV_F/RECV_B it needs before it and the SEND_F/SEND_B it
 * produces after it (only across devices), WAIT_SEND_F after the local
 * backward of the same stage and micro-batch, every other wait at the end
 * of the row. Micro-batches at or above `limit` and optimizer ops are left
 * out, as in bs_order_write. */
int bs_order_write_comms(FILE *out, const bs_program *prog, uint32_t limit, bs_error *err);

/* Writes "F(s3,m2)" style text for an op into buf. */
const char *bs_op_format(const bs_op *op, char *buf, size_t size);
/* The letter of an op kind, as PyTorch's action text and bubblesim's
 * messages write it: F, B, I, W, O (optimizer), D (decode); '?' for any
 * other value. */
char bs_op_letter(int kind);

/* -------------------------------------------------------------- timeline */

/* One point-to-point transfer between devices. */
typedef struct bs_message {
    double ready;                      /* producer finished */
    double start;                      /* link became free */
    double arrive;                     /* consumer may start */
    uint32_t producer_op, consumer_op; /* indices into program ops */
    uint16_t src, dst;
} bs_message;

/* A data-parallel gradient collective: chunk `stage`'s gradients of one
 * iteration reduced over the D replicas, on the device's own
 * communication stream beside its compute (sim/engine.c). */
typedef struct bs_collective {
    double start, end;
    uint32_t iteration;
    uint16_t device, stage;
} bs_collective;

/* When one op ran, in milliseconds. */
typedef struct bs_op_time {
    double start, end;
} bs_op_time;

/* What happened: start and end of every op, parallel to program->ops, and
 * the messages when they were recorded. Produced by the engine (predicted)
 * or by a measurement (gpu/). Start and end sit side by side because the
 * engine writes both as it finishes an op: one stream of memory per device
 * rather than two (docs/performance.md). */
typedef struct bs_timeline {
    const bs_program *program;
    bs_op_time *times; /* [program->op_count] */
    size_t capacity;
    bs_message *messages; /* NULL unless recorded */
    size_t message_count, message_capacity;
    uint64_t messages_sent; /* counted always */
    double message_bytes_sent;
    /* Gradient collectives (a config whose model has data_parallel > 1),
     * in the order the engine ran them; none in a measured timeline. */
    bs_collective *collectives;
    size_t collective_count, collective_capacity;
    struct bs_engine_scratch *scratch; /* private: the engine's buffers, reused */
} bs_timeline;

void bs_timeline_init(bs_timeline *tl);
void bs_timeline_free(bs_timeline *tl);

/* Discrete-event simulation of prog under cfg's costs and network. When
 * record_messages is non-zero every message is kept in tl->messages. */
int bs_engine_run(bs_timeline *tl, const bs_program *prog, const bs_config *cfg,
                  int record_messages, bs_error *err);
/* bs_engine_run with one factor per op: op i of prog (prog->ops[i]) lasts
 * its configured time times op_scale[i] (finite, >= 0). NULL is plain
 * bs_engine_run. Used to sample a prediction under measured op-to-op
 * variation (bs_compare_with). */
int bs_engine_run_scaled(bs_timeline *tl, const bs_program *prog, const bs_config *cfg,
                         int record_messages, const double *op_scale, bs_error *err);

/* --------------------------------------------------------------- metrics */

/* Whole-device peak memory in bytes (docs/model.md, "Memory of a
 * device"): activations are the peak over time of the device's own chunks;
 * other = stashed weight versions + KV cache + communication buffers. */
typedef struct bs_device_memory {
    double weights, gradients, optimizer, activations, other, total;
    double stashed_weights, kv_cache, buffers; /* the parts of other */
    int fits; /* total <= hardware.memory_bytes: 1, 0, or -1 without a limit */
} bs_device_memory;

typedef struct bs_device_result {
    double busy, idle;
    double bubble_ratio;      /* idle / makespan */
    double span;              /* own last end - own first start */
    double span_bubble_ratio; /* 1 - busy / span */
    double peak_activations;  /* micro-batch units (a chunk counts 1/V) */
    double peak_activation_bytes;
    int weight_versions; /* peak live weight versions */
    int max_staleness;   /* largest updates between a forward and its backward */
    double weight_version_bytes;
    uint64_t messages_sent;
    double message_bytes_sent;
    double formula_peak_activations; /* NAN without a closed form */
    double kv_cache_bytes;           /* decode with a model: keys and values held; else 0 */
    uint64_t decode_messages_sent;   /* of messages_sent: decode steps' and looped-back tokens */
    double collective_time;          /* gradient collectives on its communication stream */
    bs_device_memory memory;         /* valid when bs_result.has_memory */
} bs_device_result;

/* Closed forms for uniform costs and free communication. */
typedef struct bs_formula {
    int valid;
    double makespan;
    double bubble_ratio;          /* idle over total */
    double bubble_over_ideal;     /* idle over busy */
    double peak_activations;      /* largest over devices */
    double weight_versions;       /* largest over devices */
    double time_per_output_token; /* decode; 0 otherwise */
} bs_formula;

/* Serving figures of a decode run (ms; docs/inference.md). Each micro-batch
 * enters at time 0; its first token appears when its prefill leaves the
 * last stage, token k when its k-th decode step does. */
typedef struct bs_inference_result {
    int valid;                    /* a decode program */
    double prefill_time;          /* end of the last prefill op anywhere */
    double time_to_first_token;   /* mean over micro-batches */
    double time_per_output_token; /* mean over micro-batches of (last - first) / (T - 1) */
    double tokens_per_second;     /* M * sequences * T / makespan */
    double generated_tokens;      /* M * sequences * T */
} bs_inference_result;

typedef struct bs_result {
    char schedule[BS_NAME_MAX];
    int stages, microbatches, virtual_stages, iterations;
    double makespan;
    double iteration_time;
    double busy, idle;        /* summed over devices */
    double bubble_ratio;      /* idle / (P * makespan) */
    double bubble_over_ideal; /* idle / busy */
    double span_bubble_ratio; /* 1 - busy / (P * longest span) */
    double peak_activations;  /* largest over devices */
    double peak_activation_bytes;
    int weight_versions, max_staleness;
    uint64_t messages;
    double message_bytes;
    size_t collectives; /* gradient collectives on the timeline */
    bs_formula formula;
    bs_inference_result inference;
    int devices;
    int has_memory;           /* the config had a memory plan (a model) */
    double memory_limit;      /* hardware.memory_bytes, 0 = not given */
    double peak_memory;       /* largest device total (has_memory) */
    bs_device_result *device; /* [devices] */
    const bs_timeline *timeline;
    struct bs_metrics_scratch *scratch; /* private: reused by the next compute */
} bs_result;

/* Computes every metric of tl into res (whose device array it (re)allocates).
 * Release with bs_result_free. */
int bs_metrics_compute(bs_result *res, const bs_timeline *tl, const bs_config *cfg, bs_error *err);
void bs_result_free(bs_result *res);

/* Fills f with the closed form for cfg, or f->valid = 0 where none holds. */
void bs_formula_compute(bs_formula *f, double *per_device_peak, const bs_config *cfg);

/* --------------------------------------------------------------- context */

/* A context owns the buffers of one run and reuses them for the next, so a
 * sweep allocates once. */
typedef struct bs_context bs_context;

int bs_context_create(bs_context **out);
void bs_context_free(bs_context **ctx);

typedef struct bs_run_options {
    int record_messages;
} bs_run_options;

/* Checks cfg, builds and validates the program, simulates and measures it.
 * *out points into ctx and stays valid until the next run or the free. */
int bs_context_run(bs_context *ctx, const bs_config *cfg, const bs_run_options *opts,
                   const bs_result **out, bs_error *err);

/* ---------------------------------------------------------------- writers */

/* An output writer: how a result becomes text, chosen by name. */
typedef struct bs_writer {
    const char *name;
    const char *extension;
    int (*write)(FILE *out, const bs_result *res, const bs_config *cfg, bs_error *err);
} bs_writer;

const bs_writer *bs_writer_find(const char *name);

/* ------------------------------------------------------------ collectives */

/* A communication group: `size` members, `per_node` of them on each node
 * (size or 0: all on one node), the link inside a node and between nodes
 * (bytes/s, 0 = unlimited; latency per ring step, ms). */
typedef struct bs_group {
    int size, per_node;
    double intra_bandwidth, intra_latency;
    double inter_bandwidth, inter_latency;
} bs_group;

enum {
    BS_COLLECTIVE_ALL_REDUCE = 0,
    BS_COLLECTIVE_REDUCE_SCATTER = 1,
    BS_COLLECTIVE_ALL_GATHER = 2
};

/* Milliseconds of one ring collective of `bytes` (the whole buffer) over
 * g: an all-reduce is 2(n-1)/n * bytes / bandwidth + 2(n-1) * latency, a
 * reduce-scatter or all-gather half that; hierarchical when the group
 * spans nodes (sim/collective.c). */
double bs_collective_ms(int kind, double bytes, const bs_group *g);

/* ------------------------------------------------------------------ model */

/* A transformer and the hardware it runs on, as an alternative to giving
 * costs, memory and network by hand: a config with a "model" object gets
 * its costs.forward/backward/weight (one value per model chunk),
 * memory.activation_bytes/weight_bytes and network.* computed from it
 * (sim/model.c; docs/model.md gives each formula and its source). */

enum { BS_RECOMPUTE_NONE = 0, BS_RECOMPUTE_SELECTIVE = 1, BS_RECOMPUTE_FULL = 2 };
/* Rank order, innermost first: tensor parallelism is always innermost (its
 * group fills a node first); then data parallelism (Megatron's default) or
 * the pipeline. */
enum { BS_ORDER_TP_DP_PP = 0, BS_ORDER_TP_PP_DP = 1 };

typedef struct bs_model {
    int layers, hidden, heads, kv_heads, ffn_hidden;
    int sequence, microbatch_size, vocabulary;
    double bytes_per_element;             /* activations, weights and gradients */
    double optimizer_bytes_per_parameter; /* mixed-precision Adam: 12 */
    int recompute;                        /* BS_RECOMPUTE_* */
    double peak_flops;                    /* per device, FLOP/s */
    double efficiency;                    /* achievable fraction of peak_flops */
    double memory_bandwidth;              /* bytes/s of device memory; 0: compute only */
    double efficiency_half_tokens;        /* rows of a matmul at half efficiency; 0: flat */
    double memory_bytes;                  /* per device; 0 = not given */
    double bandwidth, latency;            /* pipeline link: bytes/s (0 = unlimited), ms */
    double tp_bandwidth, tp_latency;      /* tensor-parallel link */
    int tensor_parallel;                  /* T: devices sharing each layer */
    int data_parallel;                    /* D: replicas of the pipeline */
    int zero_stage;                       /* 0-3: what is sharded over D (ZeRO) */
    int overlap_grad_reduce;              /* reduce each chunk's gradients in buckets as ready */
    int parallel_order;                   /* BS_ORDER_*: how ranks map to nodes */
    int gpus_per_node;                    /* 0: every device on one node */
    double node_bandwidth, node_latency;  /* between nodes: bytes/s (0 = unlimited), ms */
    int balance;                          /* choose the split minimising the slowest chunk */
    int *layers_per_stage;                /* [layers_per_stage_count], NULL: even split */
    size_t layers_per_stage_count;
} bs_model;

/* One model chunk (one layer range) on one of its T devices. */
typedef struct bs_model_chunk {
    int first_layer, layers, device;
    double forward_flops, input_grad_flops, weight_grad_flops; /* one micro-batch */
    double forward_ms, input_grad_ms, weight_grad_ms;          /* compute + TP all-reduces */
    double grad_sync_ms;     /* reduction of the chunk's gradients over D, per iteration */
    double gather_ms;        /* ZeRO-3: all-gather of the chunk's parameters, per F and per B */
    double parameters;       /* this device's share */
    double activation_bytes; /* one micro-batch */
} bs_model_chunk;

/* Static memory of one device of the pipeline (one of its T ranks). */
typedef struct bs_model_device {
    double parameters;
    double weight_bytes, gradient_bytes, optimizer_bytes;
    double activation_bytes; /* one micro-batch through all of the device's chunks */
    double kv_cache_bytes;   /* inference: keys and values of every sequence */
    double buffer_bytes;     /* communication buffers (ZeRO-3 gathers, gradient buckets) */
} bs_model_device;

typedef struct bs_model_plan {
    int chunks, devices, tensor_parallel, training;
    int data_parallel, zero_stage;
    bs_group dp_group; /* the D replicas of one device, laid out over nodes */
    /* One transformer layer, one micro-batch, before division by T. */
    double layer_parameters;
    double layer_forward_flops, layer_input_grad_flops, layer_weight_grad_flops;
    double layer_activation_bytes; /* per device (after division by T) */
    double allreduce_ms;           /* one ring all-reduce of s*b*h elements over T devices */
    double message_bytes;          /* s*b*h*bytes_per_element */
    bs_model_chunk *chunk;         /* [chunks], model order */
    bs_model_device *device;       /* [devices] */
} bs_model_plan;

/* Peak memory of one device in a simulated run: the plan's static bytes
 * plus the simulation's peak activations (and stashed weight versions). */
typedef struct bs_model_memory {
    double activations, weights, gradients, optimizer, stashed_weights, kv_cache, buffers;
    double total;
} bs_model_memory;

void bs_model_init(bs_model *m);
void bs_model_free(bs_model *m);

/* Reads the model keys (model, hardware, tensor_parallel, layers_per_stage,
 * balance) of a config text; a text without "model" is an error. */
int bs_model_parse(bs_model *m, const char *text, const char *source, bs_error *err);

/* Splits the layers over cfg's P*V chunks, places the chunks as cfg's
 * schedule does and computes every figure above. */
int bs_model_plan_compute(bs_model_plan *plan, const bs_model *m, const bs_config *cfg,
                          const char *source, bs_error *err);
void bs_model_plan_free(bs_model_plan *plan);

/* Device that runs model chunk c under cfg (looped, V-shaped or explicit). */
int bs_model_chunk_device(const bs_config *cfg, int chunk);

/* Peak memory of device d in res, a run of cfg planned by plan. */
void bs_model_memory_of(bs_model_memory *out, const bs_model_plan *plan, const bs_result *res,
                        int device);

/* Decode from a model (sim/model_decode.c, docs/inference.md). A decode
 * step of one micro-batch (b sequences) on one chunk at context length c
 * costs max(compute, memory traffic), each plus the chunk's tensor-parallel
 * all-reduces of one token:
 *   compute  FLOPs of one token per sequence over the chunk's layers (2 b
 *            per weight, 4 b c h per layer for attention, the logits on the
 *            last chunk) / (peak_flops * efficiency);
 *   memory   the chunk's weights (without the input embedding, of which a
 *            step reads b rows) + the KV cache read, 2 c b h_kv bytes per
 *            element per layer, / hardware.memory_bandwidth.
 * Fills cfg's decode, decode_per_token, decode_memory,
 * decode_memory_per_token (per chunk), kv_cache_bytes (per device: every
 * sequence's keys and values at the last step's context, prompt + T - 1),
 * sequences_per_microbatch and decode_message_bytes, and sets the plan's
 * kv_cache_bytes to match. With hardware.memory_bytes given, a device whose
 * weights and KV cache do not fit is refused (BS_ERR_INVALID naming the
 * key). plan must be cfg's plan for m. */
int bs_model_decode_costs(bs_config *cfg, const bs_model *m, bs_model_plan *plan,
                          const char *source, bs_error *err);

/* Smallest possible time of the slowest chunk when layers with the given
 * costs are split, in order, into `chunks` non-empty chunks, the first also
 * costing first_extra and the last last_extra; the layer counts go into
 * counts[chunks]. Needs 1 <= chunks <= layers and non-negative costs. */
double bs_partition_balanced(int *counts, const double *layer_cost, int layers, int chunks,
                             double first_extra, double last_extra);

#ifdef __cplusplus
}
#endif

#endif
