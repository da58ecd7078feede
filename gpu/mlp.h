/*
 * mlp.h - the `mlp` workload of `bubblesim verify`, in plain C: sizes, the
 * tensors each op touches, weight versions, and a CPU interpreter that runs
 * a GPU plan with real numbers (tests, dry runs).
 *
 * The model. Every chunk (model stage) is `layers` dense layers of width
 * `hidden` without bias: X_{l+1} = relu(X_l W_l), X_0 the chunk's input,
 * `batch` rows (tokens) per micro-batch, fp32, row-major. The loss is
 * 0.5 * |X_L|^2 of the last chunk's output, so its gradient is X_L itself.
 * Backward of layer l (from l = L-1 down to 0), with G the gradient of X_{l+1}:
 *     dZ_l = G .* (X_{l+1} > 0)      mask
 *     dW_l += X_l^T dZ_l             weight gradient (summed over micro-batches)
 *     dX_l = dZ_l W_l^T              input gradient, G of layer l - 1
 * An op of the program becomes a list of steps (bs_mlp_step) over named
 * tensors (bs_mlp_ref); the CUDA executor and the CPU interpreter below run
 * the same lists, so what the CPU tests check is what the GPU issues.
 *
 * Where tensors live (one tensor = batch * hidden floats, one "message"):
 *  - the chunk's input X_0 is a message buffer: DATA(m) for chunk 0, else
 *    the previous chunk's OUT_F when both chunks sit on one device, else the
 *    receive buffer RECV_F; gradients alike (OUT_B, RECV_B). Message buffers
 *    are allocated once per (chunk, micro-batch), outside the pools;
 *  - the activation of (chunk, micro-batch), allocated from the stage's pool
 *    at the forward and freed at the backward, holds X_1 .. X_L: L tensors.
 *    Where the program splits backwards, the weight gradient also needs the
 *    dZ_l the input gradient computed, so a chunk holds 2L tensors: X_L in
 *    the part freed at the input gradient (TRANSIENT, 1 tensor), and X_1 ..
 *    X_{L-1}, dZ_0 .. dZ_{L-1} in the part kept until the weight gradient
 *    (KEPT, 2L - 1 tensors): memory.kept_fraction = (2L - 1) / 2L;
 *  - forward-only programs keep nothing: layers write to the device's work
 *    tensors, and the last layer also writes OUT_F.
 *
 * Weight versions (programs with BS_PROGRAM_UPDATE_PER_BACKWARD, PipeDream):
 * each chunk's op list, in device order, decides which version every op
 * uses: a forward uses the current version and stashes it; the backward of
 * that micro-batch uses the stashed version, then an SGD step makes a new
 * current version (W_new = W_current - lr * dW of this micro-batch). A
 * version lives in a slot while an in-flight micro-batch refers to it or
 * while it is current; an update writes in place when no micro-batch refers
 * to the current version. So a chunk needs as many slots as it has live
 * versions at its peak: the simulator's weight_versions.
 */
#ifndef BS_GPU_MLP_H
#define BS_GPU_MLP_H

#include "plan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bs_mlp_shape {
    int hidden;    /* layer width */
    int batch;     /* rows (tokens) per micro-batch */
    int layers;    /* dense layers per chunk */
    uint32_t seed; /* inputs and initial weights */
    double lr;     /* SGD step of weight-updating programs */
} bs_mlp_shape;

void bs_mlp_shape_init(bs_mlp_shape *shape); /* 1024, 256, 1, seed 1, lr 1e-3 */

/* Sizes of a shape in a program. `split`: the program has input-gradient
 * ops. */
typedef struct bs_mlp_sizes {
    double tensor_bytes;     /* batch * hidden * 4: one message */
    double weight_bytes;     /* hidden * hidden * 4: one layer's weights */
    int chunk_tensors;       /* L, or 2L where backwards are split */
    double chunk_bytes;      /* one chunk's activation */
    double activation_bytes; /* one micro-batch on one device stage: V chunks */
    double kept_fraction;    /* (2L - 1) / 2L where split, else 0 */
} bs_mlp_sizes;

int bs_mlp_sizes_compute(bs_mlp_sizes *sizes, const bs_mlp_shape *shape, int virtual_stages,
                         int split, bs_error *err);

/* Whether prog has input-gradient ops (a split backward somewhere). */
int bs_mlp_program_splits(const bs_program *prog);

/* Puts the mlp sizes into cfg: memory.activation_bytes, memory.kept_fraction
 * (where split) and network.message_bytes = one tensor. */
