/* The WaveNet step engine: K consecutive samples for a set of streams, no onnxruntime inside.
 *
 * The arithmetic is `step.onnx`'s (export/step_graph.py), sample by sample:
 *
 *   h_0      = sum over input taps j of tables[j][class at t - K0 + 1 + j]   (first conv, bias folded)
 *   layer l: pre = gate_bias[l] + sum_j ring[t - delay[l][j]][l] @ past[l][j] + h_l @ current[l]
 *                  (+ global_tables[l][id]) (+ conditioning[t][l])
 *            ring[t][l] = h_l                           (what later samples read as their past)
 *            z_l = tanh(pre[:G]) * sigmoid(pre[G:])
 *            h_{l+1} = h_l + z_l @ residual[l]          (residual biases are folded, as in the graph)
 *   logits   = relu(relu(skip_bias + concat(z) @ skip) @ head + head_bias) @ out + out_bias
 *
 * and the next class is drawn from the logits with wavenet_tf/core/sampling.py's float64 inverse-CDF
 * arithmetic, in the same order, so the same uniforms give the same classes (top-k included:
 * the classes below a stream's k-th largest logit weigh 0, as in `sample_rows`).
 */
#ifndef WAVENET_KERNEL_H
#define WAVENET_KERNEL_H

#include <stdint.h>

/* The largest convolution kernel (taps per layer) the engine takes; the op refuses more. */
#define WN_MAX_KERNEL 16

/* The trained arrays (read-only, owned by the caller) and their sizes. */
typedef struct {
    int layers, taps, input_taps;          /* L, k - 1, K0 */
    int residual, gate, skip, classes;     /* R, G, S, Q   */
    int global_classes;                    /* C (0: not globally conditioned) */
    const int64_t *delays;                 /* (L, k-1) samples back for each past tap */
    const float *tables;                   /* (K0, Q + 1, R) */
    const float *past;                     /* (L, (k-1)·R, 2G) */
    const float *current;                  /* (L, R, 2G) */
    const float *gate_bias;                /* (L, 2G) */
    const float *global_tables;            /* (L, C, 2G) or NULL */
    const float *residual_kernels;         /* (L - 1, G, R) */
    const float *skip_kernel;              /* (L·G, S) */
    const float *skip_bias;                /* (S,) */
    const float *head_kernel, *head_bias;  /* (S, S), (S,) */
    const float *out_kernel, *out_bias;    /* (S, Q), (Q,) */
} WnWeights;

/* One call's state and inputs. Every per-stream array has B rows; only `active` streams move. */
typedef struct {
    int batch, samples;                    /* B, K */
    int64_t time;                          /* t of the first new sample */
    int ring_size;                         /* rows of the ring (a power of two above every delay) */
    float *ring;                           /* (ring_size, L, B, R), updated in place */
    int64_t *taps;                         /* (B, K0) classes up to t - 1, updated in place */
    float *logits;                         /* (B, Q) distribution of sample t, updated in place */
    const double *uniforms;                /* (B, K) */
    const double *temperature;             /* (B,) <= 1e-3 draws the most likely class */
    const int64_t *top_k;                  /* (B,) 0 or >= Q: every class; else the k most likely; or NULL */
    const int64_t *forced;                 /* (B, K) classes to feed (-1: draw), or NULL */
    const int64_t *global_ids;             /* (B,) or NULL */
    const float *conditioning;             /* (B, K, L, 2G) or NULL */
    int64_t *classes_out;                  /* (B, K) */
    float *all_logits;                     /* (B, K, Q) when forced, else NULL */
    const int64_t *active;                 /* stream indices to advance */
    int num_active;
    int threads;
} WnCall;

/* Advance the active streams by K samples, using up to `threads` threads (streams split between
 * them). Returns 0, or -1 when scratch memory could not be allocated (the state is then partial). */
int wn_run(const WnWeights *w, const WnCall *call);

/* The sampling rule on its own: one class from `classes` logits, `scratch` holding `classes` doubles.
 * top_k 0 (or >= classes) draws from every class; otherwise only from those whose logit is at
 * least the k-th largest (ties at the edge all kept). */
int wn_draw(const float *logits, int classes, double temperature, int64_t top_k, double uniform, double *scratch);

#endif
