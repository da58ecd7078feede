/*
 * memory.c - the whole-device memory plan a model hands to the metrics.
 *
 * A config with a "model" knows, per device, the bytes that do not change
 * during an iteration (weights, gradients, optimizer state, KV cache,
 * communication buffers) and, per model chunk, one micro-batch's
 * activations. The metrics add the activations each device really holds
 * over time, chunk by chunk, so a device holding chunks of different sizes
 * (the V placement's first and last chunk, with the embedding and the
 * logits) is counted exactly rather than by a mean.
 *
 * The plan is one allocation (struct, then the device array, then the
 * chunk array), so a config copies it with one memcpy and frees it with one
 * free.
 */
#include "internal.h"

#include <string.h>

static size_t plan_bytes(int devices, int chunks, size_t *device_at, size_t *chunk_at)
{
    size_t head = sizeof(bs_memory_plan);
    /* Keep the arrays aligned for doubles. */
    head = (head + sizeof(double) - 1) / sizeof(double) * sizeof(double);
    *device_at = head;
    *chunk_at = head + (size_t)devices * sizeof(bs_device_static);
    return *chunk_at + (size_t)chunks * sizeof(double);
}

bs_memory_plan *bs_memory_plan_create(int devices, int chunks)
{
    size_t device_at, chunk_at;
    if (devices < 1 || chunks < 1 || devices > 65535 || chunks > 65535)
        return NULL;
    size_t bytes = plan_bytes(devices, chunks, &device_at, &chunk_at);
    char *block = bs_zalloc_array(1, bytes);
    if (!block)
        return NULL;
    bs_memory_plan *plan = (bs_memory_plan *)block;
    plan->devices = devices;
    plan->chunks = chunks;
    plan->device = (bs_device_static *)(block + device_at);
    plan->chunk_activation = (double *)(block + chunk_at);
    return plan;
}

bs_memory_plan *bs_memory_plan_copy(const bs_memory_plan *src)
{
    if (!src)
        return NULL;
    bs_memory_plan *dst = bs_memory_plan_create(src->devices, src->chunks);
    if (!dst)
        return NULL;
    dst->limit = src->limit;
    memcpy(dst->device, src->device, (size_t)src->devices * sizeof *dst->device);
    memcpy(dst->chunk_activation, src->chunk_activation,
           (size_t)src->chunks * sizeof *dst->chunk_activation);
    return dst;
}

void bs_memory_plan_free(bs_memory_plan *plan)
{
    bs_free(plan);
}
