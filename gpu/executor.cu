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
 *    gate gives up after GATE_TIMEOUT_NS and the report counts how often.
 *    The host never waits on the GPU without a deadline (wait_streams): a
 *    run that does not finish is reported, not waited for.
 *  - Pre-flight, before anything is timed: CUDA_MODULE_LOADING=EAGER before
 *    the driver starts; a self-test of every operation the run puts on a
 *    stage stream (event record, cross-stream wait, memset, pool allocation
 *    and free, kernel launch), which on green-context streams falls back to
 *    plain streams with the reason; one ungated launch of every kernel per
 *    stage stream; then whole runs for WARM_MS so the clocks are up.
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

#define GATE_TIMEOUT_NS 1000000000ull /* 1 s: issuing a run takes milliseconds */
#define WARM_MS 300.0                 /* busy time before the first timing */
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

/* ------------------------------------------------------------ mlp kernels */

/* The mlp workload's GEMMs (gpu/mlp.h gives the math). Own kernels rather
 * than cuBLAS: no library to load at run time, a grid sized to the stage's
 * partition, and a fixed summation order (k ascending, as the CPU reference)
 * whatever the grid. 16 x 16 output tiles, one output per thread, the grid
 * striding over tiles. */
#define TILE 16
enum { GEMM_FORWARD = 0, GEMM_INPUT = 1, GEMM_WGRAD_ADD = 2, GEMM_WGRAD_SET = 3 };

/* C (rows x cols) = op(A) op(B) over k; FORWARD: A rows x k, B k x cols,
 * relu, also into C2; INPUT: A rows x k, B cols x k (B^T); WGRAD: A k x
 * rows (A^T), B k x cols, added to C or set. */
template <int MODE>
__global__ void gemm_kernel(int rows, int cols, int k, const float *__restrict__ a,
                            const float *__restrict__ b, float *c, float *c2)
{
    __shared__ float as[TILE][TILE + 1], bs[TILE][TILE + 1];
    int tiles_r = (rows + TILE - 1) / TILE, tiles_c = (cols + TILE - 1) / TILE;
    int tx = threadIdx.x % TILE, ty = threadIdx.x / TILE;
    for (int tile = blockIdx.x; tile < tiles_r * tiles_c; tile += gridDim.x) {
        int row = tile / tiles_c * TILE + ty, col = tile % tiles_c * TILE + tx;
        float acc = 0.0f;
        for (int k0 = 0; k0 < k; k0 += TILE) {
            int ar = tile / tiles_c * TILE + ty, ak = k0 + tx;
            int bk = k0 + ty, bc = tile % tiles_c * TILE + tx;
            float av = 0.0f, bv = 0.0f;
            if (ar < rows && ak < k)
                av = MODE == GEMM_WGRAD_ADD || MODE == GEMM_WGRAD_SET ? a[(size_t)ak * rows + ar]
                                                                      : a[(size_t)ar * k + ak];
            if (bk < k && bc < cols)
                bv = MODE == GEMM_INPUT ? b[(size_t)bc * k + bk] : b[(size_t)bk * cols + bc];
            as[ty][tx] = av;
            bs[ty][tx] = bv;
            __syncthreads();
            for (int j = 0; j < TILE; j++)
                acc += as[ty][j] * bs[j][tx];
            __syncthreads();
        }
        if (row < rows && col < cols) {
            size_t at = (size_t)row * cols + col;
            if (MODE == GEMM_FORWARD) {
                acc = acc > 0.0f ? acc : 0.0f;
                c[at] = acc;
                if (c2)
                    c2[at] = acc;
            } else if (MODE == GEMM_WGRAD_ADD) {
                c[at] += acc;
            } else {
                c[at] = acc;
            }
        }
    }
}

__global__ void mask_kernel(float *dz, const float *g, const float *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dz[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

/* c = a - lr * b, then the slot's tag says which version it holds. */
__global__ void sgd_kernel(float *c, const float *a, const float *b, float lr, size_t n,
                           unsigned *tag, unsigned version)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        c[i] = a[i] - lr * b[i];
    if (blockIdx.x == 0 && threadIdx.x == 0)
        *tag = version;
}

__global__ void tag_kernel(unsigned *out, const unsigned *tag)
{
    *out = *tag;
}

__global__ void fill_kernel(float *p, size_t n, uint32_t seed, uint32_t stream, float scale)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = bs_mlp_random(seed, stream, (uint32_t)i, scale);
}

/* An mlp op is several kernels: these two bracket them on the stage's
 * stream. The end stamp appends the op to its device's executed-order log
 * (order NULL: a timing run, not logged). */
__global__ void stamp_begin_kernel(unsigned long long *start, unsigned op, unsigned ops)
{
    unsigned long long t = global_timer();
    for (unsigned k = 0; k < ops; k++)
        start[op + k] = t;
}

__global__ void stamp_end_kernel(unsigned long long *end, unsigned op, unsigned ops,
                                 unsigned device, unsigned order_base, unsigned *order,
                                 unsigned *counter)
{
    unsigned long long t = global_timer();
    for (unsigned k = 0; k < ops; k++)
        end[op + k] = t;
    if (order) {
        unsigned at = atomicAdd(&counter[device], ops);
        for (unsigned j = 0; j < ops; j++)
            order[order_base + at + j] = op + j;
    }
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
    /* Eager module loading, whatever the environment says: under lazy
     * loading (CUDA 12.2 and later by default) a kernel's first launch loads
     * its module, which takes milliseconds to seconds, and a first launch
     * behind the gate would be timed. It acts only before the driver
     * starts, so the first call in the process decides; the report keeps
     * what that call set. */
    static char module_loading[16];
    if (!module_loading[0]) {
        const char *was = getenv("CUDA_MODULE_LOADING");
        setenv("CUDA_MODULE_LOADING", "EAGER", 1);
        snprintf(module_loading, sizeof module_loading, "%s",
                 was && strcmp(was, "EAGER") ? "EAGER (was set)" : "EAGER");
    }
    snprintf(info->module_loading, sizeof info->module_loading, "%s", module_loading);

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
    /* mlp workload (opt->workload == BS_GPU_WORKLOAD_MLP) */
    int mlp;
    bs_mlp_layout lay;
    bs_mlp_versions ver;
    bs_mlp_step *steps; /* [2 * bs_mlp_max_steps]: one op's, or a pair's */
    size_t t, wn;       /* floats per tensor, per layer's weights */
    unsigned mlp_grid;  /* blocks of the mlp kernels */
    float *data, *out_f, *recv_f, *out_b, *recv_b; /* [stages * mbs * t] (data [mbs * t]) */
    float *weight, *weight0; /* [stages * slots * L * wn], [stages * L * wn] */
    float *grad, *grad_ref, *grad_mb, *work;
    float *scratch;         /* [stages * chunk_tensors * t]: activations of timing and reference */
    unsigned *tag, *d_used; /* [stages * slots], [op_count] */
    int scratch_mode;       /* activations resolve to scratch (timing, reference) */
    float *grad_target;     /* grad or grad_ref */
    /* pre-flight and deadlines */
    unsigned long long *d_probe; /* 64 words the self-test and warm-up kernels may write */
    double deadline_s;           /* a whole run must finish within this, host time */
    int hung;                    /* a wait ran past its deadline: leave the GPU alone */
} runner;

