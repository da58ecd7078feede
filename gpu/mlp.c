/*
 * mlp.c - the mlp workload's plain-C half (see mlp.h for the model and where
 * its tensors live): sizes, the steps of each op, weight versions, and a CPU
 * interpreter that runs a GPU plan in issue order with real numbers.
 *
 * Invariant the interpreter checks while it runs: every step reads only
 * tensors that exist at that point of the plan (an activation part between
 * its ALLOC and its FREE), so a plan or layout that frees too early fails
 * here, on the CPU, before any GPU sees it.
 */
#include "mlp.h"

#include "internal.h"

#include <math.h>
#include <string.h>

void bs_mlp_shape_init(bs_mlp_shape *shape)
{
    shape->hidden = 1024;
    shape->batch = 256;
    shape->layers = 1;
    shape->seed = 1;
    shape->lr = 1e-3;
}

float bs_mlp_weight_scale(int hidden)
{
    return (float)sqrt(6.0 / hidden);
}

int bs_mlp_sizes_compute(bs_mlp_sizes *sizes, const bs_mlp_shape *shape, int virtual_stages,
                         int split, bs_error *err)
{
    if (shape->hidden < 1 || shape->batch < 1 || shape->layers < 1 || shape->layers > 1024 ||
        virtual_stages < 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "gpu.mlp: hidden, batch and layers_per_chunk must be at least 1 "
                       "(layers_per_chunk at most 1024)");
    sizes->tensor_bytes = (double)shape->batch * shape->hidden * 4.0;
    sizes->weight_bytes = (double)shape->hidden * shape->hidden * 4.0;
    sizes->chunk_tensors = split ? 2 * shape->layers : shape->layers;
    sizes->chunk_bytes = sizes->chunk_tensors * sizes->tensor_bytes;
    sizes->activation_bytes = virtual_stages * sizes->chunk_bytes;
    sizes->kept_fraction = split ? (2.0 * shape->layers - 1.0) / (2.0 * shape->layers) : 0.0;
    return BS_OK;
}

int bs_mlp_program_splits(const bs_program *prog)
{
    for (size_t i = 0; i < prog->op_count; i++)
        if (prog->ops[i].kind == BS_OP_INPUT_GRAD)
            return 1;
    return 0;
}

int bs_mlp_apply_sizes(bs_config *cfg, const bs_mlp_shape *shape, const bs_program *prog,
                       bs_error *err)
{
    bs_mlp_sizes sz;
    int split = bs_mlp_program_splits(prog);
    int rc = bs_mlp_sizes_compute(&sz, shape, prog->chunks_per_device, split, err);
    if (rc)
        return rc;
    cfg->activation_bytes = sz.activation_bytes;
    cfg->message_bytes = sz.tensor_bytes;
    if (split)
        cfg->kept_fraction = sz.kept_fraction;
    return BS_OK;
}

/* ------------------------------------------------------------- versions */

void bs_mlp_versions_init(bs_mlp_versions *v)
{
    memset(v, 0, sizeof *v);
}

void bs_mlp_versions_free(bs_mlp_versions *v)
{
    bs_free(v->version);
    bs_free(v->slot);
    bs_free(v->new_version);
    bs_free(v->new_slot);
    bs_free(v->base_slot);
    bs_free(v->staleness);
    bs_free(v->slots);
    bs_mlp_versions_init(v);
}

/* One pass per chunk over its device's ops, in device order. Per chunk:
 * refs[version] counts in-flight micro-batches, slot_of[version] and a slot
 * free list. Versions of a chunk are at most its backward count + 1. */
