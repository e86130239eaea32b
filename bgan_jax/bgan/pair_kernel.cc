// The sparse attention of one mechanism as two XLA FFI CPU kernels (forward, backward).
//
// Same numbers as bgan_jax/bgan/attention.py's ``_projected`` (up to float summation
// order), in its factored form: the edge key term of pair p = (j -> i) is
// <W_k^h q_i, e_p> and the edge value term enters as W_v^h sum_p a_p e_p, so no
// [P, H, D] edge key or value is ever formed; the caller does the N-sized products with
// W_k and W_v. Each kernel orders the allowed pairs by receiver itself (a counting sort),
// then works receiver by receiver, so every per-receiver sum (softmax, outputs, the
// backward pass's centring and query gradient) stays in registers and cache instead of
// going through scatters. Why a kernel: XLA CPU emits the per-pair gathers, products and
// scatters at ~0.3 ns per element operation (BENCHMARKS.md, ninth and tenth passes).
//
// Layouts (row-major, float32 unless noted): q, k, v [N, H, D]; qe [N, H, E] (= W_k q
// per head); emb [P, E]; s, r [P] int32; ok [P] bool; ok_self [N] bool. Rows that are
// not allowed, or whose sender or receiver is outside [0, N), are left out (weight 0,
// gradient 0). A receiver with nothing allowed gets zeros, never NaN.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Allowed rows grouped by one of their ends (``key`` = r: by receiver, s: by sender):
// the rows of node i are order[start[i] .. start[i + 1]), in row order (a counting sort).
struct Csr {
  std::vector<int32_t> start, order;
};

Csr grouped(int64_t n, int64_t p, const int32_t* key, const int32_t* s, const int32_t* r,
            const bool* ok) {
  Csr c;
  c.start.assign(n + 1, 0);
  auto valid = [&](int64_t row) {
    return ok[row] && r[row] >= 0 && r[row] < n && s[row] >= 0 && s[row] < n;
  };
  for (int64_t row = 0; row < p; ++row)
    if (valid(row)) ++c.start[key[row] + 1];
  for (int64_t i = 0; i < n; ++i) c.start[i + 1] += c.start[i];
  c.order.resize(c.start[n]);
  std::vector<int32_t> fill(c.start.begin(), c.start.end() - 1);
  for (int64_t row = 0; row < p; ++row)
    if (valid(row)) c.order[fill[key[row]]++] = static_cast<int32_t>(row);
  return c;
}

// A row of a [N, H, X] table is touched at random; ask for it ahead of time.
inline void prefetch_row(const float* row, int64_t len) {
  for (int64_t x = 0; x < len; x += 16) __builtin_prefetch(row + x);
}

constexpr int64_t kAhead = 8;  // pairs to prefetch ahead

int64_t pool_threads(ffi::ThreadPool& pool) {
  return std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), 16));
}

// fn(t, cut[t], cut[t + 1]) for every range t, each range claimed once by whichever
// thread gets to it first: the calling thread and T - 1 tasks on XLA's intra-op pool.
// The caller never waits for a task that has not started (XLA may be running other
// kernels on every pool thread, each waiting the same way), only for ranges another
// thread is working on; a task that starts late finds nothing left and touches only
// the shared counters.
template <typename F>
void run_ranges(ffi::ThreadPool& pool, const std::vector<int64_t>& cut, F fn) {
  const int64_t ranges = static_cast<int64_t>(cut.size()) - 1;
  if (ranges == 1) {
    fn(0, cut[0], cut[1]);
    return;
  }
  struct Counters {
    std::atomic<int64_t> next{0}, done{0};
  };
  auto counters = std::make_shared<Counters>();
  const std::vector<int64_t>* cuts = &cut;
  F* body = &fn;
  auto work = [counters, ranges, cuts, body]() {
    for (;;) {
      const int64_t t = counters->next.fetch_add(1, std::memory_order_acq_rel);
      if (t >= ranges) return;
      (*body)(t, (*cuts)[t], (*cuts)[t + 1]);
      counters->done.fetch_add(1, std::memory_order_acq_rel);
    }
  };
  for (int64_t t = 1; t < ranges; ++t) {
    auto task = work;
    pool.Schedule(std::move(task));
  }
  work();
  while (counters->done.load(std::memory_order_acquire) < ranges) std::this_thread::yield();
}

