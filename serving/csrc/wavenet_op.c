/* The onnxruntime custom operator ai.wavenet_tf::WaveNetSteps around the step engine.
 *
 * onnxruntime calls RegisterCustomOps when Python's SessionOptions.register_custom_ops_library
 * loads this library; the op's inputs and outputs are documented in export/native_graph.py.
 * Every input is checked before any work: a wrong shape, an out-of-range class or id, or NaN
 * conditioning comes back as an error naming the input (an exception in Python), never a
 * crash. The state outputs (ring, taps, logits) may be the input arrays themselves (Python
 * binds them so): then nothing is copied and the state is updated in place.
 *
 * top_k came after the first bundles: it is the last input and optional, so a node exported
 * before it (24 inputs) still loads and runs, drawing from every class.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ort_abi.h"
#include "wavenet_kernel.h"

#define EXPORT __attribute__((visibility("default")))

enum {
    IN_RING, IN_TIME, IN_TAPS, IN_LOGITS, IN_UNIFORMS, IN_TEMPERATURE, IN_FORCED, IN_ACTIVE, IN_THREADS,
    IN_GLOBAL_ID, IN_CONDITIONING,
    IN_TABLES, IN_PAST, IN_CURRENT, IN_GATE_BIAS, IN_GLOBAL, IN_RESIDUAL, IN_SKIP, IN_SKIP_BIAS,
    IN_HEAD, IN_HEAD_BIAS, IN_OUT, IN_OUT_BIAS, IN_DELAYS,
    IN_TOP_K, /* optional: the inputs before it are every node's, old or new */
    NUM_INPUTS
};
enum { OUT_CLASSES, OUT_LOGITS, OUT_RING, OUT_TAPS, OUT_ALL_LOGITS, NUM_OUTPUTS };

static const char *const INPUT_NAMES[NUM_INPUTS] = {
    "ring", "time", "taps", "logits", "uniforms", "temperature", "forced", "active", "threads",
    "global_id", "conditioning", "w_tables", "w_past", "w_current", "w_gate_bias", "w_global",
    "w_residual", "w_skip", "w_skip_bias", "w_head", "w_head_bias", "w_out", "w_out_bias", "w_delays", "top_k"};

static int input_type(size_t index) {
    switch (index) {
    case IN_TIME: case IN_TAPS: case IN_FORCED: case IN_ACTIVE: case IN_THREADS: case IN_GLOBAL_ID: case IN_DELAYS:
    case IN_TOP_K:
        return WN_ORT_INT64;
    case IN_UNIFORMS: case IN_TEMPERATURE:
        return WN_ORT_DOUBLE;
    default:
        return WN_ORT_FLOAT;
    }
}

static int output_type(size_t index) {
    return index == OUT_CLASSES || index == OUT_TAPS ? WN_ORT_INT64 : WN_ORT_FLOAT;
}

/* ---- the runtime's API and the version it reported ----------------------------------- */

static const OrtApi *g_api;
static const char *g_runtime_version;

/* The runtime version string onnxruntime reported when it loaded this library (tests compare
 * it with onnxruntime.__version__), or NULL before that. */
EXPORT const char *wavenet_steps_runtime_version(void) { return g_runtime_version; }

static OrtStatus *error(const char *format, ...) {
    char message[512];
    int used = snprintf(message, sizeof message, "WaveNetSteps: ");
    va_list args;
    va_start(args, format);
    vsnprintf(message + used, sizeof message - used, format, args);
    va_end(args);
    return WN_ORT(g_api, WnCreateStatus, WN_ORT_CreateStatus)(WN_ORT_INVALID_ARGUMENT, message);
}

#define TRY(call)                          \
    do {                                   \
        OrtStatus *status_ = (call);       \
        if (status_) return status_;       \
    } while (0)

/* ---- tensors ------------------------------------------------------------------------- */

enum { MAX_RANK = 4 };

