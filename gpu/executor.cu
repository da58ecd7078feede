/*
 * executor.cu - runs a bs_gpu_plan on one GPU and measures it (see
 * executor.h for the interface, plan.h for what a plan guarantees).
 *
 * Invariants and choices:
 *  - Stages run on disjoint SM partitions made with green contexts (one
 *    green context and one non-blocking stream per stage). Where green
 *    contexts are missing, P partitions of the minimum size do not fit, or a
 *    test launch fails, every stage gets an ordinary non-blocking stream and
 *    kernels of SMs / P blocks; report->mode says which ran and why.
 *  - The driver API is reached through cudaGetDriverEntryPointByVersion and
 *    the runtime is linked statically, so the binary has no link-time
 *    dependency on libcuda.so.1: without a driver, bs_gpu_probe says so.
 *  - The plan is issued in its order, which issues every event record before
 *    the waits on it (a stream wait captures the event's latest record at the
 *    time of the call). Commands go to their queue's stream as they are.
 *  - A gate kernel holds every stage stream until the host has issued the
 *    whole run, so the measurement does not include host issue speed; the
 *    gate gives up after 2 s and says so rather than hang.
 *  - Calibrated kernels: one thread per block spins on %globaltimer for the
 *    op's duration; each block stamps its start (atomicMin) and end
 *    (atomicMax), and the last block to finish appends the op to its
 *    device's executed-order log, so that log is the order ops finished on
 *    the stage's stream.
 *  - CUDA_DEVICE_MAX_CONNECTIONS is raised to 32 (unless the user set it)
 *    before the runtime starts, so P stage streams and the copy streams do
 *    not share hardware queues and pick up false dependencies.
 */
#include <cuda.h>
#include <cuda_runtime.h>

#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "executor.h"
#include "internal.h"
}

#define GATE_TIMEOUT_NS 2000000000ull
#define SPIN_THREADS 32

/* ---------------------------------------------------------------- kernels */

__device__ __forceinline__ unsigned long long global_timer()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

/* One block per SM of the partition; thread 0 of each spins. `ops` is 2
 * for an overlapped pair, which both get the kernel's stamps. */
__global__ void spin_kernel(unsigned long long ns, unsigned op, unsigned ops, unsigned device,
                            unsigned order_base, unsigned long long *start, unsigned long long *end,
                            unsigned *done, unsigned *order, unsigned *counter)
{
    if (threadIdx.x != 0)
        return;
    unsigned long long t0 = global_timer();
    for (unsigned k = 0; k < ops; k++)
        atomicMin(&start[op + k], t0);
    while (global_timer() - t0 < ns) {
    }
    unsigned long long t1 = global_timer();
    for (unsigned k = 0; k < ops; k++)
        atomicMax(&end[op + k], t1);
    __threadfence();
    if (atomicAdd(&done[op], 1u) == gridDim.x - 1) {
        unsigned k = atomicAdd(&counter[device], ops);
        for (unsigned j = 0; j < ops; j++)
            order[order_base + k + j] = op + j;
    }
}

__global__ void gate_kernel(volatile int *flag, int *timed_out)
{
    unsigned long long t0 = global_timer();
    while (*flag == 0) {
        if (global_timer() - t0 > GATE_TIMEOUT_NS) {
            *timed_out = 1;
            break;
        }
    }
}

/* Reads %globaltimer in a tight loop and keeps the first `n` changes. */
__global__ void timer_steps_kernel(unsigned long long *steps, int n)
{
    unsigned long long last = global_timer();
    int k = 0;
    for (long i = 0; i < 100000000L && k < n; i++) {
        unsigned long long t = global_timer();
        if (t != last) {
            steps[k++] = t - last;
            last = t;
        }
    }
}

__global__ void timer_read_kernel(unsigned long long *out)
{
    *out = global_timer();
}

/* ------------------------------------------------------ driver entry points */

typedef decltype(&cuDeviceGet) fn_device_get;
typedef decltype(&cuDeviceGetDevResource) fn_get_resource;
typedef decltype(&cuDevSmResourceSplitByCount) fn_split;
typedef decltype(&cuDevResourceGenerateDesc) fn_desc;
typedef decltype(&cuGreenCtxCreate) fn_green_create;
typedef decltype(&cuGreenCtxDestroy) fn_green_destroy;
typedef decltype(&cuGreenCtxStreamCreate) fn_green_stream;
typedef decltype(&cuStreamDestroy) fn_stream_destroy;