/* "cudaStreamWaitEvent" out of "cudaStreamWaitEvent(s, e, 0)": errors name
 * the CUDA call that failed as well as what it was for. */
static const char *call_name(const char *text, char *buf, size_t size)
{
    size_t n = 0;
    while (text[n] && text[n] != '(' && n + 1 < size) {
        buf[n] = text[n];
        n++;
    }
    buf[n] = '\0';
    return buf;
}

static int cuda_fail(bs_error *err, cudaError_t e, const char *call, const char *what)
{
    char name[64];
    return bs_fail(err, e == cudaErrorMemoryAllocation ? BS_ERR_NOMEM : BS_ERR_INTERNAL,
                   "GPU: %s: %s failed: %s (%s)", what, call_name(call, name, sizeof name),
                   cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CUDA_TRY(call, what)                                                                       \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            rc = cuda_fail(err, e_, #call, what);                                                  \
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

static double host_ms(void)
{
    return host_ns() / 1e6;
}

/* Waits until every stage and copy stream (and the gate stream) is idle,
 * polling, for at most seconds; past that, sets r->hung and fails naming
 * what was waited for and which streams were still busy, rather than hang
 * the process on a kernel that does not end. */
static int wait_streams(runner *r, double seconds, const char *what, bs_error *err)
{
    double until = host_ms() + seconds * 1000.0;
    int queues = r->devices + r->links;
    for (;;) {
        int busy = 0, first_busy = -1;
        for (int q = -1; q < queues; q++) {
            cudaStream_t st = q < 0 ? r->gate_stream : r->streams[q];
            if (!st)
                continue;
            cudaError_t e = cudaStreamQuery(st);
            if (e == cudaErrorNotReady) {
                busy++;
                if (first_busy < 0)
                    first_busy = q;
            } else if (e != cudaSuccess) {
                return cuda_fail(err, e, "cudaStreamQuery", what);
            }
        }
        if (!busy)
            return BS_OK;
        if (host_ms() > until) {
            r->hung = 1;
            return bs_fail(err, BS_ERR_INTERNAL,
                           "GPU: %s did not finish within %.0f s (%d stream%s still busy, the "
                           "first %s %d); gave up rather than hang",
                           what, seconds, busy, busy == 1 ? "" : "s",
                           first_busy < 0 ? "the gate stream" : "stream", first_busy);
        }
        struct timespec pause = {0, 20000}; /* 20 us: the host's poll, not the GPU's time */
        nanosleep(&pause, NULL);
    }
}

/* Tries, on every stage stream, each operation the run puts there: an
 * event record, a wait on another stream's event, a memset, a pool
 * allocation and free (when activations are allocated), a kernel launch;
 * then waits for all. 0 when every one worked; else writes which call
 * failed on which stage into why and returns -1. A failure leaves the
 * context usable where the error is not sticky, so streams can take over. */
static int selftest_streams(runner *r, char *why, size_t size)
{
    bs_error e_err = {{0}};
    bs_error *err = &e_err;
    int rc = BS_OK, p = r->devices;
    cudaEvent_t *ev = (cudaEvent_t *)bs_zalloc_array((size_t)p, sizeof *ev);
    cudaMemPool_t pool = NULL;
    void *block = NULL;
    int d = 0;
    if (!ev) {
        snprintf(why, size, "out of memory for the self-test");
        return -1;
    }
    for (d = 0; d < p; d++)
        CUDA_TRY(cudaEventCreateWithFlags(&ev[d], cudaEventDisableTiming), "self-test events");
    if (r->opt->allocate_activations) {
        cudaMemPoolProps props;
        memset(&props, 0, sizeof props);
        props.allocType = cudaMemAllocationTypePinned;
        props.location.type = cudaMemLocationTypeDevice;
        props.location.id = r->opt->device;
        CUDA_TRY(cudaMemPoolCreate(&pool, &props), "self-test pool");
    }
    for (d = 0; d < p; d++) {
        cudaStream_t st = r->streams[d];
        unsigned *words = (unsigned *)r->d_probe;
        CUDA_TRY(cudaEventRecord(ev[d], st), "self-test event record");
        if (d > 0)
            CUDA_TRY(cudaStreamWaitEvent(st, ev[d - 1], 0), "self-test cross-stream wait");
        CUDA_TRY(cudaMemsetAsync(words + d % 32, 0, sizeof *words, st), "self-test memset");
        if (pool) {
            CUDA_TRY(cudaMallocFromPoolAsync(&block, 256, pool, st), "self-test pool allocation");
            CUDA_TRY(cudaFreeAsync(block, st), "self-test pool free");
            block = NULL;
        }
        spin_kernel<<<1, SPIN_THREADS, 0, st>>>(0, 0, 0, 0, 0, r->d_probe, r->d_probe + 1,
                                                words + 32, words + 40, words + 48);
        CUDA_TRY(cudaGetLastError(), "self-test spin_kernel launch");
    }
    d = p;
    rc = wait_streams(r, 10.0, "the stream self-test", err);
error:
    if (rc) {
        if (d < p)
            snprintf(why, size, "stage %d's stream: %.150s", d, e_err.message);
        else
            snprintf(why, size, "%.180s", e_err.message);
    }
    if (!r->hung) {
        if (pool)
            cudaMemPoolDestroy(pool);
        for (int k = 0; k < p; k++)
            if (ev[k])
                cudaEventDestroy(ev[k]);
    }
    (void)cudaGetLastError();
    bs_free(ev);
    return rc ? -1 : 0;
}

/* One ungated launch of every kernel the run uses on every stage stream,
 * with no work, so that nothing timed is a first launch (module loading,
 * first-launch set-up). Counts the launches into the report. */
static int warm_kernels(runner *r, bs_error *err)
{
    int rc = BS_OK;
    unsigned *words = (unsigned *)r->d_probe;
    float *f = (float *)r->d_probe;
    *(volatile int *)r->gate_flag = 1; /* the gate lets go at once */
    r->rep->kernels_warmed = 0;
    for (int d = 0; d < r->devices; d++) {
        cudaStream_t st = r->streams[d];
        gate_kernel<<<1, 1, 0, st>>>(r->d_gate_flag, (int *)(words + 56));
        spin_kernel<<<r->blocks, SPIN_THREADS, 0, st>>>(0, 0, 0, 0, 0, r->d_probe, r->d_probe + 1,
                                                        words + 32, words + 40, words + 48);
        r->rep->kernels_warmed += 2;
        if (r->mlp) {
            gemm_kernel<GEMM_FORWARD><<<1, TILE * TILE, 0, st>>>(0, 0, 0, f, f, f + 1, NULL);
            gemm_kernel<GEMM_INPUT><<<1, TILE * TILE, 0, st>>>(0, 0, 0, f, f, f + 1, NULL);
            gemm_kernel<GEMM_WGRAD_ADD><<<1, TILE * TILE, 0, st>>>(0, 0, 0, f, f, f + 1, NULL);
            gemm_kernel<GEMM_WGRAD_SET><<<1, TILE * TILE, 0, st>>>(0, 0, 0, f, f, f + 1, NULL);
            mask_kernel<<<1, 256, 0, st>>>(f + 2, f, f, 0);
            sgd_kernel<<<1, 256, 0, st>>>(f + 2, f, f, 0.0f, 0, words + 58, 0);
            tag_kernel<<<1, 1, 0, st>>>(words + 60, words + 58);
            stamp_begin_kernel<<<1, 1, 0, st>>>(r->d_probe, 0, 0);
            stamp_end_kernel<<<1, 1, 0, st>>>(r->d_probe, 0, 0, 0, 0, NULL, words + 62);
            fill_kernel<<<1, 256, 0, st>>>(f + 2, 0, 0, 0, 1.0f);
            r->rep->kernels_warmed += 10;
        }
        CUDA_TRY(cudaGetLastError(), "warm-up launches");
    }
    rc = wait_streams(r, 10.0, "the warm-up launches", err);
error:
    return rc;
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
    /* Every operation the run puts on a stage stream, tried on every
     * green-context stream before the measurement relies on them. */
    {
        char why[192];
        if (selftest_streams(r, why, sizeof why)) {
            snprintf(rep->mode_reason, sizeof rep->mode_reason,
                     "the green-context self-test failed, so plain streams ran: %s", why);
            snprintf(rep->selftest, sizeof rep->selftest, "green-context streams: FAILED: %s", why);
            goto done;
        }
        snprintf(rep->selftest, sizeof rep->selftest,
                 "green-context streams: event record, cross-stream wait, memset,%s kernel "
                 "launch on each of %u streams: ok",
                 r->opt->allocate_activations ? " pool allocation and free," : "", p);
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

/* ----------------------------------------------------------- mlp runner */

/* The device address of a tensor (gpu/mlp.h names them); NULL where it does
 * not exist, which plan and layout exclude (the CPU tests check that). */
static float *mlp_ptr(const runner *r, const bs_mlp_ref *ref)
{
    size_t mbs = r->prog->microbatches, sm = (size_t)ref->stage * mbs + ref->mb;
    size_t layers = (size_t)r->opt->mlp.layers, slots = (size_t)r->ver.max_slots;
    switch (ref->buf) {
    case BS_MLP_DATA:
        return r->data + (size_t)ref->mb * r->t;
    case BS_MLP_OUT_F:
        return r->out_f + sm * r->t;
    case BS_MLP_RECV_F:
        return r->recv_f + sm * r->t;
    case BS_MLP_OUT_B:
        return r->out_b + sm * r->t;
    case BS_MLP_RECV_B:
        return r->recv_b + sm * r->t;
    case BS_MLP_ACT:
        if (r->scratch_mode) {
            /* One chunk's activation per stage: a part's tensors after the
             * TRANSIENT one (which holds one tensor). */
            size_t base = (size_t)ref->stage * (size_t)r->lay.chunk_tensors;
            size_t at = ref->part == BS_GPU_PART_KEPT ? 1 + ref->index : ref->index;
            return r->scratch + (base + at) * r->t;
        }
        {
            float *p = (float *)r->activation[sm * 3 + ref->part];
            return p ? p + (size_t)ref->index * r->t : NULL;
        }
    case BS_MLP_WEIGHT:
        return r->weight + (((size_t)ref->stage * slots + ref->mb) * layers + ref->index) * r->wn;
    case BS_MLP_GRAD:
        return r->grad_target + ((size_t)ref->stage * layers + ref->index) * r->wn;
    case BS_MLP_GRAD_MB:
        return r->grad_mb + ((size_t)ref->stage * layers + ref->index) * r->wn;
    case BS_MLP_WORK:
        return r->work + ((size_t)ref->stage * BS_MLP_WORK_TENSORS + ref->index) * r->t;
    default:
        return NULL;
    }
}

static unsigned *mlp_tag(const runner *r, const bs_mlp_ref *ref)
{
    return r->tag + (size_t)ref->stage * (size_t)r->ver.max_slots + ref->mb;
}

static unsigned grid_for(const runner *r, size_t tiles)
{
    return (unsigned)(tiles < r->mlp_grid ? (tiles ? tiles : 1) : r->mlp_grid);
}

/* Launches op's steps on s (the work of one mlp op, no stamps). */
static int mlp_launch_op(runner *r, const bs_mlp_layout *lay, const bs_op *op, uint32_t index,
                         const bs_mlp_versions *ver, cudaStream_t s, bs_error *err)
{
    int rc = BS_OK, b = r->opt->mlp.batch, h = r->opt->mlp.hidden;
    size_t count = bs_mlp_expand(lay, op, index, ver, r->steps);
    size_t tiles_act = (size_t)((b + TILE - 1) / TILE) * (size_t)((h + TILE - 1) / TILE);
    size_t tiles_w = (size_t)((h + TILE - 1) / TILE) * (size_t)((h + TILE - 1) / TILE);
    for (size_t k = 0; k < count; k++) {
        const bs_mlp_step *st = &r->steps[k];
        float *a = mlp_ptr(r, &st->a), *bb = mlp_ptr(r, &st->b), *c = mlp_ptr(r, &st->c);
        float *c2 = st->c2.buf ? mlp_ptr(r, &st->c2) : NULL;
        if (!a || (st->kind != BS_MLP_STEP_TAG && (!bb || !c))) {
            char text[48];
            return bs_fail(err, BS_ERR_INTERNAL, "GPU: mlp step %zu of %s has no tensor", k,
                           bs_op_format(op, text, sizeof text));
        }
        switch (st->kind) {
        case BS_MLP_STEP_FORWARD:
            gemm_kernel<GEMM_FORWARD>
                <<<grid_for(r, tiles_act), TILE * TILE, 0, s>>>(b, h, h, a, bb, c, c2);
            break;
        case BS_MLP_STEP_MASK:
            mask_kernel<<<grid_for(r, r->t / 256 + 1), 256, 0, s>>>(c, a, bb, r->t);
            break;
        case BS_MLP_STEP_INPUT:
            gemm_kernel<GEMM_INPUT>
                <<<grid_for(r, tiles_act), TILE * TILE, 0, s>>>(b, h, h, a, bb, c, NULL);
            break;
        case BS_MLP_STEP_WGRAD_ADD:
            gemm_kernel<GEMM_WGRAD_ADD>
                <<<grid_for(r, tiles_w), TILE * TILE, 0, s>>>(h, h, b, a, bb, c, NULL);
            break;
        case BS_MLP_STEP_WGRAD_SET:
            gemm_kernel<GEMM_WGRAD_SET>
                <<<grid_for(r, tiles_w), TILE * TILE, 0, s>>>(h, h, b, a, bb, c, NULL);
            break;
        case BS_MLP_STEP_SGD:
            sgd_kernel<<<grid_for(r, r->wn / 256 + 1), 256, 0, s>>>(
                c, a, bb, (float)r->opt->mlp.lr, r->wn, mlp_tag(r, &st->c), st->value);
            break;
        case BS_MLP_STEP_TAG:
            tag_kernel<<<1, 1, 0, s>>>(r->d_used + st->value, mlp_tag(r, &st->a));
            break;
        default:
            return bs_fail(err, BS_ERR_INTERNAL, "GPU: unknown mlp step %u", st->kind);
        }
        CUDA_TRY(cudaGetLastError(), "mlp kernel launch");
    }
error:
    return rc;
}

/* One plan kernel command of the mlp workload: stamps around the steps of
 * its op (or overlapped pair, run one after the other). */
static int mlp_issue_kernel(runner *r, const bs_gpu_cmd *c, cudaStream_t s, int log, bs_error *err)
{
    int rc = BS_OK;
    stamp_begin_kernel<<<1, 1, 0, s>>>(r->d_start, c->op, c->ops);
    for (uint32_t j = c->op; j < c->op + c->ops && !rc; j++)
        rc = mlp_launch_op(r, &r->lay, &r->prog->ops[j], j, &r->ver, s, err);
    if (rc)
        return rc;
    stamp_end_kernel<<<1, 1, 0, s>>>(r->d_end, c->op, c->ops, c->queue, r->order_base[c->op],
                                     log ? r->d_order : NULL, r->d_counter);
    CUDA_TRY(cudaGetLastError(), "mlp stamp launch");
error:
    return rc;
}

/* Weights back to version 0 and gradients to zero: every repetition
 * computes the same numbers. */
static int mlp_reset(runner *r, bs_error *err)
{
    int rc = BS_OK;
    size_t stages = (size_t)r->prog->stages, layers = (size_t)r->opt->mlp.layers;
    size_t chunk_w = layers * r->wn;
    for (size_t c = 0; c < stages; c++)
        CUDA_TRY(cudaMemcpy(r->weight + c * (size_t)r->ver.max_slots * chunk_w,
                            r->weight0 + c * chunk_w, chunk_w * sizeof(float),
                            cudaMemcpyDeviceToDevice),
                 "mlp weights");
    CUDA_TRY(cudaMemset(r->tag, 0, stages * (size_t)r->ver.max_slots * sizeof *r->tag), "mlp tags");
    CUDA_TRY(cudaMemset(r->grad, 0, stages * chunk_w * sizeof(float)), "mlp gradients");
    CUDA_TRY(cudaMemset(r->d_used, 0xff, r->prog->op_count * sizeof *r->d_used), "mlp tags");
error:
    return rc;
}

/* Device memory of the mlp workload, filled with the seeded inputs and
 * weights. Refuses up front what does not fit. */
static int mlp_setup(runner *r, bs_error *err)
{
    const bs_program *prog = r->prog;
    const bs_mlp_shape *shape = &r->opt->mlp;
    int rc = BS_OK;
    size_t stages = (size_t)prog->stages, mbs = prog->microbatches, pairs = stages * mbs;
    if ((rc = bs_mlp_layout_build(&r->lay, prog, shape, err)) ||
        (rc = bs_mlp_versions_build(&r->ver, prog, err)))
        return rc;
    if (!(r->steps =
              (bs_mlp_step *)bs_alloc_array(2 * bs_mlp_max_steps(shape->layers), sizeof *r->steps)))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for the mlp steps");
    r->t = (size_t)shape->batch * (size_t)shape->hidden;
    r->wn = (size_t)shape->hidden * (size_t)shape->hidden;
    size_t layers = (size_t)shape->layers, slots = (size_t)r->ver.max_slots;
    size_t chunk_w = layers * r->wn;
    double bytes = 4.0 * ((double)(mbs + 4 * pairs + stages * (size_t)r->lay.chunk_tensors +
                                   (size_t)r->devices * BS_MLP_WORK_TENSORS) *
                              (double)r->t +
                          (double)(stages * slots + 4 * stages) * (double)chunk_w);
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes), "memory query");
    if (bytes > 0.6 * (double)free_bytes)
        return bs_fail(err, BS_ERR_LIMIT,
                       "GPU run: the mlp needs %.3g GB of tensors and weights besides the "
                       "activation pools, %.3g GB is free; lower gpu.mlp.hidden, gpu.mlp.batch "
                       "or the micro-batch count",
                       bytes / 1e9, (double)free_bytes / 1e9);
    CUDA_TRY(cudaMalloc(&r->data, (mbs ? mbs : 1) * r->t * sizeof(float)), "mlp inputs");
    CUDA_TRY(cudaMalloc(&r->out_f, pairs * r->t * sizeof(float)), "mlp messages");
    CUDA_TRY(cudaMalloc(&r->recv_f, pairs * r->t * sizeof(float)), "mlp messages");
    CUDA_TRY(cudaMalloc(&r->out_b, pairs * r->t * sizeof(float)), "mlp messages");
    CUDA_TRY(cudaMalloc(&r->recv_b, pairs * r->t * sizeof(float)), "mlp messages");
    CUDA_TRY(cudaMalloc(&r->scratch, stages * (size_t)r->lay.chunk_tensors * r->t * sizeof(float)),
             "mlp scratch");
    CUDA_TRY(cudaMalloc(&r->work, (size_t)r->devices * BS_MLP_WORK_TENSORS * r->t * sizeof(float)),
             "mlp work tensors");
    CUDA_TRY(cudaMalloc(&r->weight, stages * slots * chunk_w * sizeof(float)), "mlp weights");
    CUDA_TRY(cudaMalloc(&r->weight0, stages * chunk_w * sizeof(float)), "mlp weights");
    CUDA_TRY(cudaMalloc(&r->grad, stages * chunk_w * sizeof(float)), "mlp gradients");
    CUDA_TRY(cudaMalloc(&r->grad_ref, stages * chunk_w * sizeof(float)), "mlp gradients");
    CUDA_TRY(cudaMalloc(&r->grad_mb, stages * chunk_w * sizeof(float)), "mlp gradients");
    CUDA_TRY(cudaMalloc(&r->tag, stages * slots * sizeof *r->tag), "mlp tags");
    CUDA_TRY(cudaMalloc(&r->d_used, (prog->op_count ? prog->op_count : 1) * sizeof *r->d_used),
             "mlp tags");
    CUDA_TRY(cudaMemset(r->out_f, 0, pairs * r->t * sizeof(float)), "mlp messages");
    CUDA_TRY(cudaMemset(r->recv_f, 0, pairs * r->t * sizeof(float)), "mlp messages");
    CUDA_TRY(cudaMemset(r->out_b, 0, pairs * r->t * sizeof(float)), "mlp messages");
    CUDA_TRY(cudaMemset(r->recv_b, 0, pairs * r->t * sizeof(float)), "mlp messages");
    CUDA_TRY(
        cudaMemset(r->scratch, 0, stages * (size_t)r->lay.chunk_tensors * r->t * sizeof(float)),
        "mlp scratch");
    for (uint32_t m = 0; m < mbs; m++)
        fill_kernel<<<64, 256>>>(r->data + m * r->t, r->t, shape->seed, m, 1.0f);
    for (size_t c = 0; c < stages; c++)
        for (size_t l = 0; l < layers; l++)
            fill_kernel<<<64, 256>>>(r->weight0 + (c * layers + l) * r->wn, r->wn, shape->seed,
                                     BS_MLP_WEIGHT_STREAM(c, l),
                                     bs_mlp_weight_scale(shape->hidden));
    CUDA_TRY(cudaGetLastError(), "mlp fill");
    CUDA_TRY(cudaDeviceSynchronize(), "mlp fill");
    r->grad_target = r->grad;
    r->mlp_grid = 4 * r->blocks;
    if ((rc = mlp_reset(r, err)))
        goto error;
    /* The stage streams are non-blocking: nothing orders them after the
     * legacy stream's fills and copies but this. */
    CUDA_TRY(cudaDeviceSynchronize(), "mlp setup");
error:
    return rc;
}

static void mlp_teardown(runner *r)
{
    float *all[] = {r->data, r->out_f,  r->recv_f,  r->out_b, r->recv_b,   r->scratch,
                    r->work, r->weight, r->weight0, r->grad,  r->grad_ref, r->grad_mb};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        cudaFree(all[k]);
    cudaFree(r->tag);
    cudaFree(r->d_used);
    bs_free(r->steps);
    bs_mlp_versions_free(&r->ver);
    bs_mlp_layout_free(&r->lay);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Each op kind timed alone on its chunk's stage stream, from the same
 * stamps as the run and, as in the run, issued behind a gate. The timing
 * goes in rounds: each round times every (kind, chunk) once, WARM rounds
 * are dropped, and of the SAMPLES kept the median is the cost and
 * (slowest - fastest) / median its spread, so a drift of the clocks during
 * the timing spreads over every op alike instead of biasing the last ones.
 * Activations come from the scratch tensors, so no pool is involved. */
static int mlp_measure_costs(runner *r, bs_error *err)
{
    enum { WARM = 2, SAMPLES = 7 };
    const bs_program *prog = r->prog;
    bs_gpu_report *rep = r->rep;
    int rc = BS_OK, stages = prog->stages, targets = 0, timed_out = 0;
    size_t slots = 4 * (size_t)stages + 1;
    unsigned long long stamp[2];
    double *ms = NULL, sorted[SAMPLES];
    struct target {
        int kind, chunk, device;
        size_t op;
    } *list = NULL;
    rep->mlp_stages = stages;
    rep->mlp_samples = SAMPLES;
    rep->mlp_optimizer_ms = 0;
    if (!(rep->mlp_costs = (double *)bs_alloc_array(4 * (size_t)stages, sizeof(double))) ||
        !(rep->mlp_cost_spread = (double *)bs_alloc_array(4 * (size_t)stages, sizeof(double))) ||
        !(list = (struct target *)bs_alloc_array(slots, sizeof *list)) ||
        !(ms = (double *)bs_alloc_array(slots * SAMPLES, sizeof *ms))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the mlp costs");
        goto error;
    }
    for (size_t k = 0; k < 4 * (size_t)stages; k++)
        rep->mlp_costs[k] = rep->mlp_cost_spread[k] = -1;
    for (int kind = BS_OP_FORWARD; kind <= BS_OP_OPTIMIZER; kind++)
        for (int c = 0; c < (kind == BS_OP_OPTIMIZER ? 1 : stages); c++) {
            size_t i = 0;
            while (i < prog->op_count && !(prog->ops[i].kind == kind &&
                                           (kind == BS_OP_OPTIMIZER || prog->ops[i].stage == c)))
                i++;
            if (i == prog->op_count)
                continue;
            int d = 0;
            while (i >= prog->device_first[d + 1])
                d++;
            list[targets].kind = kind;
            list[targets].chunk = c;
            list[targets].device = d;
            list[targets].op = i;
            targets++;
        }
    r->scratch_mode = 1;
    CUDA_TRY(cudaMemset(r->d_timed_out, 0, sizeof *r->d_timed_out), "mlp timing gate");
    /* The stage streams are non-blocking: only this orders them after the
     * legacy stream's memset. Nothing is running yet, so it cannot hang. */
    CUDA_TRY(cudaDeviceSynchronize(), "mlp timing gate");
    for (int round = 0; round < WARM + SAMPLES; round++)
        for (int t = 0; t < targets; t++) {
            const struct target *tg = &list[t];
            bs_gpu_cmd cmd;
            memset(&cmd, 0, sizeof cmd);
            cmd.op = (uint32_t)tg->op;
            cmd.ops = 1;
            cmd.queue = (uint32_t)tg->device;
            /* Behind a gate, like the run: the op's kernels are all
             * queued before the first starts, so host launch time stays
             * out of the cost. */
            *(volatile int *)r->gate_flag = 0;
            __sync_synchronize();
            gate_kernel<<<1, 1, 0, r->streams[tg->device]>>>(r->d_gate_flag, r->d_timed_out);
            rc = mlp_issue_kernel(r, &cmd, r->streams[tg->device], 0, err);
            __sync_synchronize();
            *(volatile int *)r->gate_flag = 1;
            if (rc)
                goto error;
            if ((rc = wait_streams(r, r->deadline_s, "mlp cost timing", err)))
                goto error;
            CUDA_TRY(
                cudaMemcpy(&stamp[0], r->d_start + tg->op, sizeof stamp[0], cudaMemcpyDeviceToHost),
                "mlp timing stamps");
            CUDA_TRY(
                cudaMemcpy(&stamp[1], r->d_end + tg->op, sizeof stamp[1], cudaMemcpyDeviceToHost),
                "mlp timing stamps");
            if (round >= WARM)
                ms[(size_t)t * SAMPLES + (size_t)(round - WARM)] =
                    (double)(stamp[1] - stamp[0]) / 1e6;
        }
    for (int t = 0; t < targets; t++) {
        memcpy(sorted, ms + (size_t)t * SAMPLES, sizeof sorted);
        qsort(sorted, SAMPLES, sizeof sorted[0], cmp_double);
        double median = sorted[SAMPLES / 2];
        double spread = median > 0 ? (sorted[SAMPLES - 1] - sorted[0]) / median * 100.0 : 0;
        if (list[t].kind == BS_OP_OPTIMIZER) {
            rep->mlp_optimizer_ms = median;
        } else {
            size_t at = (size_t)list[t].kind * (size_t)stages + (size_t)list[t].chunk;
            rep->mlp_costs[at] = median;
            rep->mlp_cost_spread[at] = spread;
        }
    }
    CUDA_TRY(cudaMemcpy(&timed_out, r->d_timed_out, sizeof timed_out, cudaMemcpyDeviceToHost),
             "mlp timing gate");
    rep->gate_timeouts += timed_out != 0;
error:
    r->scratch_mode = 0;
    bs_free(list);
    bs_free(ms);
    return rc;
}

/* After the measured runs: the pipelined gradients (last repetition)
 * against micro-batches run one after another on stage 0's stream, or, for
 * weight-updating programs, the version each op read. */
static int mlp_numerics(runner *r, bs_error *err)
{
    const bs_program *prog = r->prog;
    bs_mlp_numerics *n = &r->rep->numerics;
    int rc, stages = prog->stages;
    size_t chunk_w = (size_t)r->opt->mlp.layers * r->wn, all = (size_t)stages * chunk_w;
    uint32_t *used = NULL;
    float *got = NULL, *want = NULL;
    if ((rc = bs_mlp_numerics_reserve(n, stages, (uint32_t)((size_t)stages * prog->microbatches),
                                      err)))
        return rc;
    if (!(used = (uint32_t *)bs_alloc_array(prog->op_count + 1, sizeof *used)) ||
        !(got = (float *)bs_alloc_array(all + 1, sizeof *got)) ||
        !(want = (float *)bs_alloc_array(all + 1, sizeof *want))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the mlp numerics");
        goto error;
    }
    CUDA_TRY(cudaMemcpy(used, r->d_used, prog->op_count * sizeof *used, cudaMemcpyDeviceToHost),
             "mlp tags");
    bs_mlp_numerics_versions(n, prog, &r->ver, used);
    if (!r->ver.active && !(prog->flags & BS_PROGRAM_FORWARD_ONLY)) {
        bs_mlp_layout ref = r->lay;
        cudaStream_t s = r->streams[0];
        ref.stage_device = NULL;
        ref.pair_split = NULL;
        CUDA_TRY(cudaMemcpy(got, r->grad, all * sizeof *got, cudaMemcpyDeviceToHost),
                 "mlp gradients");
        /* On s itself: s does not order itself after the legacy stream. */
        CUDA_TRY(cudaMemsetAsync(r->grad_ref, 0, all * sizeof(float), s), "mlp gradients");
        r->grad_target = r->grad_ref;
        r->scratch_mode = 1;
        for (uint32_t k = 0; k < 2u * (uint32_t)stages * prog->microbatches && !rc; k++) {
            bs_op op = bs_mlp_reference_op(stages, k);
            rc = mlp_launch_op(r, &ref, &op, 0, NULL, s, err);
        }
        r->grad_target = r->grad;
        r->scratch_mode = 0;
        if (rc)
            goto error;
        if ((rc = wait_streams(r, r->deadline_s, "the mlp reference run", err)))
            goto error;
        CUDA_TRY(cudaMemcpy(want, r->grad_ref, all * sizeof *want, cudaMemcpyDeviceToHost),
                 "mlp gradients");
        n->worst_rel_err = 0;
        for (int c = 0; c < stages; c++) {
            double scale = 0;
            n->max_rel_err[c] = bs_mlp_rel_err(got + (size_t)c * chunk_w,
                                               want + (size_t)c * chunk_w, chunk_w, &scale);
            n->grad_scale = scale > n->grad_scale ? scale : n->grad_scale;
            if (n->max_rel_err[c] > n->worst_rel_err)
                n->worst_rel_err = n->max_rel_err[c];
        }
    }
    n->checked = 1;
error:
    bs_free(used);
    bs_free(got);
    bs_free(want);
    return rc;
}

static const char *cmd_kind_name(unsigned kind)
{
    static const char *const names[] = {"alloc", "wait", "kernel", "record", "copy", "free"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* Appends to err's message which plan command failed, and its op. */
static void name_command(bs_error *err, const runner *r, size_t i)
{
    const bs_gpu_cmd *c = &r->plan->cmds[i];
    char op[48] = "-";
    size_t len = strlen(err->message);
    if (c->op < r->prog->op_count)
        bs_op_format(&r->prog->ops[c->op], op, sizeof op);
    snprintf(err->message + len, sizeof err->message - len,
             " (plan command %zu: %s on queue %u, op %s, micro-batch %u)", i,
             cmd_kind_name(c->kind), c->queue, op, c->microbatch);
}

/* Issues the whole plan once behind the gate and waits for it, at most
 * r->deadline_s. An error names the CUDA call, and the plan command and
 * op it was issuing. */
static int run_once(runner *r, int *timed_out, bs_error *err)
{
    const bs_gpu_plan *plan = r->plan;
    const bs_program *prog = r->prog;
    size_t n = prog->op_count, m = prog->microbatches, i = plan->cmd_count;
    int rc = BS_OK;
    CUDA_TRY(cudaMemset(r->d_start, 0xff, n * sizeof *r->d_start), "reset stamps");
    CUDA_TRY(cudaMemset(r->d_end, 0, n * sizeof *r->d_end), "reset stamps");
    CUDA_TRY(cudaMemset(r->d_done, 0, n * sizeof *r->d_done), "reset stamps");
    CUDA_TRY(cudaMemset(r->d_order, 0xff, n * sizeof *r->d_order), "reset order log");
    CUDA_TRY(cudaMemset(r->d_counter, 0, (size_t)r->devices * sizeof *r->d_counter),
             "reset order log");
    CUDA_TRY(cudaMemset(r->d_timed_out, 0, sizeof *r->d_timed_out), "reset gate");
    if (r->mlp && (rc = mlp_reset(r, err)))
        goto error;
    CUDA_TRY(cudaDeviceSynchronize(), "reset");
    *(volatile int *)r->gate_flag = 0;
    gate_kernel<<<1, 1, 0, r->gate_stream>>>(r->d_gate_flag, r->d_timed_out);
    CUDA_TRY(cudaEventRecord(r->gate_event, r->gate_stream), "gate");
    for (int d = 0; d < r->devices; d++)
        CUDA_TRY(cudaStreamWaitEvent(r->streams[d], r->gate_event, 0), "gate wait");

    r->rep->copies = 0;
    for (i = 0; i < plan->cmd_count; i++) {
        const bs_gpu_cmd *c = &plan->cmds[i];
        cudaStream_t s = queue_stream(r, c->queue);
        size_t slot = ((size_t)c->stage * m + c->microbatch) * 3 + c->part;
        switch (c->kind) {
        case BS_GPU_ALLOC:
            if (r->pools)
                CUDA_TRY(cudaMallocFromPoolAsync(&r->activation[slot],
                                                 c->bytes >= 1 ? (size_t)(c->bytes + 0.5) : 1,
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
            if (r->mlp) {
                bs_mlp_ref from, to;
                bs_mlp_copy_refs(&prog->ops[c->op], &from, &to);
                CUDA_TRY(cudaMemcpyAsync(mlp_ptr(r, &to), mlp_ptr(r, &from), r->t * sizeof(float),
                                         cudaMemcpyDeviceToDevice, s),
                         "message copy");
            } else if (r->message_bytes)
                CUDA_TRY(cudaMemcpyAsync(r->link_dst[l], r->link_src[l], r->message_bytes,
                                         cudaMemcpyDeviceToDevice, s),
                         "message copy");
            r->rep->copies++;
            break;
        }
        case BS_GPU_KERNEL: {
            if (r->mlp) {
                if ((rc = mlp_issue_kernel(r, c, s, 1, err)))
                    goto error;
                break;
            }
            double ns = c->duration * 1e6;
            spin_kernel<<<r->blocks, SPIN_THREADS, 0, s>>>(
                ns > 0 ? (unsigned long long)(ns + 0.5) : 0ull, c->op, c->ops, c->queue,
                r->order_base[c->op], r->d_start, r->d_end, r->d_done, r->d_order, r->d_counter);
            CUDA_TRY(cudaGetLastError(), "spin_kernel launch");
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
    if ((rc = wait_streams(r, r->deadline_s, "the run", err)))
        goto error;
    CUDA_TRY(cudaMemcpy(timed_out, r->d_timed_out, sizeof *timed_out, cudaMemcpyDeviceToHost),
             "gate result");
error:
    if (rc)
        *(volatile int *)r->gate_flag = 1; /* never leave the gate kernel waiting */
    if (rc && i < plan->cmd_count)
        name_command(err, r, i);
    return rc;
}

/* Median time of a copy of `bytes` alone on the first copy stream. */
static int time_copy(runner *r, size_t bytes, double *out, bs_error *err)
{
    enum { WARM = 3, SAMPLES = 21 };
    cudaEvent_t a = NULL, b = NULL;
    float ms[SAMPLES];
    int rc = BS_OK;
    cudaStream_t s = r->streams[r->devices];
    CUDA_TRY(cudaEventCreate(&a), "copy probe events");
    CUDA_TRY(cudaEventCreate(&b), "copy probe events");
    for (int i = 0; i < WARM + SAMPLES; i++) {
        CUDA_TRY(cudaEventRecord(a, s), "copy probe");
        if (bytes)
            CUDA_TRY(
                cudaMemcpyAsync(r->link_dst[0], r->link_src[0], bytes, cudaMemcpyDeviceToDevice, s),
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
    *out = ms[SAMPLES / 2];
error:
    if (a)
        cudaEventDestroy(a);
    if (b)
        cudaEventDestroy(b);
    return rc;
}

/* The message copy's time, and a 4-byte copy's as the link latency; the
 * difference gives the bandwidth, so latency + bytes / bandwidth is the
 * message copy's time. */
static int measure_copy(runner *r, bs_error *err)
{
    bs_gpu_report *rep = r->rep;
    int rc;
    rep->copy_ms = rep->copy_latency_ms = rep->copy_bandwidth = 0;
    if (r->links == 0)
        return BS_OK;
    if ((rc = time_copy(r, r->message_bytes, &rep->copy_ms, err)) ||
        (rc = time_copy(r, r->message_bytes >= 4 ? 4 : r->message_bytes, &rep->copy_latency_ms,
                        err)))
        return rc;
    if (rep->copy_ms > rep->copy_latency_ms && r->message_bytes > 4)
        rep->copy_bandwidth =
            (double)r->message_bytes / ((rep->copy_ms - rep->copy_latency_ms) / 1000.0);
    return BS_OK;
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
    bs_op_time *rep_times = NULL;
    double *makespans = NULL;
    int *sorted = NULL;
    double message_bytes = 0;
    int order_differs = 0;

    bs_gpu_report_free(rep);
    if (opt->reps < 1 || opt->warmup < 0)
        return bs_fail(err, BS_ERR_INVALID, "GPU run needs at least one repetition");
    if (opt->workload == BS_GPU_WORKLOAD_MLP && !opt->allocate_activations && plan->allocs)
        return bs_fail(err, BS_ERR_INVALID,
                       "the mlp workload keeps its activations in the stage pools: it needs "
                       "allocate_activations");
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
    r.mlp = opt->workload == BS_GPU_WORKLOAD_MLP;
    rep->reps = opt->reps;
    rep->warmup = opt->warmup;
    rep->gate_timeout_ms = GATE_TIMEOUT_NS / 1e6;
    {
        /* A run must end within this: 5 x its ops one after another under
         * the config's costs, plus 20 s (60 s for mlp, whose ops take what
         * the GEMMs take) for set-up and slow clocks. Past it the host
         * reports instead of waiting for ever. */
        double serial_ms = 0;
        for (size_t i = 0; i < plan->cmd_count; i++)
            if (plan->cmds[i].kind == BS_GPU_KERNEL && plan->cmds[i].duration > 0)
                serial_ms += plan->cmds[i].duration;
        r.deadline_s = (r.mlp ? 60.0 : 20.0) + 5.0 * serial_ms / 1000.0;
    }

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
        !(rep_times = (bs_op_time *)bs_alloc_array(n * (size_t)opt->reps, sizeof *rep_times)) ||
        !(makespans = (double *)bs_alloc_array((size_t)opt->reps, sizeof *makespans)) ||
        !(sorted = (int *)bs_alloc_array((size_t)opt->reps, sizeof *sorted))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the GPU run");
        goto error;
    }
    if ((rc = bs_gpu_report_reserve(rep, n, p, err)))
        goto error;
    for (int d = 0; d < p; d++)
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++)
            r.order_base[i] = (unsigned)prog->device_first[d];

    CUDA_TRY(cudaMalloc(&r.d_start, n * sizeof *r.d_start), "stamp buffers");
    CUDA_TRY(cudaMalloc(&r.d_end, n * sizeof *r.d_end), "stamp buffers");
    CUDA_TRY(cudaMalloc(&r.d_done, n * sizeof *r.d_done), "stamp buffers");
    CUDA_TRY(cudaMalloc(&r.d_order, n * sizeof *r.d_order), "order log");
    CUDA_TRY(cudaMalloc(&r.d_counter, (size_t)p * sizeof *r.d_counter), "order log");
    CUDA_TRY(cudaMalloc(&r.d_timed_out, sizeof *r.d_timed_out), "gate");
    CUDA_TRY(cudaMalloc(&r.d_probe, 64 * sizeof *r.d_probe), "self-test scratch");
    CUDA_TRY(cudaMemset(r.d_probe, 0, 64 * sizeof *r.d_probe), "self-test scratch");
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
        char why[192];
        if (selftest_streams(&r, why, sizeof why)) {
            snprintf(rep->selftest, sizeof rep->selftest, "plain streams: FAILED: %s", why);
            rc = bs_fail(err, BS_ERR_INTERNAL, "GPU: the stream self-test failed: %s", why);
            goto error;
        }
        snprintf(rep->selftest, sizeof rep->selftest,
                 "plain streams: event record, cross-stream wait, memset,%s kernel launch on "
                 "each of %d streams: ok",
                 opt->allocate_activations ? " pool allocation and free," : "", p);
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
         * peak; the sum over stages bounds what the run needs. The report's
         * array serves as scratch here; the pools fill it after the run. */
        if ((rc = bs_gpu_plan_peak_live(plan, NULL, rep->pool_high_water, err)))
            goto error;
        for (int d = 0; d < p; d++) {
            peak += rep->pool_high_water[d];
            rep->pool_high_water[d] = 0;
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
    if (r.mlp && (rc = mlp_setup(&r, err)))
        goto error;
    /* Pre-flight: every kernel launched once on every stage stream, then
     * whole runs until the GPU has been busy WARM_MS, so that the copy
     * timing, the mlp's costs and the measured runs all find the clocks up
     * and nothing left to load. */
    if ((rc = warm_kernels(&r, err)))
        goto error;
    {
        double t0 = host_ms();
        rep->warm_runs = 0;
        do {
            int timed_out = 0;
            if ((rc = run_once(&r, &timed_out, err)))
                goto error;
            rep->gate_timeouts += timed_out != 0;
            rep->warm_runs++;
        } while (host_ms() - t0 < WARM_MS && rep->warm_runs < 1000);
        rep->warm_ms = host_ms() - t0;
    }
    if ((rc = measure_copy(&r, err)))
        goto error;
    if (r.mlp && (rc = mlp_measure_costs(&r, err)))
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
        rep->gate_timeouts += timed_out != 0;
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
            rep_times[(size_t)j * n + i].start = (double)(h_start[i] - first) / 1e6;
            rep_times[(size_t)j * n + i].end = (double)(h_end[i] - first) / 1e6;
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
        if (bs_timeline_reserve(tl, n)) {
            rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the measured timeline");
            goto error;
        }
        memcpy(tl->times, rep_times + (size_t)median * n, n * sizeof *tl->times);
        tl->program = prog;
        tl->message_count = 0;
        tl->messages_sent = rep->copies;
        tl->message_bytes_sent = (double)rep->copies * message_bytes;
    }
    if (r.mlp && (rc = mlp_numerics(&r, err)))
        goto error;
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
    if (r.hung)
        goto host_only; /* a kernel still runs: any CUDA call here could wait for it */
    cudaDeviceSynchronize();
    (void)cudaGetLastError();
    if (r.mlp)
        mlp_teardown(&r);
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
    cudaFree(r.d_probe);
    if (r.gate_flag)
        cudaFreeHost(r.gate_flag);
    (void)cudaGetLastError();
host_only:
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
    bs_free(rep_times);
    bs_free(makespans);
    bs_free(sorted);
    return rc;
}