// Receiver ranges of about equal pair counts, one per thread (one range when small).
std::vector<int64_t> receiver_cuts(ffi::ThreadPool& pool, const Csr& c, int64_t n) {
  const int64_t pairs = static_cast<int64_t>(c.order.size());
  const int64_t threads = (n < 64 || pairs < 4096) ? 1 : pool_threads(pool);
  std::vector<int64_t> cut(threads + 1, n);
  cut[0] = 0;
  for (int64_t t = 1; t < threads; ++t) {
    const int64_t target = pairs * t / threads;
    cut[t] = std::upper_bound(c.start.begin(), c.start.end() - 1, target) - c.start.begin();
    cut[t] = std::max(cut[t], cut[t - 1]);
  }
  return cut;
}

// fn(i, h, rows, m, scratch) for every node i and head h, with the m allowed rows grouped
// under i in ``c`` and m floats of scratch; node ranges split over threads as
// ``receiver_cuts`` does.
template <typename F>
void each_node_head(ffi::ThreadPool& pool, const Csr& c, int64_t n, int64_t h_n, F fn) {
  run_ranges(pool, receiver_cuts(pool, c, n), [&](int64_t, int64_t first, int64_t last) {
    std::vector<float> scratch;
    for (int64_t i = first; i < last; ++i) {
      const int32_t* rows = c.order.data() + c.start[i];
      const int64_t m = c.start[i + 1] - c.start[i];
      scratch.resize(m);
      for (int64_t h = 0; h < h_n; ++h) fn(i, h, rows, m, scratch.data());
    }
  });
}

inline float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.f;
  for (int64_t d = 0; d < n; ++d) acc += a[d] * b[d];
  return acc;
}

inline void axpy(float w, const float* x, float* y, int64_t n) {
  for (int64_t d = 0; d < n; ++d) y[d] += w * x[d];
}

}  // namespace

ffi::Error PairAttentionForward(
    ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
    ffi::Buffer<ffi::F32> v, ffi::Buffer<ffi::F32> qe, ffi::Buffer<ffi::F32> emb,
    ffi::Buffer<ffi::S32> s, ffi::Buffer<ffi::S32> r, ffi::Buffer<ffi::PRED> ok,
    ffi::Buffer<ffi::PRED> ok_self, ffi::ResultBuffer<ffi::F32> out,
    ffi::ResultBuffer<ffi::F32> agg, ffi::ResultBuffer<ffi::F32> w_edges,
    ffi::ResultBuffer<ffi::F32> w_self) {
  const int64_t n = q.dimensions()[0], h_n = q.dimensions()[1], d_n = q.dimensions()[2];
  const int64_t e_n = emb.dimensions()[1], p = s.dimensions()[0];
  const float *Q = q.typed_data(), *K = k.typed_data(), *V = v.typed_data();
  const float *QE = qe.typed_data(), *EMB = emb.typed_data();
  const int32_t* S = s.typed_data();
  const bool* OKS = ok_self.typed_data();
  float *OUT = out->typed_data(), *AGG = agg->typed_data();
  float *WE = w_edges->typed_data(), *WS = w_self->typed_data();
  const int32_t* R = r.typed_data();
  Csr c = grouped(n, p, R, S, R, ok.typed_data());
  std::memset(WE, 0, sizeof(float) * p * h_n);

  each_node_head(pool, c, n, h_n, [&](int64_t i, int64_t h, const int32_t* rows,
                                      int64_t m, float* logit) {
    const int64_t ih = i * h_n + h;
    const float *qi = Q + ih * d_n, *qei = QE + ih * e_n;
    float *o = OUT + ih * d_n, *g = AGG + ih * e_n;
    std::fill(o, o + d_n, 0.f);
    std::fill(g, g + e_n, 0.f);
    const float self = OKS[i] ? dot(qi, K + ih * d_n, d_n) : 0.f;
    float peak = OKS[i] ? self : -INFINITY;
    for (int64_t j = 0; j < m; ++j) {
      const int64_t row = rows[j];
      if (j + kAhead < m) {
        prefetch_row(K + (S[rows[j + kAhead]] * h_n + h) * d_n, d_n);
        prefetch_row(V + (S[rows[j + kAhead]] * h_n + h) * d_n, d_n);
      }
      logit[j] = dot(qi, K + (S[row] * h_n + h) * d_n, d_n) + dot(qei, EMB + row * e_n, e_n);
      peak = std::max(peak, logit[j]);
    }
    if (m == 0 && !OKS[i]) {  // nothing to attend to: zeros
      WS[ih] = 0.f;
      return;
    }
    const float un_self = OKS[i] ? std::exp(self - peak) : 0.f;
    float total = un_self;
    for (int64_t j = 0; j < m; ++j) total += (logit[j] = std::exp(logit[j] - peak));
    const float inv = 1.f / total;
    WS[ih] = un_self * inv;
    if (OKS[i]) axpy(WS[ih], V + ih * d_n, o, d_n);
    for (int64_t j = 0; j < m; ++j) {
      const int64_t row = rows[j];
      const float w = logit[j] * inv;
      WE[row * h_n + h] = w;
      axpy(w, V + (S[row] * h_n + h) * d_n, o, d_n);
      axpy(w, EMB + row * e_n, g, e_n);
    }
  });
  return ffi::Error::Success();
}

