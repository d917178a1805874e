/* The WaveNet step engine's arithmetic (see wavenet_kernel.h for what it computes).
 *
 * Written with GCC's vector extensions (8 floats, one AVX register where the CPU has them;
 * the compiler splits them where it does not), so the same source is portable C and fast.
 * Why it is fast where step.onnx is not: one call does K samples of every layer for every
 * stream, so there is no per-node dispatch at all; the cost left is the multiply-adds and
 * reading the weights. A thread's streams are processed layer by layer together, so a
 * layer's weights are fetched into cache once per sample for all of them.
 */
#include "wavenet_kernel.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8 load8(const float *p) { return *(const v8u *)p; }
static inline void store8(float *p, v8 v) { *(v8u *)p = v; }
static inline v8 splat8(float x) { return (v8){x, x, x, x, x, x, x, x}; }
/* Lane-wise select without C++'s vector ?: (masks are all-ones or zero). */
static inline v8 select8(v8i mask, v8 a, v8 b) { return (v8)(((v8i)a & mask) | ((v8i)b & ~mask)); }
static inline v8 min8(v8 a, v8 b) { return select8(a < b, a, b); }
static inline v8 max8(v8 a, v8 b) { return select8(a > b, a, b); }

/* ---- y[0:n] += x[0:m] @ w, w row-major (m, n) ------------------------------------------ */

/* Register-blocked column strips: NV vectors of accumulators stay in registers while the
 * m rows stream past, so each weight is loaded once and the output written once. */
#define MATVEC_STRIP(NAME, NV)                                                                   \
    static inline void NAME(float *restrict y, const float *restrict x, const float *restrict w, \
                            int m, int stride) {                                                 \
        v8 acc[NV];                                                                              \
        for (int v = 0; v < NV; v++) acc[v] = load8(y + 8 * v);                                  \
        for (int i = 0; i < m; i++) {                                                            \
            const v8 xi = splat8(x[i]);                                                          \
            const float *row = w + (size_t)i * stride;                                             \
            for (int v = 0; v < NV; v++) acc[v] += xi * load8(row + 8 * v);                      \
        }                                                                                        \
        for (int v = 0; v < NV; v++) store8(y + 8 * v, acc[v]);                                  \
    }
MATVEC_STRIP(strip8, 8)
MATVEC_STRIP(strip4, 4)
MATVEC_STRIP(strip1, 1)

/* y[0:n] += x[0:m] @ w[:, 0:n], rows of w `stride` floats apart (a column block of a wider matrix). */
static void matvec_cols(float *restrict y, const float *restrict x, const float *restrict w, int m, int n,
                        int stride) {
    int j = 0;
    for (; j + 64 <= n; j += 64) strip8(y + j, x, w + j, m, stride);
    for (; j + 32 <= n; j += 32) strip4(y + j, x, w + j, m, stride);
    for (; j + 8 <= n; j += 8) strip1(y + j, x, w + j, m, stride);
    for (; j < n; j++) { /* channel counts that are not a multiple of 8 */
        float s = y[j];
        for (int i = 0; i < m; i++) s += x[i] * w[(size_t)i * stride + j];
        y[j] = s;
    }
}

static void matvec_acc(float *restrict y, const float *restrict x, const float *restrict w, int m, int n) {
    matvec_cols(y, x, w, m, n, n);
}

/* Y[b] += X[b] @ w for nb <= 6 streams at once: each weight load feeds nb multiply-adds,
 * which is what lets many streams go faster than one (one stream is bound by reading the
 * weights; six share every read). Columns in strips of 16 (two vectors): 6 x 2 accumulators,
 * two weight vectors and a broadcast fit AVX2's 16 registers (the classic 6 x 16 GEMM tile). */