int bs_mlp_versions_build(bs_mlp_versions *v, const bs_program *prog, bs_error *err)
{
    size_t n = prog->op_count ? prog->op_count : 1, stages = (size_t)prog->stages;
    size_t mbs = prog->microbatches ? prog->microbatches : 1;
    uint32_t *refs = NULL, *slot_of = NULL, *fwd_version = NULL;
    uint8_t *slot_used = NULL;
    int rc = BS_OK;
    bs_mlp_versions_free(v);
    v->active = (prog->flags & BS_PROGRAM_UPDATE_PER_BACKWARD) != 0;
    if (!(v->version = bs_zalloc_array(n, sizeof *v->version)) ||
        !(v->slot = bs_zalloc_array(n, sizeof *v->slot)) ||
        !(v->new_version = bs_zalloc_array(n, sizeof *v->new_version)) ||
        !(v->new_slot = bs_zalloc_array(n, sizeof *v->new_slot)) ||
        !(v->base_slot = bs_zalloc_array(n, sizeof *v->base_slot)) ||
        !(v->staleness = bs_zalloc_array(n, sizeof *v->staleness)) ||
        !(v->slots = bs_zalloc_array(stages ? stages : 1, sizeof *v->slots)) ||
        !(refs = bs_alloc_array(mbs + 2, sizeof *refs)) ||
        !(slot_of = bs_alloc_array(mbs + 2, sizeof *slot_of)) ||
        !(fwd_version = bs_alloc_array(mbs, sizeof *fwd_version)) ||
        !(slot_used = bs_alloc_array(mbs + 2, 1))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for weight versions");
        goto error;
    }
    v->max_slots = 1;
    v->max_staleness = 0;
    for (size_t s = 0; s < stages; s++)
        v->slots[s] = 1;
    if (!v->active)
        goto error; /* success: every op on version 0 in slot 0 */
    for (int s = 0; s < prog->stages; s++) {
        int d = prog->stage_device[s];
        uint32_t current = 0, versions = 1;
        int live_slots = 1, peak = 1;
        memset(slot_used, 0, mbs + 2);
        refs[0] = 0;
        slot_of[0] = 0;
        slot_used[0] = 1;
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            const bs_op *op = &prog->ops[i];
            if (op->stage != s || op->kind == BS_OP_OPTIMIZER)
                continue;
            uint32_t m = op->microbatch, used;
            if (m >= mbs) {
                rc = bs_fail(err, BS_ERR_INTERNAL, "weight versions: micro-batch %u of %zu",
                             (unsigned)m, mbs);
                goto error;
            }
            if (op->kind == BS_OP_FORWARD) {
                fwd_version[m] = used = current;
                refs[current]++;
            } else {
                used = fwd_version[m];
            }
            v->version[i] = used;
            v->slot[i] = (uint16_t)slot_of[used];
            v->staleness[i] = current - used;
            if (current - used > v->max_staleness)
                v->max_staleness = current - used;
            /* The op that ends the micro-batch's backward releases its
             * version and updates the weights. */
            int ends = op->kind == BS_OP_BACKWARD || op->kind == BS_OP_WEIGHT_GRAD;
            if (!ends)
                continue;
            refs[used]--;
            if (used != current && refs[used] == 0) {
                slot_used[slot_of[used]] = 0;
                live_slots--;
            }
            if (versions >= mbs + 2) {
                rc = bs_fail(err, BS_ERR_INTERNAL, "weight versions: more than %zu", mbs + 1);
                goto error;
            }
            uint32_t next = versions++, where;
            if (refs[current] == 0) {
                where = slot_of[current]; /* nobody needs the current one: in place */
            } else {
                where = 0;
                while (slot_used[where])
                    where++;
                slot_used[where] = 1;
                live_slots++;
            }
            slot_of[next] = where;
            refs[next] = 0;
            v->new_version[i] = next;
            v->base_slot[i] = (uint16_t)slot_of[current];
            v->new_slot[i] = (uint16_t)where;
            current = next;
            if (live_slots > peak)
                peak = live_slots;
        }
        v->slots[s] = peak;
        if (peak > v->max_slots)
            v->max_slots = peak;
    }
error:
    bs_free(refs);
    bs_free(slot_of);
    bs_free(fwd_version);
    bs_free(slot_used);
    return rc;
}

/* ---------------------------------------------------------------- steps */

int bs_mlp_layout_build(bs_mlp_layout *lay, const bs_program *prog, const bs_mlp_shape *shape,
                        bs_error *err)
{
    size_t pairs = (size_t)prog->stages * prog->microbatches;
    memset(lay, 0, sizeof *lay);
    lay->layers = shape->layers;
    lay->stages = prog->stages;
    lay->stage_device = prog->stage_device;
    lay->microbatches = prog->microbatches;
    lay->keep = !(prog->flags & BS_PROGRAM_FORWARD_ONLY);
    int split = bs_mlp_program_splits(prog);
    lay->chunk_tensors = split ? 2 * shape->layers : shape->layers;
    if (!split)
        return BS_OK;
    uint8_t *ps = bs_zalloc_array(pairs ? pairs : 1, 1);
    if (!ps)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory laying out the mlp");
    for (size_t i = 0; i < prog->op_count; i++)
        if (prog->ops[i].kind == BS_OP_INPUT_GRAD)
            ps[(size_t)prog->ops[i].stage * prog->microbatches + prog->ops[i].microbatch] = 1;
    lay->pair_split = ps;
    return BS_OK;
}

