/*
 * schedule.c - the schedule table and the program builder.
 *
 * A schedule is a const record (name, check, generate) in the table below;
 * adding one is one file and one row. The builder sizes the program from the
 * record's ops_per_chunk_microbatch, places chunks on devices (looped: chunk
 * s on device s mod P), runs the generator and then the validator, so no
 * generated program reaches the engine unchecked.
 */
#include "internal.h"

#include <string.h>

static const bs_schedule *const table[] = {
    &bs_schedule_gpipe,     &bs_schedule_1f1b,
    &bs_schedule_pipedream, &bs_schedule_interleaved,
    &bs_schedule_forward,   &bs_schedule_zb_h1,
    &bs_schedule_zb_h2,     &bs_schedule_zbv,
    &bs_schedule_dualpipev, &bs_schedule_looped_bfs,
    &bs_schedule_custom,    &bs_schedule_decode,
    &bs_schedule_zb_auto,   &bs_schedule_interleaved_zb,
    &bs_schedule_v_min,     &bs_schedule_v_half,
};

size_t bs_schedule_count(void)
{
    return sizeof table / sizeof table[0];
}

const bs_schedule *bs_schedule_at(size_t i)
{
    return i < bs_schedule_count() ? table[i] : NULL;
}

const bs_schedule *bs_schedule_find(const char *name)
{
    for (size_t i = 0; i < bs_schedule_count(); i++)
        if (strcmp(table[i]->name, name) == 0)
            return table[i];
    return NULL;
}

void bs_program_init(bs_program *prog)
{
    memset(prog, 0, sizeof *prog);
}

void bs_program_free(bs_program *prog)
{
    bs_free(prog->stage_device);
    bs_free(prog->ops);
    bs_free(prog->device_first);
    bs_program_init(prog);
}

int bs_program_reserve(bs_program *prog, size_t count, bs_error *err)
{
    if (count <= prog->op_capacity)
        return BS_OK;
    if (bs_realloc_array((void **)&prog->ops, count, sizeof *prog->ops))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for %zu ops", count);
    prog->op_capacity = count;
    return BS_OK;
}

/* Resizes the per-device and per-stage arrays; keeps the op buffer. */
static int program_shape(bs_program *prog, int devices, int stages, bs_error *err)
{
    if (bs_realloc_array((void **)&prog->stage_device, (size_t)stages,
                         sizeof *prog->stage_device) ||
        bs_realloc_array((void **)&prog->device_first, (size_t)devices + 1,
                         sizeof *prog->device_first))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for the program");
    prog->devices = devices;
    prog->stages = stages;
    prog->op_count = 0;
    memset(prog->device_first, 0, ((size_t)devices + 1) * sizeof *prog->device_first);
    for (int s = 0; s < stages; s++)
        prog->stage_device[s] = (uint16_t)(s % devices);
    return BS_OK;
}

/* Optimizer ops separate iterations of flush schedules; with a zero-cost
 * optimizer the last one would only stretch every device's span to the
 * makespan, so it is left out. */
static size_t optimizer_ops(const bs_config *cfg, const bs_schedule *s)
{
    if (s->flags & (BS_PROGRAM_UPDATE_PER_BACKWARD | BS_PROGRAM_FORWARD_ONLY | BS_PROGRAM_NO_FLUSH))
        return 0;
    return (size_t)cfg->iterations - (cfg->optimizer > 0 ? 0 : 1);
}

static int build(bs_program *prog, const bs_config *cfg, int feasible_too, bs_error *err)
{
    const bs_schedule *s = bs_schedule_find(cfg->schedule);
    if (!s)
        return bs_fail(err, BS_ERR_INVALID, "schedule: unknown schedule \"%s\"", cfg->schedule);
    int rc = s->check(cfg, err);
    if (rc)
        return rc;
    int p = cfg->stages, v = cfg->virtual_stages;
    /* A decode program has one item per micro-batch and output token. */
    uint32_t items = (s->flags & BS_PROGRAM_DECODE_LOOP) ? (uint32_t)cfg->output_tokens : 1;
    size_t per_device = (size_t)v * (size_t)cfg->microbatches * (size_t)cfg->iterations * items *
                            s->ops_per_chunk_microbatch +
                        optimizer_ops(cfg, s);
    if ((rc = program_shape(prog, p, p * v, err)) ||
        (rc = bs_program_reserve(prog, per_device * (size_t)p, err)))
        return rc;
    prog->chunks_per_device = v;
    prog->per_iteration = (uint32_t)cfg->microbatches;
    prog->microbatches = (uint32_t)cfg->microbatches * (uint32_t)cfg->iterations * items;
    prog->flags = s->flags;
    if ((rc = s->generate(cfg, prog, err)))
        return rc;
    /* A generator that sizes itself must still stay within what it reserved. */
    if ((s->flags & BS_PROGRAM_VARIABLE_OPS) ? prog->op_count > prog->op_capacity
                                             : prog->op_count != per_device * (size_t)p)
        return bs_fail(err, BS_ERR_INTERNAL, "schedule %s generated %zu ops, expected %zu", s->name,
                       prog->op_count, per_device * (size_t)p);
    return feasible_too ? bs_program_validate(prog, err) : bs_program_validate_structure(prog, err);
}

int bs_program_build(bs_program *prog, const bs_config *cfg, bs_error *err)
{
    return build(prog, cfg, 1, err);
}

int bs_program_build_unchecked(bs_program *prog, const bs_config *cfg, bs_error *err)
{
    return build(prog, cfg, 0, err);
}

/* Emits the optimizer op after iteration `it` when the program has one. */
void bs_emit_iteration_end(bs_program *prog, const bs_config *cfg, int it)
{
    if (it + 1 < cfg->iterations || cfg->optimizer > 0)
        bs_program_emit(prog, BS_OP_OPTIMIZER, 0, (uint32_t)it);
}

int bs_emit_one_f_one_b(bs_program *prog, int stage, uint32_t first_mb, uint32_t count, int warmup)
{
    uint32_t w = (uint32_t)warmup < count ? (uint32_t)warmup : count;
    for (uint32_t i = 0; i < w; i++)
        bs_program_emit(prog, BS_OP_FORWARD, stage, first_mb + i);
    for (uint32_t i = 0; i + w < count; i++) {
        bs_program_emit(prog, BS_OP_FORWARD, stage, first_mb + w + i);
        bs_program_emit(prog, BS_OP_BACKWARD, stage, first_mb + i);
    }
    for (uint32_t i = count - w; i < count; i++)
        bs_program_emit(prog, BS_OP_BACKWARD, stage, first_mb + i);
    return BS_OK;
}

void bs_place_v(bs_program *prog)
{
    int p = prog->devices;
    for (int s = 0; s < prog->stages; s++)
        prog->stage_device[s] = (uint16_t)(s < p ? s : 2 * p - 1 - s);
}

int bs_check_single_chunk(const bs_config *cfg, const char *name, bs_error *err)
{
    if (cfg->virtual_stages != 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "virtual_stages: %s runs one model chunk per device, got V=%d (use "
                       "interleaved for several chunks)",
                       name, cfg->virtual_stages);
    return BS_OK;
}