typedef struct {
    void *data;
    int type;
    size_t rank;
    int64_t dims[MAX_RANK];
    int64_t count;
} Tensor;

static OrtStatus *describe(const OrtValue *value, const char *name, Tensor *t) {
    OrtTensorTypeAndShapeInfo *info;
    TRY(WN_ORT(g_api, WnGetTensorTypeAndShape, WN_ORT_GetTensorTypeAndShape)(value, &info));
    OrtStatus *status = WN_ORT(g_api, WnGetDimensionsCount, WN_ORT_GetDimensionsCount)(info, &t->rank);
    if (!status && t->rank > MAX_RANK) status = error("%s has rank %zu (at most %d)", name, t->rank, MAX_RANK);
    if (!status) status = WN_ORT(g_api, WnGetDimensions, WN_ORT_GetDimensions)(info, t->dims, t->rank);
    if (!status) status = WN_ORT(g_api, WnGetTensorElementType, WN_ORT_GetTensorElementType)(info, &t->type);
    WN_ORT(g_api, WnReleaseTensorTypeAndShapeInfo, WN_ORT_ReleaseTensorTypeAndShapeInfo)(info);
    if (status) return status;
    t->count = 1;
    for (size_t i = 0; i < t->rank; i++) t->count *= t->dims[i];
    return WN_ORT(g_api, WnGetTensorMutableData, WN_ORT_GetTensorMutableData)((OrtValue *)value, &t->data);
}

static OrtStatus *get_input(OrtKernelContext *context, size_t index, Tensor *t) {
    const OrtValue *value;
    TRY(WN_ORT(g_api, WnKernelContextGetInput, WN_ORT_KernelContext_GetInput)(context, index, &value));
    if (!value) return error("input %s is missing", INPUT_NAMES[index]);
    TRY(describe(value, INPUT_NAMES[index], t));
    if (t->type != input_type(index)) return error("input %s has element type %d, expected %d",
                                                   INPUT_NAMES[index], t->type, input_type(index));
    return NULL;
}

static OrtStatus *get_output(OrtKernelContext *context, size_t index, const int64_t *dims, size_t rank, Tensor *t) {
    OrtValue *value;
    TRY(WN_ORT(g_api, WnKernelContextGetOutput, WN_ORT_KernelContext_GetOutput)(context, index, dims, rank, &value));
    return describe(value, "an output", t);
}

/* Shape check: `t` must have exactly these dims (-1: any). */
static OrtStatus *expect(const Tensor *t, const char *name, size_t rank, const int64_t *dims) {
    int ok = t->rank == rank;
    for (size_t i = 0; ok && i < rank; i++) ok = dims[i] < 0 || t->dims[i] == dims[i];
    if (ok) return NULL;
    char got[96] = "", want[96] = "";
    for (size_t i = 0; i < t->rank; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    for (size_t i = 0; i < rank; i++) {
        if (dims[i] < 0) snprintf(want + strlen(want), sizeof want - strlen(want), "%s?", i ? ", " : "");
        else snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)dims[i]);
    }
    return error("%s has shape (%s), expected (%s)", name, got, want);
}
#define EXPECT(t, name, ...) \
    TRY(expect(&(t), name, sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__}))

/* ---- the kernel ---------------------------------------------------------------------- */

/* The kernel holds nothing: every array, the delays included, is an input (the weights are
 * the graph's initializers), so a kernel needs no attribute lookups and no state. */
static char g_kernel;

static OrtStatus *create_kernel(const OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info, void **out) {
    (void)op, (void)api, (void)info;
    *out = &g_kernel;
    return NULL;
}

static void destroy_kernel(void *kernel) { (void)kernel; }

static int64_t scalar(const Tensor *t) { return *(const int64_t *)t->data; }