void bs_mlp_layout_free(bs_mlp_layout *lay)
{
    bs_free((void *)lay->pair_split);
    memset(lay, 0, sizeof *lay);
}

static bs_mlp_ref mkref(int buf, int stage, uint32_t mb, int part, uint32_t index)
{
    bs_mlp_ref r;
    r.buf = (uint8_t)buf;
    r.part = (uint8_t)part;
    r.stage = (uint16_t)stage;
    r.mb = mb;
    r.index = index;
    return r;
}

static int same_device(const bs_mlp_layout *lay, int a, int b)
{
    return !lay->stage_device || lay->stage_device[a] == lay->stage_device[b];
}

static int device_of(const bs_mlp_layout *lay, int s)
{
    return lay->stage_device ? lay->stage_device[s] : 0;
}

static int pair_is_split(const bs_mlp_layout *lay, int s, uint32_t m)
{
    return lay->pair_split && lay->pair_split[(size_t)s * lay->microbatches + m];
}

/* X_l of (s, m), l = 0 .. L. */
static bs_mlp_ref x_ref(const bs_mlp_layout *lay, int s, uint32_t m, int l)
{
    int L = lay->layers;
    if (l == 0) {
        if (s == 0)
            return mkref(BS_MLP_DATA, 0, m, 0, 0);
        return same_device(lay, s - 1, s) ? mkref(BS_MLP_OUT_F, s - 1, m, 0, 0)
                                          : mkref(BS_MLP_RECV_F, s, m, 0, 0);
    }
    if (!lay->keep)
        return mkref(BS_MLP_WORK, device_of(lay, s), 0, 0, (uint32_t)((l - 1) % 2));
    if (!pair_is_split(lay, s, m))
        return mkref(BS_MLP_ACT, s, m, BS_GPU_PART_WHOLE, (uint32_t)(l - 1));
    if (l == L)
        return mkref(BS_MLP_ACT, s, m, BS_GPU_PART_TRANSIENT, 0);
    return mkref(BS_MLP_ACT, s, m, BS_GPU_PART_KEPT, (uint32_t)(l - 1));
}

/* dZ_l: kept where the backward is split, else the device's work tensor. */
static bs_mlp_ref dz_ref(const bs_mlp_layout *lay, int s, uint32_t m, int l)
{
    if (pair_is_split(lay, s, m))
        return mkref(BS_MLP_ACT, s, m, BS_GPU_PART_KEPT, (uint32_t)(lay->layers - 1 + l));
    return mkref(BS_MLP_WORK, device_of(lay, s), 0, 0, 2);
}

/* Gradient of the chunk's output. */
static bs_mlp_ref g_in_ref(const bs_mlp_layout *lay, int s, uint32_t m)
{
    if (s + 1 == lay->stages)
        return x_ref(lay, s, m, lay->layers); /* loss 0.5 |X_L|^2 */
    return same_device(lay, s, s + 1) ? mkref(BS_MLP_OUT_B, s + 1, m, 0, 0)
                                      : mkref(BS_MLP_RECV_B, s, m, 0, 0);
}

static bs_mlp_step step(int kind, bs_mlp_ref a, bs_mlp_ref b, bs_mlp_ref c)
{
    bs_mlp_step st;
    memset(&st, 0, sizeof st);
    st.kind = (uint8_t)kind;
    st.a = a;
    st.b = b;
    st.c = c;
    return st;
}