#define MATMUL_STRIP(NAME, NB, NV)                                                                 \
    static inline void NAME(float *const *ys, const float *const *const *xss, const float *const *ws, \
                            int sources, int m, int n, int j) {                                    \
        v8 acc[NB][NV];                                                                            \
        for (int b = 0; b < NB; b++)                                                               \
            for (int v = 0; v < NV; v++) acc[b][v] = load8(ys[b] + j + 8 * v);                      \
        for (int src = 0; src < sources; src++) {                                                  \
            const float *const *xs = xss[src];                                                     \
            for (int i = 0; i < m; i++) {                                                          \
                const float *row = ws[src] + (size_t)i * n + j;                                    \
                v8 wv[NV];                                                                         \
                for (int v = 0; v < NV; v++) wv[v] = load8(row + 8 * v);                           \
                for (int b = 0; b < NB; b++) {                                                     \
                    const v8 xb = splat8(xs[b][i]);                                                \
                    for (int v = 0; v < NV; v++) acc[b][v] += xb * wv[v];                          \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int b = 0; b < NB; b++)                                                               \
            for (int v = 0; v < NV; v++) store8(ys[b] + j + 8 * v, acc[b][v]);                      \
    }
#define MATMUL_GROUP(NAME, NB)                                                                    \
    MATMUL_STRIP(NAME##_16, NB, 2)                                                                 \
    MATMUL_STRIP(NAME##_8, NB, 1)                                                                  \
    static void NAME(float *const *ys, const float *const *const *xss, const float *const *ws, int sources, \
                     int m, int n) {                                                               \
        int j = 0;                                                                                 \
        for (; j + 16 <= n; j += 16) NAME##_16(ys, xss, ws, sources, m, n, j);                     \
        for (; j + 8 <= n; j += 8) NAME##_8(ys, xss, ws, sources, m, n, j);                        \
        for (; j < n; j++)                                                                         \
            for (int b = 0; b < NB; b++) {                                                         \
                float s = ys[b][j];                                                                \
                for (int src = 0; src < sources; src++)                                            \
                    for (int i = 0; i < m; i++) s += xss[src][b][i] * ws[src][(size_t)i * n + j];   \
                ys[b][j] = s;                                                                      \
            }                                                                                      \
    }
MATMUL_GROUP(matmul6, 6)
MATMUL_GROUP(matmul5, 5)
MATMUL_GROUP(matmul4, 4)
MATMUL_GROUP(matmul3, 3)
MATMUL_GROUP(matmul2, 2)

/* ys[b][0:n] += sum over sources of xss[src][b][0:m] @ ws[src] for nb (1..6) streams: a layer's
 * past taps and its current input accumulate in the same registers (one load and one store of
 * the outputs per layer, not one per tap). */
static void matmul_sources(float *const *ys, const float *const *const *xss, const float *const *ws, int sources,
                           int m, int n, int nb) {
    switch (nb) {
    case 6: matmul6(ys, xss, ws, sources, m, n); break;
    case 5: matmul5(ys, xss, ws, sources, m, n); break;
    case 4: matmul4(ys, xss, ws, sources, m, n); break;
    case 3: matmul3(ys, xss, ws, sources, m, n); break;
    case 2: matmul2(ys, xss, ws, sources, m, n); break;
    default:
        for (int src = 0; src < sources; src++) matvec_acc(ys[0], xss[src][0], ws[src], m, n);
    }
}

/* ys[b][0:n] += xs[b][0:m] @ w for nb (1..6) streams. */
static void matmul(float *const *ys, const float *const *xs, const float *w, int m, int n, int nb) {
    matmul_sources(ys, &xs, &w, 1, m, n, nb);
}

/* ---- activations --------------------------------------------------------------------- */

/* exp of 8 floats: x = n·ln2 + r with |r| <= ln2/2, e^r by Cephes' degree-5 minimax
 * polynomial, 2^n through the exponent bits. Relative error ~1e-7 (a float's own rounding):
 * the logits stay within the 1e-4 contract with room to spare, where libm's expf would cost
 * ~10x more per value and a step evaluates L·2G of them. */
static inline v8 exp8(v8 x) {
    x = min8(x, splat8(88.3762626647949f));
    x = max8(x, splat8(-87.3365478515625f));
    const v8 shifter = splat8(12582912.0f); /* 1.5·2^23: adding it rounds to an integer */
    v8 n = (x * 1.44269504088896341f + shifter) - shifter;
    v8 r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    v8 p = splat8(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
    return p * (v8)bits;
}

/* z = tanh(a) · sigmoid(b) = (e^{2a} - 1) / ((e^{2a} + 1)(1 + e^{-b})): one division instead of
 * two. a is clamped to ±9 (tanh is 1 - 3e-8 there, 1.0 in float) and b to ±30 (sigmoid(-30) is
 * 1e-13 from the true value), so the denominator stays finite (< 1e21). */
static inline v8 gate8(v8 a, v8 b) {
    a = max8(min8(a, splat8(9.0f)), splat8(-9.0f));
    b = max8(min8(b, splat8(30.0f)), splat8(-30.0f));
    const v8 ea = exp8(a + a), eb = exp8(-b);
    return (ea - 1.0f) / ((ea + 1.0f) * (1.0f + eb));
}

/* z[j] = gate(pre[j], pre[g + j]) for j in [j0, j1). */
static void gated_range(float *restrict z, const float *restrict pre, int g, int j0, int j1) {
    int j = j0;
    for (; j + 8 <= j1; j += 8) store8(z + j, gate8(load8(pre + j), load8(pre + g + j)));
    if (j < j1) { /* a tail of fewer than 8 channels: through a padded vector */
        float a[8] = {0}, b[8] = {0}, out[8];
        memcpy(a, pre + j, (j1 - j) * sizeof(float));
        memcpy(b, pre + g + j, (j1 - j) * sizeof(float));
        store8(out, gate8(load8(a), load8(b)));
        memcpy(z + j, out, (j1 - j) * sizeof(float));
    }
}

static void gated(float *restrict z, const float *restrict pre, int g) { gated_range(z, pre, g, 0, g); }

static void relu_bias(float *restrict y, const float *restrict bias, int n) {
    for (int j = 0; j < n; j++) {
        float v = y[j] + (bias ? bias[j] : 0.0f);
        y[j] = v > 0.0f ? v : 0.0f;
    }
}

/* ---- sampling: wavenet_tf/core/sampling.py's arithmetic, in float64 and in its order ----- */

typedef double v4d __attribute__((vector_size(32)));
typedef double v4du __attribute__((vector_size(32), aligned(8), may_alias));
typedef int64_t v4l __attribute__((vector_size(32)));

/* exp of 4 doubles, for x <= 0 (the sampler's z - max z): x = n·ln2 + r with |r| <= ln2/2 (ln2
 * in two parts, so r is exact), e^r by its Taylor series to r^12 (truncation < 2e-16, an ulp),
 * 2^n through the exponent bits. It and libm's exp differ by an ulp at most, which moves a
 * class boundary by ~1e-16: the same uniform draws the same class as NumPy's exp except
 * within 1e-16 of a boundary. Below -708 (e^x < 1e-307, nothing against a total >= 1) it gives 0. */
static inline v4d splat4d(double x) { return (v4d){x, x, x, x}; }

static inline v4d exp4d(v4d x) {
    const v4d magic = splat4d(6755399441055744.0); /* 1.5·2^52: adding it rounds to an integer */
    const v4l underflow = x < -708.0;
    x = (v4d)(((v4l)x & ~underflow) | ((v4l)splat4d(0.0) & underflow));
    const v4d t = x * 1.4426950408889634 + magic;
    const v4d n = t - magic;
    const v4d r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    v4d p = splat4d(1.0 / 479001600.0); /* 1/12! */
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const v4l bits = ((v4l)t - (v4l)magic + 1023) << 52;
    return (v4d)((v4l)(p * (v4d)bits) & ~underflow);
}

/* At or below this temperature the draw is the most likely class, as in every other engine
 * (wavenet_tf.core.sampling.GREEDY_TEMPERATURE): logits / T overflows for tiny T, and long before that
 * the softmax is one-hot anyway. */
#define WN_GREEDY_TEMPERATURE 1e-3

/* The k-th largest of a[0:n] (1 <= k <= n), reordering a: quickselect with a three-way partition,
 * O(n) on average. Equal values gather in the middle part, so many ties (a flat distribution)
 * cost one pass rather than the O(n^2) of a two-way partition; every pass leaves the pivot's
 * part out, so the loop ends whatever the values (NaN included: it compares equal to nothing
 * and lands in the pivot's part). */
static float kth_largest_select(float *a, int n, int k) {
    int lo = 0, hi = n - 1;
    const int target = n - k; /* its index in ascending order */
    while (lo < hi) {
        const float pivot = a[lo + (hi - lo) / 2];
        int lt = lo, i = lo, gt = hi;
        while (i <= gt) {
            const float x = a[i];
            if (x < pivot) {
                a[i++] = a[lt];
                a[lt++] = x;
            } else if (x > pivot) {
                a[i] = a[gt];
                a[gt--] = x;
            } else {
                i++;
            }
        }
        if (target < lt) hi = lt - 1;      /* a[lo:lt] < pivot */
        else if (target > gt) lo = gt + 1; /* a[gt+1:hi+1] > pivot */
        else return pivot;
    }
    return a[target];
}

/* Up to this k, one pass keeping the k largest so far in a small sorted array beats quickselect:
 * after the first few values almost every one is below the k-th largest so far, a branch the CPU
 * predicts, where quickselect's partition branches are coin flips (measured: k = 3 cost a `small`
 * stream ~15% with quickselect). A value that does enter costs at most k moves. */
enum { SMALL_TOP_K = 32 };

static float kth_largest_pass(const float *a, int n, int k) {
    float top[SMALL_TOP_K]; /* the k largest so far, largest first */
    int m = 0;
    for (int i = 0; i < n; i++) {
        const float x = a[i];
        if (m == k && !(x > top[k - 1])) continue; /* an equal value would leave the k-th as it is */
        int j = m < k ? m++ : k - 1;
        for (; j > 0 && top[j - 1] < x; j--) top[j] = top[j - 1];
        top[j] = x;
    }
    return top[k - 1];
}

int wn_draw(const float *logits, int classes, double temperature, int64_t top_k, double uniform, double *scratch) {
    if (!(temperature > WN_GREEDY_TEMPERATURE)) { /* the limit T -> 0: np.argmax, first of equal maxima */
        int best = 0;
        for (int i = 1; i < classes; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    /* Top-k: the k-th largest float32 logit (for a large k, found in a copy in the scratch's first
     * half: Q floats fit in Q doubles, and it is overwritten below); a class below it weighs 0, as
     * NumPy's `logits >= kth` mask makes it. */
    const int truncate = top_k > 0 && top_k < classes;
    float kth = 0.0f;
    if (truncate && top_k <= SMALL_TOP_K) {
        kth = kth_largest_pass(logits, classes, (int)top_k);
    } else if (truncate) {
        memcpy(scratch, logits, classes * sizeof(float));
        kth = kth_largest_select((float *)scratch, classes, (int)top_k);
    }
    double top = -INFINITY;
    for (int i = 0; i < classes; i++) {
        scratch[i] = (double)logits[i] / temperature;
        if (scratch[i] > top) top = scratch[i];
    }
    int i = 0;
    for (; i + 4 <= classes; i += 4) {
        v4d z = *(const v4du *)(scratch + i);
        *(v4du *)(scratch + i) = exp4d(z - top);
    }
    for (; i < classes; i++) scratch[i] = exp(scratch[i] - top);
    if (truncate)
        for (i = 0; i < classes; i++)
            if (!(logits[i] >= kth)) scratch[i] = 0.0;
    double total = 0.0; /* np.cumsum adds left to right */
    for (i = 0; i < classes; i++) {
        total += scratch[i];
        scratch[i] = total;
    }
    const double threshold = uniform * total;
    int count = 0; /* the number of cumulative sums <= threshold (they never decrease) */
    while (count < classes && scratch[count] <= threshold) count++;
    return count < classes - 1 ? count : classes - 1;
}

/* The sampling rule for tests (ctypes): wn_draw with its own scratch; -1 when out of memory. */
__attribute__((visibility("default"))) int wavenet_steps_draw(const float *logits, int classes, double temperature,
                                                              int64_t top_k, double uniform) {
    double *scratch = malloc(classes * sizeof(double));
    if (!scratch) return -1;
    const int drawn = wn_draw(logits, classes, temperature, top_k, uniform, scratch);
    free(scratch);
    return drawn;
}

/* ---- the step --------------------------------------------------------------------------- */

enum { GROUP = 6 }; /* streams computed together (see matmul) */
enum { MAX_TAPS = WN_MAX_KERNEL - 1 }; /* past taps of a layer */

typedef struct {
    const WnWeights *w;
    const WnCall *call;
    const int64_t *streams; /* this thread's share of call->active */
    int count;
    int failed;             /* its scratch memory could not be allocated */
} WnShare;

/* Per-thread scratch for `count` streams, one block of memory. */
typedef struct {
    float *h, *z, *skip, *pre, *hidden;
    double *cdf;
    void *block;
} WnScratch;

static int scratch_alloc(WnScratch *s, const WnWeights *w, int count) {
    const size_t r = w->residual, lg = (size_t)w->layers * w->gate;
    const size_t floats = count * (r + lg + w->skip) + GROUP * (2 * (size_t)w->gate + w->skip);
    s->block = malloc(floats * sizeof(float) + w->classes * sizeof(double));
    if (!s->block) return -1;
    s->cdf = (double *)s->block;
    s->h = (float *)(s->cdf + w->classes);
    s->z = s->h + count * r;
    s->skip = s->z + count * lg;
    s->pre = s->skip + count * (size_t)w->skip;
    s->hidden = s->pre + GROUP * 2 * (size_t)w->gate;
    return 0;
}

/* The next input class of stream b at sample k: forced, or drawn from its current logits. */
static int64_t next_class(const WnWeights *w, const WnCall *c, int64_t b, int k, double *cdf) {
    if (c->forced && c->forced[b * c->samples + k] >= 0) return c->forced[b * c->samples + k];
    return wn_draw(c->logits + b * w->classes, w->classes, c->temperature[b], c->top_k ? c->top_k[b] : 0,
                   c->uniforms[b * c->samples + k], cdf);
}

static void input_layer(const WnWeights *w, const WnCall *c, int64_t b, float *h) {
    const int r = w->residual, rows = w->classes + 1;
    const int64_t *taps = c->taps + b * w->input_taps;
    memcpy(h, w->tables + (size_t)taps[0] * r, r * sizeof(float));
    for (int j = 1; j < w->input_taps; j++) {
        const float *row = w->tables + ((size_t)j * rows + taps[j]) * r;
        for (int i = 0; i < r; i++) h[i] += row[i];
    }
}

/* One layer for a group of nb streams (ids[b]) at time t; h[b] is replaced by the next layer's input. */
static void layer(const WnWeights *w, const WnCall *c, int l, int64_t t, int k, const int64_t *ids, int nb,
                  float **h, float **z, float **pre) {
    const int r = w->residual, g = w->gate, g2 = 2 * g, big_l = w->layers;
    const size_t mask = (size_t)c->ring_size - 1, row_stride = (size_t)big_l * c->batch * r;
    const float *x[MAX_TAPS][GROUP];
    const float *const *xss[MAX_TAPS + 1];
    const float *ws[MAX_TAPS + 1];
    for (int b = 0; b < nb; b++) {
        memcpy(pre[b], w->gate_bias + (size_t)l * g2, g2 * sizeof(float));
        if (w->global_tables) {
            const float *row = w->global_tables + ((size_t)l * w->global_classes + c->global_ids[ids[b]]) * g2;
            for (int i = 0; i < g2; i++) pre[b][i] += row[i];
        }
        if (c->conditioning) {
            const float *row = c->conditioning + (((size_t)ids[b] * c->samples + k) * big_l + l) * g2;
            for (int i = 0; i < g2; i++) pre[b][i] += row[i];
        }
    }
    for (int j = 0; j < w->taps; j++) {
        const size_t row = (size_t)(t - w->delays[l * w->taps + j]) & mask;
        for (int b = 0; b < nb; b++) x[j][b] = c->ring + row * row_stride + ((size_t)l * c->batch + ids[b]) * r;
        xss[j] = x[j];
        ws[j] = w->past + ((size_t)l * w->taps + j) * r * g2;
    }
    xss[w->taps] = (const float *const *)h;
    ws[w->taps] = w->current + (size_t)l * r * g2;
    matmul_sources(pre, xss, ws, w->taps + 1, r, g2, nb);
    for (int b = 0; b < nb; b++) {
        float *slot = c->ring + ((size_t)t & mask) * row_stride + ((size_t)l * c->batch + ids[b]) * r;
        memcpy(slot, h[b], r * sizeof(float));
        gated(z[b], pre[b], g);
    }
    if (l < big_l - 1) matmul(h, (const float *const *)z, w->residual_kernels + (size_t)l * g * r, g, r, nb);
}

/* Skip sum and output head for a group: logits[b] from every layer's gates z[b] (L·G). */
static void head(const WnWeights *w, int nb, float **z, float **skip, float **hidden, float **logits) {
    const int s = w->skip, q = w->classes, lg = w->layers * w->gate;
    for (int b = 0; b < nb; b++) memcpy(skip[b], w->skip_bias, s * sizeof(float));
    matmul(skip, (const float *const *)z, w->skip_kernel, lg, s, nb);
    for (int b = 0; b < nb; b++) {
        relu_bias(skip[b], NULL, s);
        memcpy(hidden[b], w->head_bias, s * sizeof(float));
    }
    matmul(hidden, (const float *const *)skip, w->head_kernel, s, s, nb);
    for (int b = 0; b < nb; b++) {
        relu_bias(hidden[b], NULL, s);
        memcpy(logits[b], w->out_bias, q * sizeof(float));
    }
    matmul(logits, (const float *const *)hidden, w->out_kernel, s, q, nb);
}

/* Pointers into the scratch and the call for the group of streams at offsets i0 .. i0 + nb - 1. */
typedef struct {
    const int64_t *ids;
    float *h[GROUP], *z[GROUP], *pre[GROUP], *skip[GROUP], *hidden[GROUP], *logits[GROUP];
} Group;

static void group_at(const WnWeights *w, const WnCall *c, const WnShare *share, WnScratch *sc, int i0, int nb,
                     int l, Group *grp) {
    const size_t r = w->residual, g = w->gate, lg = (size_t)w->layers * g;
    grp->ids = share->streams + i0;
    for (int b = 0; b < nb; b++) {
        const int i = i0 + b;
        grp->h[b] = sc->h + i * r;
        grp->z[b] = sc->z + i * lg + (size_t)l * g; /* layer l's gates; the whole row when l = 0 */
        grp->skip[b] = sc->skip + (size_t)i * w->skip;
        grp->pre[b] = sc->pre + (size_t)b * 2 * g;
        grp->hidden[b] = sc->hidden + (size_t)b * w->skip;
        grp->logits[b] = c->logits + grp->ids[b] * w->classes;
    }
}

/* One sample for every stream of a share, layer by layer: each layer's weights (small: 20 KB)
 * stay in L1 while every group of streams passes through them, where group by group each
 * group would read the whole model (small: 0.93 MB, more than L2) again. */
static void share_sample(const WnWeights *w, const WnCall *c, const WnShare *share, WnScratch *sc, int k) {
    const int n = share->count, q = w->classes;
    Group grp;
    for (int l = 0; l < w->layers; l++)
        for (int i0 = 0; i0 < n; i0 += GROUP) {
            const int nb = n - i0 < GROUP ? n - i0 : GROUP;
            group_at(w, c, share, sc, i0, nb, l, &grp);
            layer(w, c, l, c->time + k, k, grp.ids, nb, grp.h, grp.z, grp.pre);
        }
    for (int i0 = 0; i0 < n; i0 += GROUP) {
        const int nb = n - i0 < GROUP ? n - i0 : GROUP;
        group_at(w, c, share, sc, i0, nb, 0, &grp);
        head(w, nb, grp.z, grp.skip, grp.hidden, grp.logits);
        if (c->all_logits)
            for (int b = 0; b < nb; b++)
                memcpy(c->all_logits + ((size_t)grp.ids[b] * c->samples + k) * q, grp.logits[b], q * sizeof(float));
    }
}

static void *run_share(void *arg) {
    WnShare *share = arg;
    const WnWeights *w = share->w;
    const WnCall *c = share->call;
    const int n = share->count;
    WnScratch sc;
    if (n == 0) return NULL;
    if (scratch_alloc(&sc, w, n) != 0) {
        share->failed = 1;
        return NULL;
    }
    for (int k = 0; k < c->samples; k++) {
        for (int i = 0; i < n; i++) {
            const int64_t b = share->streams[i];
            const int64_t cls = next_class(w, c, b, k, sc.cdf);
            int64_t *taps = c->taps + b * w->input_taps;
            memmove(taps, taps + 1, (w->input_taps - 1) * sizeof(int64_t));
            taps[w->input_taps - 1] = cls;
            c->classes_out[b * c->samples + k] = cls;
            input_layer(w, c, b, sc.h + (size_t)i * w->residual);
        }
        share_sample(w, c, share, &sc, k);
    }
    free(sc.block);
    return NULL;
}


/* ---- one stream on several threads ---------------------------------------------------- */

/* A large model's one stream is bound by reading its weights (vocoder: 3.7 MB a sample, more
 * than a core's L2), so the threads split every layer's gate channels, the head's columns
 * and the output's columns between them: each reads its share of the weights. Per sample
 * they meet at L + 3 barriers: after each layer (every thread sums the residual partials in
 * the same order, so all hold the same next input), after the skip partials, the hidden
 * layer and the logits. Double-buffered partials make one barrier per layer enough. */

/* Each thread counts the barriers it has reached in a cache line of its own; a barrier is
 * "everyone's count has reached mine". One write and one read of another core's line per
 * barrier: cheaper than a shared counter that every thread writes. */
enum { MAX_PARTS = 8 };

typedef struct {
    _Alignas(64) atomic_long count;
} Arrival;

typedef struct {
    Arrival arrivals[MAX_PARTS];
    int parties;
} Barrier;

static void barrier_wait(Barrier *b, int part, long *reached) {
    const long mine = ++*reached;
    atomic_store_explicit(&b->arrivals[part].count, mine, memory_order_release);
    for (int other = 0; other < b->parties; other++) {
        /* Spin briefly (the partner is normally a few hundred ns away), then give the core
         * up: on a busy machine the partner may be descheduled. */
        for (int spins = 0; atomic_load_explicit(&b->arrivals[other].count, memory_order_acquire) < mine; spins++) {
            if (spins < 20000) __builtin_ia32_pause();
            else sched_yield();
        }
    }
}

typedef struct {
    const WnWeights *w;
    const WnCall *c;
    int64_t stream;
    int parts;
    Barrier barrier;
    float *h0;        /* (R) the next sample's first layer input, from thread 0 */
    float *partial;   /* (2, parts, R) residual partials, double-buffered by layer parity */
    float *skip_part; /* (parts, S) */
    float *hidden;    /* (S) */
    double *cdf;      /* (Q) thread 0's sampling scratch */
} Split;

typedef struct {
    Split *split;
    int part;
    int failed;
} SplitShare;

/* [from, to) of n for part p of `parts`, in multiples of 8 where possible (whole vectors). */
static void share_range(int n, int part, int parts, int *from, int *to) {
    const int blocks = (n + 7) / 8;
    *from = (int)((int64_t)blocks * part / parts) * 8;
    *to = (int)((int64_t)blocks * (part + 1) / parts) * 8;
    if (*from > n) *from = n;
    if (*to > n) *to = n;
}

static void *run_split(void *arg) {
    SplitShare *share = arg;
    Split *sp = share->split;
    const WnWeights *w = sp->w;
    const WnCall *c = sp->c;
    const int64_t b = sp->stream;
    const int p = share->part, r = w->residual, g = w->gate, g2 = 2 * g, s = w->skip, q = w->classes;
    const size_t mask = (size_t)c->ring_size - 1, row_stride = (size_t)w->layers * c->batch * r;
    int g0, g1, s0, s1, q0, q1;
    long reached = 0;
    share_range(g, p, sp->parts, &g0, &g1);
    share_range(s, p, sp->parts, &s0, &s1);
    share_range(q, p, sp->parts, &q0, &q1);
    float *mine = malloc(((size_t)r + g2 + g + s) * sizeof(float));
    if (!mine) share->failed = 1; /* still takes part in every barrier, so the others finish */
    float *h = mine, *pre = mine + r, *z = pre + g2, *skip = z + g;
    float *logits = c->logits + b * q;
    for (int k = 0; k < c->samples; k++) {
        const int64_t t = c->time + k;
        if (p == 0) {
            const int64_t cls = next_class(w, c, b, k, sp->cdf);
            int64_t *taps = c->taps + b * w->input_taps;
            memmove(taps, taps + 1, (w->input_taps - 1) * sizeof(int64_t));
            taps[w->input_taps - 1] = cls;
            c->classes_out[b * c->samples + k] = cls;
            input_layer(w, c, b, sp->h0);
        }
        barrier_wait(&sp->barrier, p, &reached);
        if (mine) {
            memcpy(h, sp->h0, r * sizeof(float));
            memset(sp->skip_part + (size_t)p * s, 0, s * sizeof(float));
        }
        for (int l = 0; l < w->layers; l++) {
            float *partial = sp->partial + ((size_t)(l & 1) * sp->parts + p) * r;
            if (mine) {
                float *slot = c->ring + ((size_t)t & mask) * row_stride + ((size_t)l * c->batch + b) * r;
                const float *bias = w->gate_bias + (size_t)l * g2;
                memcpy(pre + g0, bias + g0, (g1 - g0) * sizeof(float));
                memcpy(pre + g + g0, bias + g + g0, (g1 - g0) * sizeof(float));
                for (int half = 0; half < 2; half++) {
                    const int c0 = half * g + g0, width = g1 - g0;
                    if (w->global_tables) {
                        const float *row = w->global_tables + ((size_t)l * w->global_classes + c->global_ids[b]) * g2;
                        for (int i = 0; i < width; i++) pre[c0 + i] += row[c0 + i];
                    }
                    if (c->conditioning) {
                        const float *row = c->conditioning + (((size_t)b * c->samples + k) * w->layers + l) * g2;
                        for (int i = 0; i < width; i++) pre[c0 + i] += row[c0 + i];
                    }
                    for (int j = 0; j < w->taps; j++) {
                        const size_t past = (size_t)(t - w->delays[l * w->taps + j]) & mask;
                        const float *x = c->ring + past * row_stride + ((size_t)l * c->batch + b) * r;
                        matvec_cols(pre + c0, x, w->past + ((size_t)l * w->taps + j) * r * g2 + c0, r, width, g2);
                    }
                    matvec_cols(pre + c0, h, w->current + (size_t)l * r * g2 + c0, r, width, g2);
                }
                if (p == 0) memcpy(slot, h, r * sizeof(float));
                gated_range(z, pre, g, g0, g1);
                matvec_acc(sp->skip_part + (size_t)p * s, z + g0, w->skip_kernel + ((size_t)l * g + g0) * s, g1 - g0, s);
                if (l < w->layers - 1) {
                    memset(partial, 0, r * sizeof(float));
                    matvec_acc(partial, z + g0, w->residual_kernels + ((size_t)l * g + g0) * r, g1 - g0, r);
                }
            }
            if (l < w->layers - 1) {
                barrier_wait(&sp->barrier, p, &reached);
                if (mine)
                    for (int other = 0; other < sp->parts; other++) {
                        const float *part = sp->partial + ((size_t)(l & 1) * sp->parts + other) * r;
                        for (int i = 0; i < r; i++) h[i] += part[i];
                    }
            }
        }
        barrier_wait(&sp->barrier, p, &reached);
        if (mine) {
            memcpy(skip, w->skip_bias, s * sizeof(float));
            for (int other = 0; other < sp->parts; other++)
                for (int i = 0; i < s; i++) skip[i] += sp->skip_part[(size_t)other * s + i];
            relu_bias(skip, NULL, s);
            memcpy(sp->hidden + s0, w->head_bias + s0, (s1 - s0) * sizeof(float));
            matvec_cols(sp->hidden + s0, skip, w->head_kernel + s0, s, s1 - s0, s);
            relu_bias(sp->hidden + s0, NULL, s1 - s0);
        }
        barrier_wait(&sp->barrier, p, &reached);
        if (mine) {
            memcpy(logits + q0, w->out_bias + q0, (q1 - q0) * sizeof(float));
            matvec_cols(logits + q0, sp->hidden, w->out_kernel + q0, s, q1 - q0, q);
            if (c->all_logits)
                memcpy(c->all_logits + ((size_t)b * c->samples + k) * q + q0, logits + q0, (q1 - q0) * sizeof(float));
        }
        barrier_wait(&sp->barrier, p, &reached);
    }
    free(mine);
    return NULL;
}

/* One stream, `parts` threads. Returns 0, or -1 when memory ran out. */
static int run_one_stream_split(const WnWeights *w, const WnCall *call, int64_t stream, int parts) {
    if (parts > MAX_PARTS) parts = MAX_PARTS;
    const size_t r = w->residual, s = w->skip;
    Split sp = {.w = w, .c = call, .stream = stream, .parts = parts};
    for (int i = 0; i < MAX_PARTS; i++) atomic_init(&sp.barrier.arrivals[i].count, 0);
    sp.barrier.parties = parts;
    void *block = malloc((r + 2 * parts * r + parts * s + s) * sizeof(float) + w->classes * sizeof(double));
    if (!block) return -1;
    sp.cdf = block;
    sp.h0 = (float *)(sp.cdf + w->classes);
    sp.partial = sp.h0 + r;
    sp.skip_part = sp.partial + 2 * parts * r;
    sp.hidden = sp.skip_part + parts * s;
    SplitShare shares[MAX_PARTS];
    pthread_t ids[MAX_PARTS];
    int started = 1;
    for (int i = 0; i < parts; i++) shares[i] = (SplitShare){&sp, i, 0};
    for (; started < parts; started++)
        if (pthread_create(&ids[started], NULL, run_split, &shares[started]) != 0) break;
    if (started < parts) { /* could not start every thread: they would wait forever at a barrier */
        sp.barrier.parties = 1;
        for (int i = 1; i < started; i++) pthread_cancel(ids[i]);
        for (int i = 1; i < started; i++) pthread_join(ids[i], NULL);
        free(block);
        return 1; /* the caller runs the stream on one thread */
    }
    run_split(&shares[0]);
    int failed = shares[0].failed;
    for (int i = 1; i < parts; i++) {
        pthread_join(ids[i], NULL);
        failed |= shares[i].failed;
    }
    free(block);
    return failed ? -1 : 0;
}

int wn_run(const WnWeights *w, const WnCall *call) {
    enum { MAX_THREADS = 64 };
    int threads = call->threads < 1 ? 1 : call->threads;
    if (call->num_active == 1 && threads > 1) {
        const int status = run_one_stream_split(w, call, call->active[0], threads);
        if (status <= 0) return status;
    }
    if (threads > call->num_active) threads = call->num_active > 0 ? call->num_active : 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    WnShare shares[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int i = 0; i < threads; i++) {
        const int from = (int)((int64_t)call->num_active * i / threads);
        const int to = (int)((int64_t)call->num_active * (i + 1) / threads);
        shares[i] = (WnShare){w, call, call->active + from, to - from, 0};
    }
    /* Streams are independent, so each thread runs its share for all K samples: no
     * synchronisation inside the call. A thread that cannot start runs on this one. */
    for (int i = 1; i < threads; i++) started[i] = pthread_create(&ids[i], NULL, run_share, &shares[i]) == 0;
    run_share(&shares[0]);
    for (int i = 1; i < threads; i++) {
        if (started[i]) pthread_join(ids[i], NULL);
        else run_share(&shares[i]);
    }
    for (int i = 0; i < threads; i++)
        if (shares[i].failed) return -1;
    return 0;
}

/* ---- the machine's arithmetic limit, for the benchmark's "how close" figure ------------- */

/* `iterations` rounds of 8 independent vector multiply-adds (enough chains to cover the FMA
 * latency): 64·iterations multiply-adds at the peak rate of one core. Returns a value that
 * depends on every lane so the compiler cannot drop the loop. */
__attribute__((visibility("default"))) double wavenet_fma_loop(int64_t iterations) {
    v8 acc[8];
    for (int v = 0; v < 8; v++) acc[v] = splat8(0.001f * v);
    const v8 a = splat8(0.999f), b = splat8(0.0001f);
    for (int64_t i = 0; i < iterations; i++)
        for (int v = 0; v < 8; v++) acc[v] = acc[v] * a + b;
    float sum = 0.0f;
    for (int v = 0; v < 8; v++)
        for (int lane = 0; lane < 8; lane++) sum += acc[v][lane];
    return sum;
}