/* The weights: their shapes agree with each other and give the model's sizes. */
static OrtStatus *read_weights(Tensor *in, WnWeights *w) {
    const Tensor *past = &in[IN_PAST], *out = &in[IN_OUT], *delays = &in[IN_DELAYS];
    if (past->rank != 3 || out->rank != 2) return error("w_past must be (L, (k-1)·R, 2G) and w_out (S, Q)");
    const int64_t big_l = past->dims[0], g2 = past->dims[2], s = out->dims[0], q = out->dims[1];
    const int64_t r = in[IN_CURRENT].rank == 3 ? in[IN_CURRENT].dims[1] : -1;
    if (big_l < 1 || r < 1 || g2 < 2 || g2 % 2 || s < 1 || q < 2) return error("the weights have empty dimensions");
    if (delays->rank != 2 || delays->dims[0] != big_l || delays->dims[1] < 1 || past->dims[1] != delays->dims[1] * r)
        return error("w_delays must be (L, k-1) and fit w_past's shape");
    const int64_t g = g2 / 2, taps = delays->dims[1];
    if (taps > WN_MAX_KERNEL - 1)
        return error("kernel size %lld is above the engine's %d", (long long)taps + 1, WN_MAX_KERNEL);
    const int64_t *delay = delays->data;
    if (in[IN_TABLES].rank != 2 || in[IN_TABLES].dims[0] % (q + 1)) return error("w_tables must be (K0·(Q+1), R)");
    EXPECT(in[IN_TABLES], "w_tables", -1, r);
    EXPECT(in[IN_CURRENT], "w_current", big_l, r, g2);
    EXPECT(in[IN_GATE_BIAS], "w_gate_bias", big_l, g2);
    EXPECT(in[IN_GLOBAL], "w_global", big_l, -1, g2);
    EXPECT(in[IN_RESIDUAL], "w_residual", big_l - 1, g, r);
    EXPECT(in[IN_SKIP], "w_skip", big_l * g, s);
    EXPECT(in[IN_SKIP_BIAS], "w_skip_bias", s);
    EXPECT(in[IN_HEAD], "w_head", s, s);
    EXPECT(in[IN_HEAD_BIAS], "w_head_bias", s);
    EXPECT(in[IN_OUT_BIAS], "w_out_bias", q);
    for (int64_t i = 0; i < delays->count; i++)
        if (delay[i] < 1) return error("delay %lld is not positive", (long long)delay[i]);
    *w = (WnWeights){
        .layers = (int)big_l, .taps = (int)taps, .input_taps = (int)(in[IN_TABLES].dims[0] / (q + 1)),
        .residual = (int)r, .gate = (int)g, .skip = (int)s, .classes = (int)q,
        .global_classes = (int)in[IN_GLOBAL].dims[1], .delays = delay,
        .tables = in[IN_TABLES].data, .past = past->data, .current = in[IN_CURRENT].data,
        .gate_bias = in[IN_GATE_BIAS].data, .global_tables = in[IN_GLOBAL].dims[1] ? in[IN_GLOBAL].data : NULL,
        .residual_kernels = in[IN_RESIDUAL].data, .skip_kernel = in[IN_SKIP].data, .skip_bias = in[IN_SKIP_BIAS].data,
        .head_kernel = in[IN_HEAD].data, .head_bias = in[IN_HEAD_BIAS].data,
        .out_kernel = out->data, .out_bias = in[IN_OUT_BIAS].data};
    return NULL;
}