size_t bs_mlp_expand(const bs_mlp_layout *lay, const bs_op *op, uint32_t op_index,
                     const bs_mlp_versions *v, bs_mlp_step *steps)
{
    int s = op->stage, L = lay->layers, dev = device_of(lay, s);
    uint32_t m = op->microbatch;
    int versioned = v && v->active;
    uint32_t slot = versioned ? v->slot[op_index] : 0;
    size_t n = 0;
    bs_mlp_ref none = mkref(BS_MLP_NONE, 0, 0, 0, 0);
    if (op->kind == BS_OP_OPTIMIZER)
        return 0;
    if (versioned) {
        steps[n] = step(BS_MLP_STEP_TAG, mkref(BS_MLP_WEIGHT, s, slot, 0, 0), none, none);
        steps[n++].value = op_index;
    }
    if (op->kind == BS_OP_FORWARD) {
        for (int l = 0; l < L; l++) {
            steps[n] = step(BS_MLP_STEP_FORWARD, x_ref(lay, s, m, l),
                            mkref(BS_MLP_WEIGHT, s, slot, 0, (uint32_t)l), x_ref(lay, s, m, l + 1));
            steps[n].c2 =
                l == L - 1 && s + 1 < lay->stages ? mkref(BS_MLP_OUT_F, s, m, 0, 0) : none;
            n++;
        }
        return n;
    }
    int updates = versioned && (op->kind == BS_OP_BACKWARD || op->kind == BS_OP_WEIGHT_GRAD);
    if (op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) {
        bs_mlp_ref g = g_in_ref(lay, s, m);
        for (int l = L - 1; l >= 0; l--) {
            bs_mlp_ref dz = dz_ref(lay, s, m, l), w = mkref(BS_MLP_WEIGHT, s, slot, 0, (uint32_t)l);
            steps[n++] = step(BS_MLP_STEP_MASK, g, x_ref(lay, s, m, l + 1), dz);
            if (op->kind == BS_OP_BACKWARD)
                steps[n++] = updates ? step(BS_MLP_STEP_WGRAD_SET, x_ref(lay, s, m, l), dz,
                                            mkref(BS_MLP_GRAD_MB, s, 0, 0, (uint32_t)l))
                                     : step(BS_MLP_STEP_WGRAD_ADD, x_ref(lay, s, m, l), dz,
                                            mkref(BS_MLP_GRAD, s, 0, 0, (uint32_t)l));
            /* dX_0 of chunk 0 has no reader but is computed all the same,
             * so that every chunk costs the same. */
            bs_mlp_ref dx = l == 0 && s > 0 ? mkref(BS_MLP_OUT_B, s, m, 0, 0)
                                            : mkref(BS_MLP_WORK, dev, 0, 0, 3u + (uint32_t)(l % 2));
            steps[n++] = step(BS_MLP_STEP_INPUT, dz, w, dx);
            g = dx;
        }
    } else if (op->kind == BS_OP_WEIGHT_GRAD) {
        for (int l = L - 1; l >= 0; l--)
            steps[n++] =
                updates ? step(BS_MLP_STEP_WGRAD_SET, x_ref(lay, s, m, l), dz_ref(lay, s, m, l),
                               mkref(BS_MLP_GRAD_MB, s, 0, 0, (uint32_t)l))
                        : step(BS_MLP_STEP_WGRAD_ADD, x_ref(lay, s, m, l), dz_ref(lay, s, m, l),
                               mkref(BS_MLP_GRAD, s, 0, 0, (uint32_t)l));
    }
    if (updates) {
        /* PipeDream: the gradient computed with the stashed version
         * updates the current version, in place or into a free slot. */
        for (int l = 0; l < L; l++) {
            steps[n] = step(BS_MLP_STEP_SGD,
                            mkref(BS_MLP_WEIGHT, s, v->base_slot[op_index], 0, (uint32_t)l),
                            mkref(BS_MLP_GRAD_MB, s, 0, 0, (uint32_t)l),
                            mkref(BS_MLP_WEIGHT, s, v->new_slot[op_index], 0, (uint32_t)l));
            steps[n++].value = v->new_version[op_index];
        }
    }
    return n;
}

void bs_mlp_copy_refs(const bs_op *producer, bs_mlp_ref *from, bs_mlp_ref *to)
{
    int s = producer->stage;
    uint32_t m = producer->microbatch;
    if (producer->kind == BS_OP_FORWARD) {
        *from = mkref(BS_MLP_OUT_F, s, m, 0, 0);
        *to = mkref(BS_MLP_RECV_F, s + 1, m, 0, 0);
    } else {
        *from = mkref(BS_MLP_OUT_B, s, m, 0, 0);
        *to = mkref(BS_MLP_RECV_B, s > 0 ? s - 1 : 0, m, 0, 0);
    }
}

bs_op bs_mlp_reference_op(int stages, uint32_t k)
{
    bs_op op;
    uint32_t j = k % (2u * (uint32_t)stages);
    memset(&op, 0, sizeof op);
    op.microbatch = k / (2u * (uint32_t)stages);
    op.kind = j < (uint32_t)stages ? BS_OP_FORWARD : BS_OP_BACKWARD;
    op.stage = (uint16_t)(j < (uint32_t)stages ? j : 2u * (uint32_t)stages - 1 - j);
    return op;
}