typedef struct driver_api {
    fn_device_get device_get;
    fn_get_resource get_resource;
    fn_split split;
    fn_desc desc;
    fn_green_create green_create;
    fn_green_destroy green_destroy;
    fn_green_stream green_stream;
    fn_stream_destroy stream_destroy;
} driver_api;

static int entry(const char *name, void **fn)
{
    cudaDriverEntryPointQueryResult found;
    *fn = NULL;
    if (cudaGetDriverEntryPointByVersion(name, fn, CUDART_VERSION, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
        *fn = NULL;
        (void)cudaGetLastError();
        return 0;
    }
    return *fn != NULL;
}

/* Fills api; returns 1 when every green-context entry point exists. */
static int load_driver_api(driver_api *api)
{
    memset(api, 0, sizeof *api);
    return entry("cuDeviceGet", (void **)&api->device_get) &
           entry("cuDeviceGetDevResource", (void **)&api->get_resource) &
           entry("cuDevSmResourceSplitByCount", (void **)&api->split) &
           entry("cuDevResourceGenerateDesc", (void **)&api->desc) &
           entry("cuGreenCtxCreate", (void **)&api->green_create) &
           entry("cuGreenCtxDestroy", (void **)&api->green_destroy) &
           entry("cuGreenCtxStreamCreate", (void **)&api->green_stream) &
           entry("cuStreamDestroy", (void **)&api->stream_destroy);
}

/* ------------------------------------------------------------------ probe */

static int unavailable(bs_error *err, const char *what, cudaError_t e)
{
    return bs_fail(err, BS_GPU_UNAVAILABLE, "%s: %s", what, cudaGetErrorString(e));
}

static double host_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int measure_timer(bs_gpu_info *info, bs_error *err)
{
    enum { STEPS = 256 };
    unsigned long long *d = NULL, host[STEPS], reads[2];
    double h[2];
    cudaError_t e;
    int rc = BS_OK;
    if ((e = cudaMalloc(&d, (STEPS + 1) * sizeof *d)) != cudaSuccess ||
        (e = cudaMemset(d, 0, (STEPS + 1) * sizeof *d)) != cudaSuccess)
        goto failed;
    timer_steps_kernel<<<1, 1>>>(d, STEPS);
    if ((e = cudaDeviceSynchronize()) != cudaSuccess ||
        (e = cudaMemcpy(host, d, sizeof host, cudaMemcpyDeviceToHost)) != cudaSuccess)
        goto failed;
    info->timer_tick_ns = 0;
    for (int i = 0; i < STEPS; i++)
        if (host[i] && (info->timer_tick_ns == 0 || host[i] < info->timer_tick_ns))
            info->timer_tick_ns = (double)host[i];
    /* Rate against the host clock over about 50 ms; launch latency on both
     * ends is microseconds, well under the 0.01 % this resolves. */
    for (int k = 0; k < 2; k++) {
        if (k) {
            struct timespec pause = {0, 50000000};
            nanosleep(&pause, NULL);
        }
        h[k] = host_ns();
        timer_read_kernel<<<1, 1>>>(d + STEPS);
        if ((e = cudaMemcpy(&reads[k], d + STEPS, sizeof reads[k], cudaMemcpyDeviceToHost)) !=
            cudaSuccess)
            goto failed;
    }
    info->timer_ns_per_ns = (double)(reads[1] - reads[0]) / (h[1] - h[0]);
    goto done;
failed:
    rc = unavailable(err, "timer probe kernel", e);
done:
    cudaFree(d);
    return rc;
}

extern "C" int bs_gpu_probe(bs_gpu_info *info, int device, bs_error *err)
{
    memset(info, 0, sizeof *info);
    info->device = device;
    /* No driver library: say so before the runtime tries (and leaves state
     * behind that leak checkers report). */
    void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!driver)
        return bs_fail(err, BS_GPU_UNAVAILABLE,
                       "no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded)");
    dlclose(driver);
    setenv("CUDA_DEVICE_MAX_CONNECTIONS", "32", 0);

    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess)
        return unavailable(err, "no CUDA device", e);
    if (device >= count)
        return bs_fail(err, BS_GPU_UNAVAILABLE, "device %d requested, %d CUDA device%s found",
                       device, count, count == 1 ? "" : "s");
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(device)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess ||
        (e = cudaFree(0)) != cudaSuccess)
        return unavailable(err, "cannot open the CUDA device", e);
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->sm_count = prop.multiProcessorCount;
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    cudaDriverGetVersion(&info->driver_version);
    cudaRuntimeGetVersion(&info->runtime_version);
    cudaFuncAttributes attr;
    if ((e = cudaFuncGetAttributes(&attr, spin_kernel)) != cudaSuccess)
        return bs_fail(err, BS_GPU_UNAVAILABLE,
                       "%s (compute capability %d.%d) cannot run this build's kernels (built for "
                       "sm_80, sm_90 and PTX 9.0): %s",
                       prop.name, prop.major, prop.minor, cudaGetErrorString(e));

    driver_api api;
    if (load_driver_api(&api)) {
        CUdevice dev;
        CUdevResource sm;
        if (api.device_get(&dev, device) == CUDA_SUCCESS &&
            api.get_resource(dev, &sm, CU_DEV_RESOURCE_TYPE_SM) == CUDA_SUCCESS) {
            info->green_available = 1;
            info->min_partition = sm.sm.minSmPartitionSize;
            info->alignment = sm.sm.smCoscheduledAlignment;
        }
    }
    return measure_timer(info, err);
}