/* The state and per-call inputs: shapes against the weights, then every value's range. */
static OrtStatus *read_call(const WnWeights *w, Tensor *in, WnCall *c, char *seen) {
    const Tensor *ring = &in[IN_RING];
    if (ring->rank != 4) return error("ring must be (N, L, B, R)");
    const int64_t n = ring->dims[0], b = ring->dims[2], samples = in[IN_UNIFORMS].rank == 2 ? in[IN_UNIFORMS].dims[1] : -1;
    int64_t longest = 0;
    for (int i = 0; i < w->layers * w->taps; i++) longest = w->delays[i] > longest ? w->delays[i] : longest;
    if (n < 1 || (n & (n - 1)) || n <= longest)
        return error("ring has %lld rows; it needs a power of two above the longest delay (%lld)", (long long)n, (long long)longest);
    EXPECT(*ring, "ring", n, w->layers, b, w->residual);
    EXPECT(in[IN_TIME], "time");
    EXPECT(in[IN_THREADS], "threads");
    EXPECT(in[IN_TAPS], "taps", b, w->input_taps);
    EXPECT(in[IN_LOGITS], "logits", b, w->classes);
    EXPECT(in[IN_UNIFORMS], "uniforms", b, -1);
    EXPECT(in[IN_TEMPERATURE], "temperature", b);
    const int top_k = in[IN_TOP_K].data != NULL; /* a node exported before top_k has none */
    if (top_k) EXPECT(in[IN_TOP_K], "top_k", b);
    EXPECT(in[IN_ACTIVE], "active", -1);
    if (in[IN_FORCED].rank != 2 || in[IN_FORCED].dims[0] != b || (in[IN_FORCED].dims[1] != 0 && in[IN_FORCED].dims[1] != samples))
        return error("forced must be (B, 0) or (B, K) like uniforms");
    if (w->global_classes) EXPECT(in[IN_GLOBAL_ID], "global_id", b);
    /* A locally conditioned model's graph feeds conditioning; the others an empty constant. */
    const int local = in[IN_CONDITIONING].count > 0 || (b > 0 && samples > 0 && in[IN_CONDITIONING].rank == 4
                                                         && in[IN_CONDITIONING].dims[0] == b);
    if (local) EXPECT(in[IN_CONDITIONING], "conditioning", b, samples, w->layers, 2 * w->gate);
    const int64_t time = scalar(&in[IN_TIME]);
    if (time < 0) return error("time is negative (%lld)", (long long)time);

    const int64_t *active = in[IN_ACTIVE].data, *taps = in[IN_TAPS].data;
    const double *uniforms = in[IN_UNIFORMS].data, *temperature = in[IN_TEMPERATURE].data;
    memset(seen, 0, b);
    for (int64_t i = 0; i < in[IN_ACTIVE].count; i++) {
        if (active[i] < 0 || active[i] >= b) return error("active stream %lld is not in [0, %lld)", (long long)active[i], (long long)b);
        if (seen[active[i]]++) return error("active lists stream %lld twice", (long long)active[i]);
    }
    for (int64_t i = 0; i < b * w->input_taps; i++)
        if (taps[i] < 0 || taps[i] > w->classes) return error("taps holds class %lld, not in [0, %d]", (long long)taps[i], w->classes);
    for (int64_t i = 0; i < in[IN_ACTIVE].count; i++) {
        const int64_t s = active[i];
        if (isnan(temperature[s])) return error("temperature of stream %lld is NaN", (long long)s);
        if (top_k) {
            const int64_t k = ((const int64_t *)in[IN_TOP_K].data)[s];
            if (k < 0 || k > w->classes)
                return error("top_k %lld of stream %lld is not in [0, %d] (0: every class)", (long long)k,
                             (long long)s, w->classes);
        }
        if (w->global_classes) {
            const int64_t id = ((const int64_t *)in[IN_GLOBAL_ID].data)[s];
            if (id < 0 || id >= w->global_classes)
                return error("global_id %lld of stream %lld is not in [0, %d)", (long long)id, (long long)s, w->global_classes);
        }
        for (int64_t j = 0; j < samples; j++) {
            const double u = uniforms[s * samples + j];
            if (!(u >= 0.0 && u < 1.0)) return error("uniforms[%lld, %lld] = %g is not in [0, 1)", (long long)s, (long long)j, u);
            if (in[IN_FORCED].dims[1]) {
                const int64_t f = ((const int64_t *)in[IN_FORCED].data)[s * samples + j];
                if (f < -1 || f >= w->classes) return error("forced class %lld is not in [-1, %d)", (long long)f, w->classes);
            }
        }
        if (local) {
            const size_t per_stream = (size_t)samples * w->layers * 2 * w->gate;
            const float *cond = (const float *)in[IN_CONDITIONING].data + s * per_stream;
            for (size_t j = 0; j < per_stream; j++)
                if (!isfinite(cond[j])) return error("conditioning of stream %lld holds NaN or Inf", (long long)s);
        }
    }
    *c = (WnCall){
        .batch = (int)b, .samples = (int)samples, .time = time, .ring_size = (int)n,
        .uniforms = uniforms, .temperature = temperature, .top_k = top_k ? in[IN_TOP_K].data : NULL,
        .forced = in[IN_FORCED].dims[1] ? in[IN_FORCED].data : NULL,
        .global_ids = w->global_classes ? in[IN_GLOBAL_ID].data : NULL,
        .conditioning = local ? in[IN_CONDITIONING].data : NULL,
        .active = active, .num_active = (int)in[IN_ACTIVE].count, .threads = (int)scalar(&in[IN_THREADS])};
    return NULL;
}