/* ------------------------------------------------------------- numerics */

void bs_mlp_numerics_init(bs_mlp_numerics *n)
{
    memset(n, 0, sizeof *n);
}

void bs_mlp_numerics_free(bs_mlp_numerics *n)
{
    bs_free(n->max_rel_err);
    bs_free(n->forward_version);
    bs_free(n->backward_version);
    bs_free(n->expected_version);
    bs_mlp_numerics_init(n);
}

int bs_mlp_numerics_reserve(bs_mlp_numerics *n, int chunks, uint32_t pairs, bs_error *err)
{
    bs_mlp_numerics_free(n);
    n->chunks = chunks;
    n->pairs = pairs;
    if (!(n->max_rel_err = bs_zalloc_array(chunks > 0 ? (size_t)chunks : 1, sizeof(double))) ||
        !(n->forward_version = bs_zalloc_array(pairs ? pairs : 1, sizeof(uint32_t))) ||
        !(n->backward_version = bs_zalloc_array(pairs ? pairs : 1, sizeof(uint32_t))) ||
        !(n->expected_version = bs_zalloc_array(pairs ? pairs : 1, sizeof(uint32_t))))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for the mlp numerics");
    return BS_OK;
}

void bs_mlp_numerics_versions(bs_mlp_numerics *n, const bs_program *prog, const bs_mlp_versions *v,
                              const uint32_t *used)
{
    n->versioned = v->active;
    n->stash_ok = 1;
    if (!v->active)
        return;
    for (size_t i = 0; i < prog->op_count; i++) {
        const bs_op *op = &prog->ops[i];
        size_t pair = (size_t)op->stage * prog->microbatches + op->microbatch;
        if (op->kind == BS_OP_FORWARD) {
            n->forward_version[pair] = used[i];
            n->expected_version[pair] = v->version[i];
        } else if (op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) {
            n->backward_version[pair] = used[i];
        }
    }
    for (uint32_t k = 0; k < n->pairs; k++)
        if (n->forward_version[k] != n->expected_version[k] ||
            n->backward_version[k] != n->expected_version[k])
            n->stash_ok = 0;
}

double bs_mlp_rel_err(const float *got, const float *want, size_t count, double *scale_out)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - (double)want[i]), w = fabs((double)want[i]);
        diff = d > diff ? d : diff;
        scale = w > scale ? w : scale;
    }
    if (scale_out)
        *scale_out = scale;
    return scale > 0 ? diff / scale : diff;
}

/* ------------------------------------------------------ CPU reference math */

void bs_mlp_ref_forward(float *y, const float *x, const float *w, int rows, int k, int n)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) {
            float acc = 0;
            for (int i = 0; i < k; i++)
                acc += x[(size_t)r * k + i] * w[(size_t)i * n + j];
            y[(size_t)r * n + j] = acc > 0 ? acc : 0;
        }
}

void bs_mlp_ref_mask(float *dz, const float *g, const float *y, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dz[i] = y[i] > 0 ? g[i] : 0.0f;
}

/* dx (rows x k) = dz (rows x n) w^T, w being k x n. */
void bs_mlp_ref_input_grad(float *dx, const float *dz, const float *w, int rows, int k, int n)
{
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < k; i++) {
            float acc = 0;
            for (int j = 0; j < n; j++)
                acc += dz[(size_t)r * n + j] * w[(size_t)i * n + j];
            dx[(size_t)r * k + i] = acc;
        }
}

/* dw (k x n) (+)= x^T (k x rows) dz (rows x n). */
void bs_mlp_ref_weight_grad(float *dw, const float *x, const float *dz, int rows, int k, int n,
                            int accumulate)
{
    for (int i = 0; i < k; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0;
            for (int r = 0; r < rows; r++)
                acc += x[(size_t)r * k + i] * dz[(size_t)r * n + j];
            dw[(size_t)i * n + j] = accumulate ? dw[(size_t)i * n + j] + acc : acc;
        }
}

/* --------------------------------------------------------- CPU interpreter */

typedef struct cpu_state {
    const bs_mlp_shape *shape;
    int stages, devices, slots, layers;
    uint32_t mbs;
    size_t t, wn; /* floats per tensor, per layer's weights */
    float *data, *out_f, *recv_f, *out_b, *recv_b;
    float **act;      /* [pairs * 3] */
    size_t *act_size; /* floats */
    float *weight, *grad, *grad_mb, *work;
    uint32_t *tag; /* [stages * slots] */
    uint32_t *used;
} cpu_state;