int bs_mlp_apply_sizes(bs_config *cfg, const bs_mlp_shape *shape, const bs_program *prog,
                       bs_error *err);

/* ------------------------------------------------------------- versions */

typedef struct bs_mlp_versions {
    int active;            /* the program updates weights per backward */
    uint32_t *version;     /* [op_count]: version the op's weights are (F, B, I, W) */
    uint16_t *slot;        /* [op_count]: slot holding that version */
    uint32_t *new_version; /* [op_count]: after an updating op, the version it makes */
    uint16_t *base_slot;   /* [op_count]: after an updating op, the slot of the version it
                              updates (the current one, which the stashed gradient applies to) */
    uint16_t *new_slot;    /* [op_count]: where it writes the new one (== base_slot: in place) */
    uint32_t *staleness;   /* [op_count]: updates between the forward and this op */
    int *slots;            /* [stages]: slots each chunk needs */
    int max_slots;
    uint32_t max_staleness;
} bs_mlp_versions;

void bs_mlp_versions_init(bs_mlp_versions *v);
void bs_mlp_versions_free(bs_mlp_versions *v);
/* Fills v for prog (inactive, all slot 0, unless prog updates per backward). */
int bs_mlp_versions_build(bs_mlp_versions *v, const bs_program *prog, bs_error *err);

/* ---------------------------------------------------------------- steps */

typedef enum bs_mlp_buf {
    BS_MLP_NONE = 0,
    BS_MLP_DATA,    /* mb: chunk 0's input of micro-batch mb */
    BS_MLP_OUT_F,   /* stage, mb: the chunk's output, sent forward */
    BS_MLP_RECV_F,  /* stage, mb: the chunk's input as received */
    BS_MLP_OUT_B,   /* stage, mb: gradient of the chunk's input, sent backward */
    BS_MLP_RECV_B,  /* stage, mb: gradient of the chunk's output as received */
    BS_MLP_ACT,     /* stage, mb, part, index: tensor `index` of the activation part */
    BS_MLP_WEIGHT,  /* stage = chunk, mb = slot, index = layer */
    BS_MLP_GRAD,    /* stage = chunk, index = layer: summed weight gradient */
    BS_MLP_GRAD_MB, /* stage = chunk, index = layer: this micro-batch's (updating programs) */
    BS_MLP_WORK     /* stage = device, index 0..BS_MLP_WORK_TENSORS-1 */
} bs_mlp_buf;

#define BS_MLP_WORK_TENSORS 5

typedef struct bs_mlp_ref {
    uint8_t buf, part;
    uint16_t stage;
    uint32_t mb, index;
} bs_mlp_ref;

typedef enum bs_mlp_step_kind {
    BS_MLP_STEP_FORWARD = 0,   /* c = relu(a b) (and c2 = c when c2 is set); a batch x H */
    BS_MLP_STEP_MASK = 1,      /* c = a .* (b > 0) */
    BS_MLP_STEP_INPUT = 2,     /* c = a b^T */
    BS_MLP_STEP_WGRAD_ADD = 3, /* c += a^T b (H x H) */
    BS_MLP_STEP_WGRAD_SET = 4, /* c = a^T b */
    BS_MLP_STEP_SGD = 5,       /* c = a - lr * b, then the tag of c's slot = value */
    BS_MLP_STEP_TAG = 6        /* used[value] = tag of a's slot (which version it holds) */
} bs_mlp_step_kind;

typedef struct bs_mlp_step {
    uint8_t kind;
    bs_mlp_ref a, b, c, c2;
    uint32_t value;
} bs_mlp_step;

/* What the expansion needs to know about the program. */
typedef struct bs_mlp_layout {
    int layers, chunk_tensors;
    int stages;
    const uint16_t *stage_device; /* NULL: every chunk on one device (the reference) */
    const uint8_t *pair_split;    /* [stages * mbs]: backward split; NULL: none */
    uint32_t microbatches;
    int keep; /* activations kept (not forward-only) */
} bs_mlp_layout;

/* Most steps one op expands into. */
static inline size_t bs_mlp_max_steps(int layers)
{
    return 5 * (size_t)layers + 4;
}

/* Lays out prog; pair_split is allocated here (free with bs_mlp_layout_free). */
int bs_mlp_layout_build(bs_mlp_layout *lay, const bs_program *prog, const bs_mlp_shape *shape,
                        bs_error *err);
void bs_mlp_layout_free(bs_mlp_layout *lay);

/* The steps of op (index op_index of its program) into steps (room for
 * bs_mlp_max_steps); v may be NULL or inactive (slot 0, no update). An
 * optimizer op has no steps. */