/* ------------------------------------------------------------- execution */

typedef struct runner {
    const bs_gpu_plan *plan;
    const bs_program *prog;
    const bs_gpu_options *opt;
    bs_gpu_report *rep;
    driver_api api;
    int devices, links, green;
    unsigned blocks;       /* per kernel */
    CUgreenCtx *green_ctx; /* [devices] */
    cudaStream_t *streams; /* [devices + links]: stage streams, then copy streams */
    cudaStream_t gate_stream;
    cudaEvent_t *events; /* [plan->event_count] */
    cudaEvent_t gate_event;
    void **link_src, **link_dst; /* [links]: message buffers */
    cudaMemPool_t *pools;        /* [devices] */
    void **activation;           /* [stages * microbatches] */
    unsigned long long *d_start, *d_end;
    unsigned *d_done, *d_order, *d_counter;
    int *gate_flag, *d_gate_flag, *d_timed_out;
    unsigned *order_base; /* [op_count]: device_first of each op's device */
    size_t message_bytes;
} runner;

#define CUDA_TRY(call, what)                                                                       \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            rc = bs_fail(err, e_ == cudaErrorMemoryAllocation ? BS_ERR_NOMEM : BS_ERR_INTERNAL,    \
                         "GPU: %s: %s", what, cudaGetErrorString(e_));                             \
            goto error;                                                                            \
        }                                                                                          \
    } while (0)

static void destroy_stage_streams(runner *r)
{
    for (int d = 0; d < r->devices; d++) {
        if (!r->streams[d])
            continue;
        if (r->green)
            r->api.stream_destroy((CUstream)r->streams[d]);
        else
            cudaStreamDestroy(r->streams[d]);
        r->streams[d] = NULL;
    }
    for (int d = 0; d < r->devices; d++)
        if (r->green_ctx[d]) {
            r->api.green_destroy(r->green_ctx[d]);
            r->green_ctx[d] = NULL;
        }
    r->green = 0;
}

/* One green context and stream per stage. Returns 0 on success, else leaves
 * nothing behind and writes why into rep->mode_reason. */