static float *resolve(cpu_state *st, const bs_mlp_ref *r)
{
    size_t sm = (size_t)r->stage * st->mbs + r->mb;
    switch (r->buf) {
    case BS_MLP_DATA:
        return r->mb < st->mbs ? st->data + (size_t)r->mb * st->t : NULL;
    case BS_MLP_OUT_F:
        return st->out_f + sm * st->t;
    case BS_MLP_RECV_F:
        return st->recv_f + sm * st->t;
    case BS_MLP_OUT_B:
        return st->out_b + sm * st->t;
    case BS_MLP_RECV_B:
        return st->recv_b + sm * st->t;
    case BS_MLP_ACT: {
        size_t k = sm * 3 + r->part;
        if (!st->act[k] || ((size_t)r->index + 1) * st->t > st->act_size[k])
            return NULL;
        return st->act[k] + (size_t)r->index * st->t;
    }
    case BS_MLP_WEIGHT:
        if ((int)r->mb >= st->slots || (int)r->index >= st->layers)
            return NULL;
        return st->weight +
               (((size_t)r->stage * (size_t)st->slots + r->mb) * (size_t)st->layers + r->index) *
                   st->wn;
    case BS_MLP_GRAD:
        return st->grad + ((size_t)r->stage * (size_t)st->layers + r->index) * st->wn;
    case BS_MLP_GRAD_MB:
        return st->grad_mb + ((size_t)r->stage * (size_t)st->layers + r->index) * st->wn;
    case BS_MLP_WORK:
        return r->index < BS_MLP_WORK_TENSORS && r->stage < st->devices
                   ? st->work + ((size_t)r->stage * BS_MLP_WORK_TENSORS + r->index) * st->t
                   : NULL;
    default:
        return NULL;
    }
}

static int run_steps(cpu_state *st, const bs_mlp_step *steps, size_t count, const bs_op *op,
                     bs_error *err)
{
    int b = st->shape->batch, h = st->shape->hidden;
    for (size_t k = 0; k < count; k++) {
        const bs_mlp_step *s = &steps[k];
        float *a = resolve(st, &s->a), *bb = NULL, *c = NULL, *c2 = NULL;
        if (s->kind != BS_MLP_STEP_TAG) {
            bb = resolve(st, &s->b);
            c = resolve(st, &s->c);
        }
        if (s->c2.buf != BS_MLP_NONE)
            c2 = resolve(st, &s->c2);
        if (!a || (s->kind != BS_MLP_STEP_TAG && (!bb || !c)) || (s->c2.buf && !c2)) {
            char text[48];
            return bs_fail(err, BS_ERR_INTERNAL,
                           "mlp: step %zu of %s reads or writes a tensor that does not exist "
                           "at that point (an activation freed early or never allocated)",
                           k, bs_op_format(op, text, sizeof text));
        }
        switch (s->kind) {
        case BS_MLP_STEP_FORWARD:
            bs_mlp_ref_forward(c, a, bb, b, h, h);
            if (c2)
                memcpy(c2, c, st->t * sizeof *c2);
            break;
        case BS_MLP_STEP_MASK:
            bs_mlp_ref_mask(c, a, bb, st->t);
            break;
        case BS_MLP_STEP_INPUT:
            bs_mlp_ref_input_grad(c, a, bb, b, h, h);
            break;
        case BS_MLP_STEP_WGRAD_ADD:
        case BS_MLP_STEP_WGRAD_SET:
            bs_mlp_ref_weight_grad(c, a, bb, b, h, h, s->kind == BS_MLP_STEP_WGRAD_ADD);
            break;
        case BS_MLP_STEP_SGD:
            for (size_t i = 0; i < st->wn; i++)
                c[i] = a[i] - (float)st->shape->lr * bb[i];
            st->tag[(size_t)s->c.stage * (size_t)st->slots + s->c.mb] = s->value;
            break;
        case BS_MLP_STEP_TAG:
            st->used[s->value] = st->tag[(size_t)s->a.stage * (size_t)st->slots + s->a.mb];
            break;
        default:
            return bs_fail(err, BS_ERR_INTERNAL, "mlp: unknown step %u", s->kind);
        }
    }
    return BS_OK;
}