/* The state output starts as the input: aliased (bound to the same array), nothing to copy. */
static void carry(const Tensor *from, Tensor *to, size_t element) {
    if (to->data != from->data) memcpy(to->data, from->data, (size_t)from->count * element);
}

static OrtStatus *compute(void *kernel, OrtKernelContext *context) {
    (void)kernel;
    size_t count;
    TRY(WN_ORT(g_api, WnKernelContextGetCount, WN_ORT_KernelContext_GetInputCount)(context, &count));
    if (count != NUM_INPUTS && count != IN_TOP_K)
        return error("the node has %zu inputs, expected %d or %d (re-export the bundle)", count, IN_TOP_K, NUM_INPUTS);
    const size_t inputs = count;
    TRY(WN_ORT(g_api, WnKernelContextGetCount, WN_ORT_KernelContext_GetOutputCount)(context, &count));
    if (count != NUM_OUTPUTS) return error("the node has %zu outputs, expected %d (re-export the bundle)", count, NUM_OUTPUTS);
    Tensor in[NUM_INPUTS], out[NUM_OUTPUTS];
    in[IN_TOP_K] = (Tensor){0}; /* absent unless the node has it */
    for (size_t i = 0; i < inputs; i++) {
        const OrtValue *value;
        TRY(WN_ORT(g_api, WnKernelContextGetInput, WN_ORT_KernelContext_GetInput)(context, i, &value));
        if (i == IN_TOP_K && !value) continue; /* listed as "" in the node: absent too */
        TRY(get_input(context, i, &in[i]));
    }
    WnWeights w;
    WnCall c;
    TRY(read_weights(in, &w));
    char *seen = malloc(in[IN_RING].rank == 4 && in[IN_RING].dims[2] > 0 ? (size_t)in[IN_RING].dims[2] : 1);
    if (!seen) return error("out of memory");
    OrtStatus *status = read_call(&w, in, &c, seen);
    free(seen);
    if (status) return status;
    const int64_t b = c.batch, q = w.classes, forced = in[IN_FORCED].dims[1];
    TRY(get_output(context, OUT_CLASSES, (int64_t[]){b, c.samples}, 2, &out[OUT_CLASSES]));
    TRY(get_output(context, OUT_LOGITS, in[IN_LOGITS].dims, 2, &out[OUT_LOGITS]));
    TRY(get_output(context, OUT_RING, in[IN_RING].dims, 4, &out[OUT_RING]));
    TRY(get_output(context, OUT_TAPS, in[IN_TAPS].dims, 2, &out[OUT_TAPS]));
    TRY(get_output(context, OUT_ALL_LOGITS, (int64_t[]){b, forced, q}, 3, &out[OUT_ALL_LOGITS]));
    carry(&in[IN_RING], &out[OUT_RING], sizeof(float));
    carry(&in[IN_TAPS], &out[OUT_TAPS], sizeof(int64_t));
    carry(&in[IN_LOGITS], &out[OUT_LOGITS], sizeof(float));
    int64_t *classes = out[OUT_CLASSES].data;
    for (int64_t i = 0; i < out[OUT_CLASSES].count; i++) classes[i] = -1; /* inactive streams */
    c.ring = out[OUT_RING].data;
    c.taps = out[OUT_TAPS].data;
    c.logits = out[OUT_LOGITS].data;
    c.classes_out = classes;
    c.all_logits = forced ? out[OUT_ALL_LOGITS].data : NULL;
    if (wn_run(&w, &c) != 0) return error("out of memory for %d streams' scratch", c.num_active);
    return NULL;
}