static int make_green_partitions(runner *r)
{
    bs_gpu_report *rep = r->rep;
    const bs_gpu_info *info = &rep->info;
    unsigned p = (unsigned)r->devices;
    CUdevice dev;
    CUdevResource input, *groups = NULL;
    unsigned n = p, min_count, unit;
    int ok = 0;
    if (!info->green_available || !load_driver_api(&r->api)) {
        snprintf(rep->mode_reason, sizeof rep->mode_reason, "the driver offers no green contexts");
        return -1;
    }
    unit = info->min_partition > info->alignment ? info->min_partition : info->alignment;
    if (unit == 0)
        unit = 1;
    /* The largest multiple of the granularity that leaves room for P. */
    min_count = (unsigned)info->sm_count / p / unit * unit;
    if (min_count < info->min_partition) {
        snprintf(rep->mode_reason, sizeof rep->mode_reason,
                 "%u partitions of at least %u SMs do not fit in %d SMs", p, info->min_partition,
                 info->sm_count);
        return -1;
    }
    if (!(groups = (CUdevResource *)bs_zalloc_array(p, sizeof *groups)))
        return -1;
    if (r->api.device_get(&dev, r->opt->device) != CUDA_SUCCESS ||
        r->api.get_resource(dev, &input, CU_DEV_RESOURCE_TYPE_SM) != CUDA_SUCCESS ||
        r->api.split(groups, &n, &input, NULL, 0, min_count) != CUDA_SUCCESS || n < p) {
        snprintf(rep->mode_reason, sizeof rep->mode_reason,
                 "splitting %d SMs into %u groups of %u failed (got %u)", info->sm_count, p,
                 min_count, n);
        goto done;
    }
    r->green = 1;
    for (unsigned d = 0; d < p; d++) {
        CUdevResourceDesc desc;
        CUresult cr;
        if ((cr = r->api.desc(&desc, &groups[d], 1)) != CUDA_SUCCESS ||
            (cr = r->api.green_create(&r->green_ctx[d], desc, dev, CU_GREEN_CTX_DEFAULT_STREAM)) !=
                CUDA_SUCCESS ||
            (cr = r->api.green_stream((CUstream *)&r->streams[d], r->green_ctx[d],
                                      CU_STREAM_NON_BLOCKING, 0)) != CUDA_SUCCESS) {
            snprintf(rep->mode_reason, sizeof rep->mode_reason,
                     "creating green context %u failed (CUresult %d)", d, (int)cr);
            goto done;
        }
    }
    /* A test launch on every partition: the runtime must accept the green
     * streams before the measurement relies on them. */
    for (unsigned d = 0; d < p; d++)
        spin_kernel<<<1, SPIN_THREADS, 0, r->streams[d]>>>(0, 0, 1, 0, 0, r->d_start, r->d_end,
                                                           r->d_done, r->d_order, r->d_counter);
    {
        cudaError_t e = cudaGetLastError();
        if (e == cudaSuccess)
            e = cudaDeviceSynchronize();
        if (e != cudaSuccess) {
            snprintf(rep->mode_reason, sizeof rep->mode_reason,
                     "a kernel on a green-context stream failed: %s", cudaGetErrorString(e));
            goto done;
        }
    }
    r->blocks = groups[0].sm.smCount;
    rep->partition_sms = groups[0].sm.smCount;
    rep->partitions = (int)p;
    snprintf(rep->mode, sizeof rep->mode, "green-contexts");
    ok = 1;
done:
    if (!ok)
        destroy_stage_streams(r);
    bs_free(groups);
    return ok ? 0 : -1;
}

static cudaStream_t queue_stream(const runner *r, uint32_t q)
{
    return r->streams[q];
}

/* Issues the whole plan once behind the gate and waits for it. */
static int run_once(runner *r, int *timed_out, bs_error *err)
{
    const bs_gpu_plan *plan = r->plan;
    const bs_program *prog = r->prog;
    size_t n = prog->op_count, m = prog->microbatches;
    int rc = BS_OK;
    CUDA_TRY(cudaMemset(r->d_start, 0xff, n * sizeof *r->d_start), "reset stamps");
    CUDA_TRY(cudaMemset(r->d_end, 0, n * sizeof *r->d_end), "reset stamps");
    CUDA_TRY(cudaMemset(r->d_done, 0, n * sizeof *r->d_done), "reset stamps");
    CUDA_TRY(cudaMemset(r->d_order, 0xff, n * sizeof *r->d_order), "reset order log");
    CUDA_TRY(cudaMemset(r->d_counter, 0, (size_t)r->devices * sizeof *r->d_counter),
             "reset order log");
    CUDA_TRY(cudaMemset(r->d_timed_out, 0, sizeof *r->d_timed_out), "reset gate");
    CUDA_TRY(cudaDeviceSynchronize(), "reset");
    *(volatile int *)r->gate_flag = 0;
    gate_kernel<<<1, 1, 0, r->gate_stream>>>(r->d_gate_flag, r->d_timed_out);
    CUDA_TRY(cudaEventRecord(r->gate_event, r->gate_stream), "gate");
    for (int d = 0; d < r->devices; d++)
        CUDA_TRY(cudaStreamWaitEvent(r->streams[d], r->gate_event, 0), "gate wait");

    r->rep->copies = 0;
    for (size_t i = 0; i < plan->cmd_count; i++) {
        const bs_gpu_cmd *c = &plan->cmds[i];
        cudaStream_t s = queue_stream(r, c->queue);
        size_t slot = ((size_t)c->stage * m + c->microbatch) * 3 + c->part;
        switch (c->kind) {
        case BS_GPU_ALLOC:
            if (r->pools)
                CUDA_TRY(cudaMallocFromPoolAsync(&r->activation[slot],
                                                 c->bytes >= 1 ? (size_t)c->bytes : 1,
                                                 r->pools[c->queue], s),
                         "activation allocation");
            break;
        case BS_GPU_FREE:
            if (r->pools) {
                CUDA_TRY(cudaFreeAsync(r->activation[slot], s), "activation free");
                r->activation[slot] = NULL;
            }
            break;
        case BS_GPU_WAIT:
            CUDA_TRY(cudaStreamWaitEvent(s, r->events[c->event], 0), "stream wait");
            break;
        case BS_GPU_RECORD:
            CUDA_TRY(cudaEventRecord(r->events[c->event], s), "event record");
            break;
        case BS_GPU_COPY: {
            size_t l = c->queue - (uint32_t)r->devices;
            if (r->message_bytes)
                CUDA_TRY(cudaMemcpyAsync(r->link_dst[l], r->link_src[l], r->message_bytes,
                                         cudaMemcpyDeviceToDevice, s),
                         "message copy");
            r->rep->copies++;
            break;
        }
        case BS_GPU_KERNEL: {
            double ns = c->duration * 1e6;
            spin_kernel<<<r->blocks, SPIN_THREADS, 0, s>>>(
                ns > 0 ? (unsigned long long)(ns + 0.5) : 0ull, c->op, c->ops, c->queue,
                r->order_base[c->op], r->d_start, r->d_end, r->d_done, r->d_order, r->d_counter);
            CUDA_TRY(cudaGetLastError(), "kernel launch");
            break;
        }
        default:
            rc = bs_fail(err, BS_ERR_INTERNAL, "GPU: unknown plan command %u", c->kind);
            goto error;
        }
    }
    __sync_synchronize();
    *(volatile int *)r->gate_flag = 1;
    __sync_synchronize();
    CUDA_TRY(cudaDeviceSynchronize(), "running the schedule");
    CUDA_TRY(cudaMemcpy(timed_out, r->d_timed_out, sizeof *timed_out, cudaMemcpyDeviceToHost),
             "gate result");
error:
    if (rc)
        *(volatile int *)r->gate_flag = 1; /* never leave the gate kernel waiting */
    return rc;
}