static int cpu_alloc(cpu_state *st, size_t k, double bytes, bs_error *err)
{
    size_t floats = (size_t)llround(bytes / 4.0);
    if (st->act[k])
        return bs_fail(err, BS_ERR_INTERNAL, "mlp: activation part allocated twice");
    if (!(st->act[k] = bs_zalloc_array(floats ? floats : 1, sizeof(float))))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for an activation");
    st->act_size[k] = floats;
    return BS_OK;
}

static void cpu_release(cpu_state *st, size_t k)
{
    bs_free(st->act[k]);
    st->act[k] = NULL;
    st->act_size[k] = 0;
}

static void cpu_init_values(cpu_state *st)
{
    float scale = bs_mlp_weight_scale(st->shape->hidden);
    for (uint32_t m = 0; m < st->mbs; m++)
        for (size_t i = 0; i < st->t; i++)
            st->data[(size_t)m * st->t + i] = bs_mlp_random(st->shape->seed, m, (uint32_t)i, 1.0f);
    for (int c = 0; c < st->stages; c++)
        for (int l = 0; l < st->layers; l++) {
            float *w = st->weight +
                       ((size_t)c * (size_t)st->slots * (size_t)st->layers + (size_t)l) * st->wn;
            for (size_t i = 0; i < st->wn; i++)
                w[i] =
                    bs_mlp_random(st->shape->seed, BS_MLP_WEIGHT_STREAM(c, l), (uint32_t)i, scale);
        }
    memset(st->tag, 0, (size_t)st->stages * (size_t)st->slots * sizeof *st->tag);
}