// Cotangents: g_out [N, H, D] of ``out``, gv = W_v g_out per head [N, H, E] (that of
// ``agg``), g_we [P, H], g_ws [N, H]. Returns dq (without the edge key term: the caller
// adds dA W_k), dA = sum_p dl_p e_p [N, H, E], d_emb [P, E], dk, dv [N, H, D].
ffi::Error PairAttentionBackward(
    ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
    ffi::Buffer<ffi::F32> v, ffi::Buffer<ffi::F32> qe, ffi::Buffer<ffi::F32> emb,
    ffi::Buffer<ffi::S32> s, ffi::Buffer<ffi::S32> r, ffi::Buffer<ffi::PRED> ok,
    ffi::Buffer<ffi::PRED> ok_self, ffi::Buffer<ffi::F32> w_edges,
    ffi::Buffer<ffi::F32> w_self, ffi::Buffer<ffi::F32> g_out, ffi::Buffer<ffi::F32> gv,
    ffi::Buffer<ffi::F32> g_we, ffi::Buffer<ffi::F32> g_ws, ffi::ResultBuffer<ffi::F32> dq,
    ffi::ResultBuffer<ffi::F32> d_a, ffi::ResultBuffer<ffi::F32> d_emb,
    ffi::ResultBuffer<ffi::F32> dk, ffi::ResultBuffer<ffi::F32> dv) {
  const int64_t n = q.dimensions()[0], h_n = q.dimensions()[1], d_n = q.dimensions()[2];
  const int64_t e_n = emb.dimensions()[1], p = s.dimensions()[0];
  const float *Q = q.typed_data(), *K = k.typed_data(), *V = v.typed_data();
  const float *QE = qe.typed_data(), *EMB = emb.typed_data();
  const float *WE = w_edges.typed_data(), *WS = w_self.typed_data();
  const float *G = g_out.typed_data(), *GV = gv.typed_data();
  const float *GWE = g_we.typed_data(), *GWS = g_ws.typed_data();
  const int32_t* S = s.typed_data();
  const bool* OKS = ok_self.typed_data();
  float *DQ = dq->typed_data(), *DA = d_a->typed_data(), *DEMB = d_emb->typed_data();
  float *DK = dk->typed_data(), *DV = dv->typed_data();
  const int32_t* R = r.typed_data();
  const Csr c = grouped(n, p, R, S, R, ok.typed_data());
  std::memset(DEMB, 0, sizeof(float) * p * e_n);
  // Pass 1, by receiver: the softmax's gradient dl per pair (kept) and per self pair,
  // dq, dA and d_emb (each row or node written by the one thread that owns it).
  std::vector<float> dl_rows(p * h_n, 0.f), dl_self(n * h_n, 0.f);
  each_node_head(pool, c, n, h_n, [&](int64_t i, int64_t h, const int32_t* rows,
                                      int64_t m, float* dw) {
    const int64_t ih = i * h_n + h;
    const float *qi = Q + ih * d_n, *qei = QE + ih * e_n;
    const float *gi = G + ih * d_n, *gvi = GV + ih * e_n;
    float *dqi = DQ + ih * d_n, *dai = DA + ih * e_n;
    std::fill(dqi, dqi + d_n, 0.f);
    std::fill(dai, dai + e_n, 0.f);
    // d loss / d weight, then through the softmax: dl = w (dw - sum_receiver w dw).
    const float w_s = WS[ih];
    const float dw_s = OKS[i] ? dot(gi, V + ih * d_n, d_n) + GWS[ih] : 0.f;
    float centre = w_s * dw_s;
    for (int64_t j = 0; j < m; ++j) {
      const int64_t row = rows[j];
      if (j + kAhead < m) {
        prefetch_row(V + (S[rows[j + kAhead]] * h_n + h) * d_n, d_n);
        prefetch_row(K + (S[rows[j + kAhead]] * h_n + h) * d_n, d_n);
      }
      dw[j] = dot(gi, V + (S[row] * h_n + h) * d_n, d_n) + dot(gvi, EMB + row * e_n, e_n) +
              GWE[row * h_n + h];
      centre += WE[row * h_n + h] * dw[j];
    }
    if (OKS[i]) {
      dl_self[ih] = w_s * (dw_s - centre);
      axpy(dl_self[ih], K + ih * d_n, dqi, d_n);
    }
    for (int64_t j = 0; j < m; ++j) {
      const int64_t row = rows[j];
      const float w = WE[row * h_n + h], dl = w * (dw[j] - centre);
      dl_rows[row * h_n + h] = dl;
      axpy(dl, K + (S[row] * h_n + h) * d_n, dqi, d_n);
      axpy(dl, EMB + row * e_n, dai, e_n);
      float* de = DEMB + row * e_n;
      axpy(dl, qei, de, e_n);
      axpy(w, gvi, de, e_n);
    }
  });
  // Pass 2, by sender: dk_j = dl_self q_j + sum_p dl_p q_r, dv_j = w_self g_j + sum_p w_p g_r.
  const Csr by_sender = grouped(n, p, S, S, R, ok.typed_data());
  each_node_head(pool, by_sender, n, h_n, [&](int64_t j, int64_t h, const int32_t* rows,
                                              int64_t m, float*) {
    const int64_t jh = j * h_n + h;
    float *dkj = DK + jh * d_n, *dvj = DV + jh * d_n;
    for (int64_t d = 0; d < d_n; ++d) {  // the self pair (both weights 0 when not allowed)
      dkj[d] = dl_self[jh] * Q[jh * d_n + d];
      dvj[d] = WS[jh] * G[jh * d_n + d];
    }
    for (int64_t x = 0; x < m; ++x) {
      const int64_t row = rows[x], rh = R[row] * h_n + h;
      if (x + kAhead < m) {
        prefetch_row(Q + (R[rows[x + kAhead]] * h_n + h) * d_n, d_n);
        prefetch_row(G + (R[rows[x + kAhead]] * h_n + h) * d_n, d_n);
      }
      axpy(dl_rows[row * h_n + h], Q + rh * d_n, dkj, d_n);
      axpy(WE[row * h_n + h], G + rh * d_n, dvj, d_n);
    }
  });
  return ffi::Error::Success();
}