size_t bs_mlp_expand(const bs_mlp_layout *lay, const bs_op *op, uint32_t op_index,
                     const bs_mlp_versions *v, bs_mlp_step *steps);

/* The tensors a copy moves: producer's output to the consumer's receive
 * buffer. */
void bs_mlp_copy_refs(const bs_op *producer, bs_mlp_ref *from, bs_mlp_ref *to);

/* ------------------------------------------------------------- numerics */

typedef struct bs_mlp_numerics {
    int checked; /* 0: not run (too large for the CPU in a dry run) */
    char why_not[160];
    int chunks;
    double *max_rel_err; /* [chunks]: max |dW - dW_ref| / max |dW_ref| (synchronous) */
    double worst_rel_err;
    double grad_scale; /* largest |reference gradient|: shows they are not all zero */
    int versioned;     /* PipeDream: versions instead of gradients */
    uint32_t pairs;
    uint32_t *forward_version;  /* [pairs]: version the forward of (chunk, mb) read */
    uint32_t *backward_version; /* [pairs]: version its backward (or I) read */
    uint32_t *expected_version; /* [pairs]: from bs_mlp_versions */
    int stash_ok;               /* every backward read its forward's version */
} bs_mlp_numerics;

void bs_mlp_numerics_init(bs_mlp_numerics *n);
void bs_mlp_numerics_free(bs_mlp_numerics *n);
int bs_mlp_numerics_reserve(bs_mlp_numerics *n, int chunks, uint32_t pairs, bs_error *err);
/* Fills the versions part of n from per-op tag reads (used[op], UINT32_MAX
 * where none) and sets stash_ok. */
void bs_mlp_numerics_versions(bs_mlp_numerics *n, const bs_program *prog, const bs_mlp_versions *v,
                              const uint32_t *used);
/* max |got - want| / max |want| over count values (max |got - want| when
 * want is all zero); *scale (may be NULL) gets max |want|. */
double bs_mlp_rel_err(const float *got, const float *want, size_t count, double *scale);

/* Op k (0 .. 2 * stages * mbs - 1) of the reference order: micro-batches
 * one after another, each forward through every chunk, then backward
 * through every chunk, on one device and without a pipeline. It is run with
 * a layout whose stage_device and pair_split are NULL. */
bs_op bs_mlp_reference_op(int stages, uint32_t k);

/* Runs plan with real numbers on the CPU in issue order (a valid order of
 * the GPU run), then the reference, and fills n. Refuses above `max_flops`
 * floating point operations in all (a dry run must stay quick). An
 * activation read after its free, or never allocated, is BS_ERR_INTERNAL. */
int bs_mlp_cpu_check(bs_mlp_numerics *n, const bs_gpu_plan *plan, const bs_program *prog,
                     const bs_mlp_shape *shape, double max_flops, bs_error *err);

/* Plain C reference kernels, row-major; used by the interpreter and the
 * tests. x: rows x k, w: k x n. */
void bs_mlp_ref_forward(float *y, const float *x, const float *w, int rows, int k, int n);
void bs_mlp_ref_mask(float *dz, const float *g, const float *y, size_t count);
void bs_mlp_ref_input_grad(float *dx, const float *dz, const float *w, int rows, int k, int n);
void bs_mlp_ref_weight_grad(float *dw, const float *x, const float *dz, int rows, int k, int n,
                            int accumulate);

/* Deterministic fill: uniform in [-scale, scale] from (seed, stream, index),
 * the same bits on the CPU and in a CUDA kernel. Streams: chunk c's layer l
 * weights are BS_MLP_WEIGHT_STREAM(c, l), micro-batch m's input is m. */
#ifdef __CUDACC__
#define BS_MLP_HD __host__ __device__
#else
#define BS_MLP_HD
#endif
#define BS_MLP_WEIGHT_STREAM(c, l) (0x80000000u + (uint32_t)(c)*4096u + (uint32_t)(l))
static inline BS_MLP_HD float bs_mlp_random(uint32_t seed, uint32_t stream, uint32_t index,
                                            float scale)
{
    uint32_t h = seed * 0x9E3779B1u ^ stream * 0x85EBCA77u ^ index * 0xC2B2AE3Du;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    return ((float)(h >> 8) * (1.0f / 8388608.0f) - 1.0f) * scale;
}
/* Initial weight scale: He uniform for relu layers, sqrt(6 / hidden). */
float bs_mlp_weight_scale(int hidden);

#ifdef __cplusplus
}
#endif

#endif