int bs_mlp_cpu_check(bs_mlp_numerics *n, const bs_gpu_plan *plan, const bs_program *prog,
                     const bs_mlp_shape *shape, double max_flops, bs_error *err)
{
    cpu_state st;
    bs_mlp_layout lay, ref_lay;
    bs_mlp_versions ver;
    bs_mlp_step *steps = NULL;
    float *ref_grad = NULL;
    int rc;
    size_t pairs = (size_t)prog->stages * prog->microbatches;
    memset(&st, 0, sizeof st);
    memset(&lay, 0, sizeof lay);
    bs_mlp_versions_init(&ver);
    if ((rc = bs_mlp_numerics_reserve(n, prog->stages, (uint32_t)pairs, err)))
        return rc;
    double flops = 6.0 * shape->batch * (double)shape->hidden * shape->hidden * shape->layers *
                   (double)pairs * 2.0;
    if (flops > max_flops) {
        snprintf(n->why_not, sizeof n->why_not,
                 "about %.3g flops, more than the %.3g a CPU check allows; lower gpu.mlp.hidden "
                 "or gpu.mlp.batch",
                 flops, max_flops);
        return BS_OK;
    }
    if ((rc = bs_mlp_layout_build(&lay, prog, shape, err)) ||
        (rc = bs_mlp_versions_build(&ver, prog, err)))
        goto error;
    st.shape = shape;
    st.stages = prog->stages;
    st.devices = prog->devices;
    st.slots = ver.max_slots;
    st.layers = shape->layers;
    st.mbs = prog->microbatches;
    st.t = (size_t)shape->batch * (size_t)shape->hidden;
    st.wn = (size_t)shape->hidden * (size_t)shape->hidden;
    size_t gw = (size_t)prog->stages * (size_t)shape->layers * st.wn;
    if (!(st.data = bs_zalloc_array(st.mbs * st.t + 1, sizeof(float))) ||
        !(st.out_f = bs_zalloc_array(pairs * st.t + 1, sizeof(float))) ||
        !(st.recv_f = bs_zalloc_array(pairs * st.t + 1, sizeof(float))) ||
        !(st.out_b = bs_zalloc_array(pairs * st.t + 1, sizeof(float))) ||
        !(st.recv_b = bs_zalloc_array(pairs * st.t + 1, sizeof(float))) ||
        !(st.act = bs_zalloc_array(3 * pairs + 1, sizeof *st.act)) ||
        !(st.act_size = bs_zalloc_array(3 * pairs + 1, sizeof *st.act_size)) ||
        !(st.weight = bs_zalloc_array((size_t)st.slots * gw + 1, sizeof(float))) ||
        !(st.grad = bs_zalloc_array(gw + 1, sizeof(float))) ||
        !(ref_grad = bs_zalloc_array(gw + 1, sizeof(float))) ||
        !(st.grad_mb = bs_zalloc_array(gw + 1, sizeof(float))) ||
        !(st.work = bs_zalloc_array((size_t)st.devices * BS_MLP_WORK_TENSORS * st.t + 1,
                                    sizeof(float))) ||
        !(st.tag = bs_zalloc_array((size_t)st.stages * (size_t)st.slots + 1, sizeof *st.tag)) ||
        !(st.used = bs_alloc_array(prog->op_count + 1, sizeof *st.used)) ||
        !(steps = bs_alloc_array(2 * bs_mlp_max_steps(shape->layers), sizeof *steps))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the mlp CPU check");
        goto error;
    }
    memset(st.used, 0xff, (prog->op_count + 1) * sizeof *st.used);
    cpu_init_values(&st);

    /* The pipelined run: the plan in issue order. */
    for (size_t i = 0; i < plan->cmd_count; i++) {
        const bs_gpu_cmd *c = &plan->cmds[i];
        size_t k = ((size_t)c->stage * st.mbs + c->microbatch) * 3 + c->part;
        switch (c->kind) {
        case BS_GPU_ALLOC:
            rc = cpu_alloc(&st, k, c->bytes, err);
            break;
        case BS_GPU_FREE:
            cpu_release(&st, k);
            break;
        case BS_GPU_KERNEL:
            for (uint32_t j = c->op; j < c->op + c->ops && !rc; j++) {
                size_t count = bs_mlp_expand(&lay, &prog->ops[j], j, &ver, steps);
                rc = run_steps(&st, steps, count, &prog->ops[j], err);
            }
            break;
        case BS_GPU_COPY: {
            bs_mlp_ref from, to;
            bs_mlp_copy_refs(&prog->ops[c->op], &from, &to);
            float *src = resolve(&st, &from), *dst = resolve(&st, &to);
            memcpy(dst, src, st.t * sizeof *dst);
            break;
        }
        default:
            break;
        }
        if (rc)
            goto error;
    }
    bs_mlp_numerics_versions(n, prog, &ver, st.used);

    /* The reference: micro-batches one after another, gradients summed
     * into ref_grad (the weights stay those of version 0). */
    if (!ver.active && !(prog->flags & BS_PROGRAM_FORWARD_ONLY)) {
        float *pipelined = st.grad;
        ref_lay = lay;
        ref_lay.stage_device = NULL;
        ref_lay.pair_split = NULL;
        st.grad = ref_grad;
        for (uint32_t k = 0; k < 2u * (uint32_t)prog->stages * st.mbs && !rc; k++) {
            bs_op op = bs_mlp_reference_op(prog->stages, k);
            size_t slot = ((size_t)op.stage * st.mbs + op.microbatch) * 3 + BS_GPU_PART_WHOLE;
            if (op.kind == BS_OP_FORWARD)
                rc = cpu_alloc(&st, slot, (double)lay.chunk_tensors * (double)st.t * 4.0, err);
            size_t count = bs_mlp_expand(&ref_lay, &op, 0, NULL, steps);
            if (!rc)
                rc = run_steps(&st, steps, count, &op, err);
            if (op.kind == BS_OP_BACKWARD)
                cpu_release(&st, slot);
        }
        st.grad = pipelined;
        if (rc)
            goto error;
        n->worst_rel_err = 0;
        for (int c = 0; c < prog->stages; c++) {
            size_t off = (size_t)c * (size_t)shape->layers * st.wn;
            double scale = 0;
            n->max_rel_err[c] = bs_mlp_rel_err(st.grad + off, ref_grad + off,
                                               (size_t)shape->layers * st.wn, &scale);
            n->grad_scale = scale > n->grad_scale ? scale : n->grad_scale;
            if (n->max_rel_err[c] > n->worst_rel_err)
                n->worst_rel_err = n->max_rel_err[c];
        }
    }
    n->checked = 1;
error:
    for (size_t k = 0; st.act && k < 3 * pairs; k++)
        bs_free(st.act[k]);
    bs_free(st.data);
    bs_free(st.out_f);
    bs_free(st.recv_f);
    bs_free(st.out_b);
    bs_free(st.recv_b);
    bs_free(st.act);
    bs_free(st.act_size);
    bs_free(st.weight);
    bs_free(st.grad);
    bs_free(ref_grad);
    bs_free(st.grad_mb);
    bs_free(st.work);
    bs_free(st.tag);
    bs_free(st.used);
    bs_free(steps);
    bs_mlp_versions_free(&ver);
    bs_mlp_layout_free(&lay);
    return rc;
}