/* Median time of one message copy on the first copy stream. */
static int measure_copy(runner *r, bs_error *err)
{
    enum { WARM = 3, SAMPLES = 21 };
    cudaEvent_t a = NULL, b = NULL;
    float ms[SAMPLES];
    int rc = BS_OK;
    r->rep->copy_ms = 0;
    if (r->links == 0)
        return BS_OK;
    cudaStream_t s = r->streams[r->devices];
    CUDA_TRY(cudaEventCreate(&a), "copy probe events");
    CUDA_TRY(cudaEventCreate(&b), "copy probe events");
    for (int i = 0; i < WARM + SAMPLES; i++) {
        CUDA_TRY(cudaEventRecord(a, s), "copy probe");
        if (r->message_bytes)
            CUDA_TRY(cudaMemcpyAsync(r->link_dst[0], r->link_src[0], r->message_bytes,
                                     cudaMemcpyDeviceToDevice, s),
                     "copy probe");
        CUDA_TRY(cudaEventRecord(b, s), "copy probe");
        CUDA_TRY(cudaEventSynchronize(b), "copy probe");
        if (i >= WARM)
            CUDA_TRY(cudaEventElapsedTime(&ms[i - WARM], a, b), "copy probe");
    }
    for (int i = 1; i < SAMPLES; i++)
        for (int j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
            float t = ms[j];
            ms[j] = ms[j - 1];
            ms[j - 1] = t;
        }
    r->rep->copy_ms = ms[SAMPLES / 2];
error:
    if (a)
        cudaEventDestroy(a);
    if (b)
        cudaEventDestroy(b);
    return rc;
}