/* ---- the operator's description ------------------------------------------------------ */

static const char *op_name(const OrtCustomOp *op) { (void)op; return "WaveNetSteps"; }
static const char *op_provider(const OrtCustomOp *op) { (void)op; return "CPUExecutionProvider"; }
static int op_input_type(const OrtCustomOp *op, size_t i) { (void)op; return input_type(i); }
static size_t op_input_count(const OrtCustomOp *op) { (void)op; return NUM_INPUTS; }
static int op_output_type(const OrtCustomOp *op, size_t i) { (void)op; return output_type(i); }
static size_t op_output_count(const OrtCustomOp *op) { (void)op; return NUM_OUTPUTS; }
static int op_input_characteristic(const OrtCustomOp *op, size_t i) {
    (void)op;
    return i == IN_TOP_K ? WN_ORT_OPTIONAL : WN_ORT_REQUIRED;
}
static int op_required(const OrtCustomOp *op, size_t i) { (void)op, (void)i; return WN_ORT_REQUIRED; }
static int op_memory(const OrtCustomOp *op, size_t i) { (void)op, (void)i; return WN_ORT_MEM_DEFAULT; }
static int op_zero(const OrtCustomOp *op) { (void)op; return 0; }

static const OrtCustomOp OP = {
    .version = WN_ORT_API_VERSION,
    .GetName = op_name,
    .GetExecutionProviderType = op_provider,
    .GetInputType = op_input_type,
    .GetInputTypeCount = op_input_count,
    .GetOutputType = op_output_type,
    .GetOutputTypeCount = op_output_count,
    .KernelDestroy = destroy_kernel,
    .GetInputCharacteristic = op_input_characteristic,
    .GetOutputCharacteristic = op_required,
    .GetInputMemoryType = op_memory,
    .GetVariadicInputMinArity = op_zero,
    .GetVariadicInputHomogeneity = op_zero,
    .GetVariadicOutputMinArity = op_zero,
    .GetVariadicOutputHomogeneity = op_zero,
    .CreateKernelV2 = create_kernel,
    .KernelComputeV2 = compute,
};

/* One domain for every session that registers the library (onnxruntime keeps a pointer to it). */
static OrtCustomOpDomain *g_domain;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

EXPORT OrtStatus *RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
    g_runtime_version = base->GetVersionString();
    const OrtApi *api = base->GetApi(WN_ORT_API_VERSION);
    if (!api) { /* an older runtime: report it through the oldest table, whose CreateStatus is entry 0 */
        const OrtApi *oldest = base->GetApi(1);
        return WN_ORT(oldest, WnCreateStatus, WN_ORT_CreateStatus)(
            WN_ORT_FAIL, "wavenet-tf's native step engine needs onnxruntime 1.16 or newer");
    }
    g_api = api;
    OrtStatus *status = NULL;
    pthread_mutex_lock(&g_lock);
    if (!g_domain) {
        status = WN_ORT(api, WnCreateCustomOpDomain, WN_ORT_CreateCustomOpDomain)("ai.wavenet_tf", &g_domain);
        if (!status) status = WN_ORT(api, WnCustomOpDomainAdd, WN_ORT_CustomOpDomain_Add)(g_domain, &OP);
        if (status) g_domain = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    if (status) return status;
    return WN_ORT(api, WnAddCustomOpDomain, WN_ORT_AddCustomOpDomain)(options, g_domain);
}
