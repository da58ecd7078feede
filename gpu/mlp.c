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
            steps[n].c2 = l == L - 1 && s + 1 < lay->stages ? mkref(BS_MLP_OUT_F, s, m, 0, 0) : none;
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
            steps[n++] = updates ? step(BS_MLP_STEP_WGRAD_SET, x_ref(lay, s, m, l),
                                        dz_ref(lay, s, m, l),
                                        mkref(BS_MLP_GRAD_MB, s, 0, 0, (uint32_t)l))
                                 : step(BS_MLP_STEP_WGRAD_ADD, x_ref(lay, s, m, l),
                                        dz_ref(lay, s, m, l),
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