extern "C" int bs_gpu_execute(bs_timeline *tl, bs_gpu_report *rep, const bs_gpu_plan *plan,
                              const bs_program *prog, const bs_gpu_options *opt, bs_error *err)
{
    runner r;
    memset(&r, 0, sizeof r);
    int rc = BS_OK, p = plan->devices, total = opt->warmup + opt->reps;
    size_t n = prog->op_count, pairs = (size_t)prog->stages * prog->microbatches;
    size_t queues = (size_t)p + (size_t)plan->links;
    unsigned long long *h_start = NULL, *h_end = NULL;
    unsigned *h_order = NULL;
    double *rep_start = NULL, *rep_end = NULL, *makespans = NULL;
    int *sorted = NULL;
    double message_bytes = 0;
    int order_differs = 0;

    bs_gpu_report_free(rep);
    if (opt->workload != BS_GPU_WORKLOAD_CALIBRATED)
        return bs_fail(err, BS_ERR_INVALID, "mlp workload not implemented yet");
    if (opt->reps < 1 || opt->warmup < 0)
        return bs_fail(err, BS_ERR_INVALID, "GPU run needs at least one repetition");
    if ((rc = bs_gpu_probe(&rep->info, opt->device, err)))
        return rc;
    if (n == 0 || n > UINT32_MAX)
        return bs_fail(err, BS_ERR_LIMIT, "GPU run: %zu ops (1 to 2^32 - 1 supported)", n);
    for (size_t i = 0; i < plan->cmd_count; i++)
        if (plan->cmds[i].kind == BS_GPU_COPY)
            message_bytes = plan->cmds[i].bytes;
    if (message_bytes > 4e9)
        return bs_fail(err, BS_ERR_LIMIT, "GPU run: message of %.0f bytes (4 GB at most)",
                       message_bytes);
    r.message_bytes = (size_t)message_bytes;
    r.plan = plan;
    r.prog = prog;
    r.opt = opt;
    r.rep = rep;
    r.devices = p;
    r.links = plan->links;
    rep->reps = opt->reps;
    rep->warmup = opt->warmup;

    if (!(r.green_ctx = (CUgreenCtx *)bs_zalloc_array((size_t)p, sizeof *r.green_ctx)) ||
        !(r.streams = (cudaStream_t *)bs_zalloc_array(queues, sizeof *r.streams)) ||
        !(r.events = (cudaEvent_t *)bs_zalloc_array(plan->event_count + 1, sizeof *r.events)) ||
        !(r.link_src = (void **)bs_zalloc_array((size_t)r.links + 1, sizeof *r.link_src)) ||
        !(r.link_dst = (void **)bs_zalloc_array((size_t)r.links + 1, sizeof *r.link_dst)) ||
        !(r.activation = (void **)bs_zalloc_array(3 * pairs + 1, sizeof *r.activation)) ||
        !(r.order_base = (unsigned *)bs_alloc_array(n, sizeof *r.order_base)) ||
        !(h_start = (unsigned long long *)bs_alloc_array(n, sizeof *h_start)) ||
        !(h_end = (unsigned long long *)bs_alloc_array(n, sizeof *h_end)) ||
        !(h_order = (unsigned *)bs_alloc_array(n, sizeof *h_order)) ||
        !(rep_start = (double *)bs_alloc_array(n * (size_t)opt->reps, sizeof *rep_start)) ||
        !(rep_end = (double *)bs_alloc_array(n * (size_t)opt->reps, sizeof *rep_end)) ||
        !(makespans = (double *)bs_alloc_array((size_t)opt->reps, sizeof *makespans)) ||
        !(sorted = (int *)bs_alloc_array((size_t)opt->reps, sizeof *sorted)) ||
        !(rep->executed = (uint32_t *)bs_alloc_array(n, sizeof *rep->executed)) ||
        !(rep->pool_high_water = (double *)bs_zalloc_array((size_t)p, sizeof(double)))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the GPU run");
        goto error;
    }
    for (int d = 0; d < p; d++)
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++)
            r.order_base[i] = (unsigned)prog->device_first[d];

    CUDA_TRY(cudaMalloc(&r.d_start, n * sizeof *r.d_start), "stamp buffers");
    CUDA_TRY(cudaMalloc(&r.d_end, n * sizeof *r.d_end), "stamp buffers");
    CUDA_TRY(cudaMalloc(&r.d_done, n * sizeof *r.d_done), "stamp buffers");
    CUDA_TRY(cudaMalloc(&r.d_order, n * sizeof *r.d_order), "order log");
    CUDA_TRY(cudaMalloc(&r.d_counter, (size_t)p * sizeof *r.d_counter), "order log");
    CUDA_TRY(cudaMalloc(&r.d_timed_out, sizeof *r.d_timed_out), "gate");
    CUDA_TRY(cudaHostAlloc(&r.gate_flag, sizeof *r.gate_flag, cudaHostAllocMapped), "gate flag");
    CUDA_TRY(cudaHostGetDevicePointer(&r.d_gate_flag, r.gate_flag, 0), "gate flag");
    CUDA_TRY(cudaMemset(r.d_start, 0xff, n * sizeof *r.d_start), "stamp buffers");
    CUDA_TRY(cudaMemset(r.d_end, 0, n * sizeof *r.d_end), "stamp buffers");
    CUDA_TRY(cudaMemset(r.d_done, 0, n * sizeof *r.d_done), "stamp buffers");
    CUDA_TRY(cudaMemset(r.d_counter, 0, (size_t)p * sizeof *r.d_counter), "order log");

    if (opt->force_streams) {
        snprintf(rep->mode_reason, sizeof rep->mode_reason, "streams mode was requested");
    } else if (make_green_partitions(&r) == 0) {
        rep->mode_reason[0] = '\0';
    }
    if (!r.green) {
        for (int d = 0; d < p; d++)
            CUDA_TRY(cudaStreamCreateWithFlags(&r.streams[d], cudaStreamNonBlocking),
                     "stage stream");
        r.blocks = (unsigned)(rep->info.sm_count / p > 0 ? rep->info.sm_count / p : 1);
        rep->partition_sms = r.blocks;
        rep->partitions = p;
        snprintf(rep->mode, sizeof rep->mode, "streams");
    }
    for (int l = 0; l < r.links; l++) {
        CUDA_TRY(cudaStreamCreateWithFlags(&r.streams[p + l], cudaStreamNonBlocking),
                 "copy stream");
        if (r.message_bytes) {
            CUDA_TRY(cudaMalloc(&r.link_src[l], r.message_bytes), "message buffers");
            CUDA_TRY(cudaMalloc(&r.link_dst[l], r.message_bytes), "message buffers");
            CUDA_TRY(cudaMemset(r.link_src[l], l & 0xff, r.message_bytes), "message buffers");
        }
    }
    CUDA_TRY(cudaStreamCreateWithFlags(&r.gate_stream, cudaStreamNonBlocking), "gate stream");
    CUDA_TRY(cudaEventCreateWithFlags(&r.gate_event, cudaEventDisableTiming), "events");
    for (uint32_t e = 0; e < plan->event_count; e++)
        CUDA_TRY(cudaEventCreateWithFlags(&r.events[e], cudaEventDisableTiming), "events");
    if (opt->allocate_activations && plan->allocs > 0) {
        /* Refuse up front a run whose activations cannot fit, rather than
         * fail half way through issuing it. */
        double peak = 0;
        size_t free_bytes = 0, total_bytes = 0;
        /* Each pool serves one stream, so its footprint is that stream's own
         * peak; the sum over stages bounds what the run needs. */
        for (int d = 0; d < p; d++) {
            double live = 0, high = 0;
            for (size_t i = 0; i < plan->cmd_count; i++) {
                const bs_gpu_cmd *c = &plan->cmds[i];
                if (c->queue != (uint32_t)d)
                    continue;
                if (c->kind == BS_GPU_ALLOC && (live += c->bytes) > high)
                    high = live;
                else if (c->kind == BS_GPU_FREE)
                    live -= c->bytes;
            }
            peak += high;
        }
        CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes), "memory query");
        if (peak > 0.8 * (double)free_bytes) {
            rc = bs_fail(err, BS_ERR_LIMIT,
                         "GPU run: the stages' activation pools need up to %.3g GB, "
                         "%.3g GB of device memory is free; lower memory.activation_bytes or set "
                         "gpu.allocate_activations to false",
                         peak / 1e9, (double)free_bytes / 1e9);
            goto error;
        }
        if (!(r.pools = (cudaMemPool_t *)bs_zalloc_array((size_t)p, sizeof *r.pools))) {
            rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the GPU run");
            goto error;
        }
        for (int d = 0; d < p; d++) {
            cudaMemPoolProps props;
            memset(&props, 0, sizeof props);
            props.allocType = cudaMemAllocationTypePinned;
            props.location.type = cudaMemLocationTypeDevice;
            props.location.id = opt->device;
            CUDA_TRY(cudaMemPoolCreate(&r.pools[d], &props), "activation pool");
            /* Keep memory in the pool between repetitions: allocation cost
             * is then the same in every measured run. */
            cuuint64_t keep = UINT64_MAX;
            CUDA_TRY(cudaMemPoolSetAttribute(r.pools[d], cudaMemPoolAttrReleaseThreshold, &keep),
                     "activation pool");
        }
    }
    if ((rc = measure_copy(&r, err)))
        goto error;

    for (int k = 0; k < total; k++) {
        int timed_out = 0;
        if (k == opt->warmup && r.pools)
            for (int d = 0; d < p; d++) {
                cuuint64_t zero = 0;
                CUDA_TRY(cudaMemPoolSetAttribute(r.pools[d], cudaMemPoolAttrUsedMemHigh, &zero),
                         "activation pool");
            }
        if ((rc = run_once(&r, &timed_out, err)))
            goto error;
        if (k < opt->warmup)
            continue;
        rep->gate_timed_out |= timed_out;
        int j = k - opt->warmup;
        CUDA_TRY(cudaMemcpy(h_start, r.d_start, n * sizeof *h_start, cudaMemcpyDeviceToHost),
                 "reading stamps");
        CUDA_TRY(cudaMemcpy(h_end, r.d_end, n * sizeof *h_end, cudaMemcpyDeviceToHost),
                 "reading stamps");
        unsigned long long first = ULLONG_MAX, last = 0;
        for (size_t i = 0; i < n; i++) {
            if (h_start[i] == ULLONG_MAX || h_end[i] == 0) {
                rc =
                    bs_fail(err, BS_ERR_INTERNAL, "GPU: op %zu did not run in repetition %d", i, j);
                goto error;
            }
            first = h_start[i] < first ? h_start[i] : first;
            last = h_end[i] > last ? h_end[i] : last;
        }
        for (size_t i = 0; i < n; i++) {
            rep_start[(size_t)j * n + i] = (double)(h_start[i] - first) / 1e6;
            rep_end[(size_t)j * n + i] = (double)(h_end[i] - first) / 1e6;
        }
        makespans[j] = (double)(last - first) / 1e6;
        sorted[j] = j;
        if (j == 0 || makespans[j] < rep->makespan_min)
            rep->makespan_min = makespans[j];
        if (makespans[j] > rep->makespan_max)
            rep->makespan_max = makespans[j];
        /* Executed order: the first run's, replaced by any later run whose
         * order differs from the program's, so a difference is never lost. */
        CUDA_TRY(cudaMemcpy(h_order, r.d_order, n * sizeof *h_order, cudaMemcpyDeviceToHost),
                 "reading the order log");
        int differs = 0;
        for (size_t i = 0; i < n && !differs; i++)
            differs = h_order[i] != (unsigned)i;
        if (j == 0 || (differs && !order_differs))
            memcpy(rep->executed, h_order, n * sizeof *h_order);
        order_differs |= differs;
    }
    for (int i = 1; i < opt->reps; i++)
        for (int k = i; k > 0 && makespans[sorted[k - 1]] > makespans[sorted[k]]; k--) {
            int t = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = t;
        }
    {
        int median = sorted[opt->reps / 2];
        rep->makespan_median = makespans[median];
        if (n > tl->capacity) {
            if (bs_realloc_array((void **)&tl->start, n, sizeof *tl->start) ||
                bs_realloc_array((void **)&tl->end, n, sizeof *tl->end)) {
                rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the measured timeline");
                goto error;
            }
            tl->capacity = n;
        }
        memcpy(tl->start, rep_start + (size_t)median * n, n * sizeof *tl->start);
        memcpy(tl->end, rep_end + (size_t)median * n, n * sizeof *tl->end);
        tl->program = prog;
        tl->message_count = 0;
        tl->messages_sent = rep->copies;
        tl->message_bytes_sent = (double)rep->copies * message_bytes;
    }
    if (r.pools)
        for (int d = 0; d < p; d++) {
            cuuint64_t high = 0;
            CUDA_TRY(cudaMemPoolGetAttribute(r.pools[d], cudaMemPoolAttrUsedMemHigh, &high),
                     "activation pool");
            rep->pool_high_water[d] = (double)high;
        }

