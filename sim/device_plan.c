/*
 * device_plan.c - what a model hands to the engine and the metrics beyond
 * op costs: whole-device memory and data-parallel gradient collectives.
 *
 * A config with a "model" knows, per device, the bytes that do not change
 * during an iteration (weights, gradients, optimizer state, KV cache,
 * communication buffers) and, per model chunk, one micro-batch's
 * activations. The metrics add the activations each device really holds
 * over time, chunk by chunk, so a device holding chunks of different sizes
 * (the V placement's first and last chunk, with the embedding and the
 * logits) is counted exactly rather than by a mean. Per chunk it also
 * knows how long the gradient reduction over the data-parallel replicas
 * takes, which the engine places on the timeline (sim/engine.c).
 *
 * The plan is one allocation (struct, then the device array, then the
 * chunk arrays), so a config copies it with one memcpy and frees it with
 * one free.
 */
#include "internal.h"

#include <string.h>

#define CHUNK_ARRAYS 4 /* activation, sync time, buckets, crossing */

static size_t plan_bytes(int devices, int chunks, size_t *device_at, size_t *chunk_at)
{
    size_t head = sizeof(bs_device_plan);
    /* Keep the arrays aligned for doubles. */
    head = (head + sizeof(double) - 1) / sizeof(double) * sizeof(double);
    *device_at = head;
    *chunk_at = head + (size_t)devices * sizeof(bs_device_static);
    return *chunk_at + CHUNK_ARRAYS * (size_t)chunks * sizeof(double);
}

static bs_device_plan *place(char *block, int devices, int chunks)
{
    size_t device_at, chunk_at;
    plan_bytes(devices, chunks, &device_at, &chunk_at);
    bs_device_plan *plan = (bs_device_plan *)block;
    plan->devices = devices;
    plan->chunks = chunks;
    plan->device = (bs_device_static *)(block + device_at);
    plan->chunk_activation = (double *)(block + chunk_at);
    plan->chunk_sync_ms = plan->chunk_activation + chunks;
    plan->chunk_buckets = plan->chunk_sync_ms + chunks;
    plan->crosses_node = plan->chunk_buckets + chunks;
    return plan;
}

bs_device_plan *bs_device_plan_create(int devices, int chunks)
{
    size_t device_at, chunk_at;
    if (devices < 1 || chunks < 1 || devices > 65535 || chunks > 65535)
        return NULL;
    char *block = bs_zalloc_array(1, plan_bytes(devices, chunks, &device_at, &chunk_at));
    if (!block)
        return NULL;
    bs_device_plan *plan = place(block, devices, chunks);
    for (int c = 0; c < chunks; c++)
        plan->chunk_buckets[c] = 1;
    return plan;
}

bs_device_plan *bs_device_plan_copy(const bs_device_plan *src)
{
    size_t device_at, chunk_at;
    if (!src)
        return NULL;
    size_t bytes = plan_bytes(src->devices, src->chunks, &device_at, &chunk_at);
    char *block = bs_alloc_array(1, bytes);
    if (!block)
        return NULL;
    memcpy(block, src, bytes);
    /* The copied pointers point into src's block: point them into ours. */
    return place(block, src->devices, src->chunks);
}

void bs_device_plan_free(bs_device_plan *plan)
{
    bs_free(plan);
}

int bs_device_plan_has_collectives(const bs_device_plan *plan)
{
    if (!plan)
        return 0;
    for (int c = 0; c < plan->chunks; c++)
        if (plan->chunk_sync_ms[c] > 0)
            return 1;
    return 0;
}