// The arguments both kernels start with: q, k, v, qe, emb, s, r, ok, ok_self.
static auto attention_inputs() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<ffi::Buffer<ffi::F32>>()    // q
      .Arg<ffi::Buffer<ffi::F32>>()    // k
      .Arg<ffi::Buffer<ffi::F32>>()    // v
      .Arg<ffi::Buffer<ffi::F32>>()    // qe
      .Arg<ffi::Buffer<ffi::F32>>()    // emb
      .Arg<ffi::Buffer<ffi::S32>>()    // s
      .Arg<ffi::Buffer<ffi::S32>>()    // r
      .Arg<ffi::Buffer<ffi::PRED>>()   // ok
      .Arg<ffi::Buffer<ffi::PRED>>();  // ok_self
}

using F32Buffer = ffi::Buffer<ffi::F32>;

XLA_FFI_DEFINE_HANDLER_SYMBOL(BganPairAttentionForward, PairAttentionForward,
                              attention_inputs()
                                  .Ret<F32Buffer>()    // out
                                  .Ret<F32Buffer>()    // agg
                                  .Ret<F32Buffer>()    // w_edges
                                  .Ret<F32Buffer>());  // w_self

XLA_FFI_DEFINE_HANDLER_SYMBOL(BganPairAttentionBackward, PairAttentionBackward,
                              attention_inputs()
                                  .Arg<F32Buffer>()    // w_edges
                                  .Arg<F32Buffer>()    // w_self
                                  .Arg<F32Buffer>()    // g_out
                                  .Arg<F32Buffer>()    // gv
                                  .Arg<F32Buffer>()    // g_we
                                  .Arg<F32Buffer>()    // g_ws
                                  .Ret<F32Buffer>()    // dq
                                  .Ret<F32Buffer>()    // d_a
                                  .Ret<F32Buffer>()    // d_emb
                                  .Ret<F32Buffer>()    // dk
                                  .Ret<F32Buffer>());  // dv