error:
    if (r.gate_flag)
        *(volatile int *)r.gate_flag = 1;
    cudaDeviceSynchronize();
    (void)cudaGetLastError();
    for (size_t k = 0; r.activation && k < 3 * pairs; k++)
        if (r.activation[k])
            cudaFree(r.activation[k]);
    if (r.pools)
        for (int d = 0; d < p; d++)
            if (r.pools[d])
                cudaMemPoolDestroy(r.pools[d]);
    for (uint32_t e = 0; r.events && e < plan->event_count; e++)
        if (r.events[e])
            cudaEventDestroy(r.events[e]);
    if (r.gate_event)
        cudaEventDestroy(r.gate_event);
    if (r.gate_stream)
        cudaStreamDestroy(r.gate_stream);
    for (int l = 0; r.streams && l < r.links; l++) {
        if (r.streams[p + l])
            cudaStreamDestroy(r.streams[p + l]);
        cudaFree(r.link_src ? r.link_src[l] : NULL);
        cudaFree(r.link_dst ? r.link_dst[l] : NULL);
    }
    if (r.streams && r.green_ctx)
        destroy_stage_streams(&r);
    cudaFree(r.d_start);
    cudaFree(r.d_end);
    cudaFree(r.d_done);
    cudaFree(r.d_order);
    cudaFree(r.d_counter);
    cudaFree(r.d_timed_out);
    if (r.gate_flag)
        cudaFreeHost(r.gate_flag);
    (void)cudaGetLastError();
    bs_free(r.green_ctx);
    bs_free(r.streams);
    bs_free(r.events);
    bs_free(r.link_src);
    bs_free(r.link_dst);
    bs_free(r.activation);
    bs_free(r.pools);
    bs_free(r.order_base);
    bs_free(h_start);
    bs_free(h_end);
    bs_free(h_order);
    bs_free(rep_start);
    bs_free(rep_end);
    bs_free(makespans);
    bs_free(sorted);
    return rc;
}
