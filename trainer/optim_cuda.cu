/* trainer/optim_cuda.cu: the optimizer update of the whole parameter block on a CUDA device, and
 * the gradient's sum of squares (for its norm and clipping).
 *
 * Update: the rules of trainer/optim.c (sgd, momentum, Nesterov, adam, adamw), with the optimizer
 * state laid out as there: for the parameter tensor at float offset o with n elements, momentum's
 * velocity is state[o + i], adam's first moment state[2o + i] and second moment state[2o + n + i].
 * Every parameter tensor is cut into chunks of at most OC_CHUNK elements; the table of chunks
 * (tensor offset, tensor size, chunk range, decay) is built once by od_cuda_optim_create, and a
 * step is ONE launch with a block per chunk whose threads stride through the chunk (coalesced; big
 * tensors spread over many blocks, small ones take one each, no idle blocks). The kind is a
 * template argument; the scalars (lr, decay, bias corrections...) are computed on the host exactly
 * as the CPU computes them.
 *
 * The arithmetic repeats the CPU's operation for operation, in the same precision (float for
 * sgd/momentum, double for adam's moments and step), through the _rn intrinsics so that nvcc fuses
 * no multiply-add: every operation is IEEE round-to-nearest on both sides, and the GPU's weights
 * and state match the CPU's bit for bit (the tests still allow float32 rounding, see
 * tests/test_train_cuda.c). Bandwidth-bound: adam reads w, g, m, v and writes w, m, v (28 bytes
 * per parameter).
 *
 * Sum of squares: a grid-stride loop over 16-byte vectors (when aligned) with float32 partial sums
 * per thread and per block, the block partials added in double (trainer/train_cuda.cuh).
 *
 * The graph-safe step (struct od_cuda_step): the scalars that change every step live in one small
 * device block. The host writes its part (the update's oc_args as above, and the host losses' sum)
 * through pinned memory with one copy before the step's work (od_cuda_step_set); on the device,
 * od_cuda_step_reduce writes the gradient's sum of squares and a one-thread kernel (oc_step_finish)
 * derives the norm, the clip scale (into the oc_args the update reads) and the total loss; the
 * update kernel (oc_step_dev_kernel) reads its oc_args from that block and does nothing when the
 * total is not finite. So the kernels' arguments are the same every step and a captured graph can
 * replay them; the double arithmetic of oc_step_finish is the host's, operation for operation. */
#include <stdlib.h>
#include <string.h>

#include "trainer/train_cuda.cuh"

#define OC_CHUNK 8192 /* elements per block: 32 per thread */

/* IEEE single operations that the compiler may not fuse (the emulation's C++ is compiled without
 * contraction across statements on x86-64, as the CPU code is). */
#ifdef OD_CUDA_EMU
static inline float oc_fmul(float a, float b) { return a * b; }
static inline float oc_fadd(float a, float b) { return a + b; }
static inline float oc_fsub(float a, float b) { return a - b; }
static inline double oc_dmul(double a, double b) { return a * b; }
static inline double oc_dadd(double a, double b) { return a + b; }
#else
#define oc_fmul __fmul_rn
#define oc_fadd __fadd_rn
#define oc_fsub __fsub_rn
#define oc_dmul __dmul_rn
#define oc_dadd __dadd_rn
#endif

/* One chunk: elements [begin, end) of the tensor at float offset toff with tn elements. */
struct oc_chunk {
  int64_t toff, tn, begin, end;
  int32_t decay;
};

struct od_cuda_optim {
  struct od_device *dev;
  oc_chunk *chunks; /* device */
  int64_t nchunks;
};

/* The scalars of one step (host-computed as trainer/optim.c computes them). */
struct oc_args {
  int nesterov;
  float flr, fs, fwd, mu, flrwd; /* lr, grad_scale, weight decay, momentum, lr * wd as floats */
  double lr, b1, b2, omb1, omb2, c1, c2, eps;
};

template <int KIND>
static __device__ __forceinline__ void oc_update(const oc_chunk *chunks, const oc_args &a, float *w, const float *g,
                                                 float *state) {
  const oc_chunk c = chunks[blockIdx.x];
  const float fwd = c.decay ? a.fwd : 0.f, flrwd = c.decay ? a.flrwd : 0.f;
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) {
    int64_t j = c.toff + i;
    float wi = w[j];
    if (KIND == OD_OPTIM_SGD) {
      w[j] = oc_fsub(wi, oc_fmul(a.flr, oc_fadd(oc_fmul(a.fs, g[j]), oc_fmul(fwd, wi))));
    } else if (KIND == OD_OPTIM_MOMENTUM) {
      float gi = oc_fadd(oc_fmul(a.fs, g[j]), oc_fmul(fwd, wi));
      float v = oc_fadd(oc_fmul(a.mu, state[j]), gi);
      state[j] = v;
      w[j] = oc_fsub(wi, oc_fmul(a.flr, a.nesterov ? oc_fadd(gi, oc_fmul(a.mu, v)) : v));
    } else { /* adam, adamw */
      const bool decoupled = KIND == OD_OPTIM_ADAMW;
      float *m = state + 2 * c.toff, *v = m + c.tn;
      float gi = oc_fadd(oc_fmul(a.fs, g[j]), decoupled ? 0.0f : oc_fmul(fwd, wi));
      double gd = (double)gi;
      float mi = (float)oc_dadd(oc_dmul(a.b1, (double)m[i]), oc_dmul(a.omb1, gd));
      float vi = (float)oc_dadd(oc_dmul(a.b2, (double)v[i]), oc_dmul(oc_dmul(a.omb2, gd), gd));
      m[i] = mi;
      v[i] = vi;
      double mh = (double)mi / a.c1, vh = (double)vi / a.c2;
      wi = oc_fsub(wi, (float)(oc_dmul(a.lr, mh) / oc_dadd(sqrt(vh), a.eps)));
      if (decoupled) wi = oc_fsub(wi, oc_fmul(flrwd, wi));
      w[j] = wi;
    }
  }
}

template <int KIND>
static __global__ void oc_step_kernel(const oc_chunk *chunks, oc_args a, float *w, const float *g, float *state) {
  oc_update<KIND>(chunks, a, w, g, state);
}

/* ---- the step's scalars on the device ---- */

/* What the host writes each step (od_cuda_step_set). */
struct oc_step_host {
  oc_args a;         /* fs is overwritten on the device by oc_step_finish */
  double host_total; /* the losses computed on the host */
};

/* The device block: the host part, then what the device computes; n loss values and n weights
 * follow it (all doubles). */
struct oc_step_dev {
  oc_step_host h;
  double sumsq, total, norm, scale;
  int32_t finite;
};

struct od_cuda_step {
  struct od_device *dev;
  int n;
  double clip_norm;
  char *block;           /* device: oc_step_dev, values[n], weights[n] */
  oc_step_host *staging; /* pinned: the next step's host part */
  char *readback;        /* pinned: oc_step_dev and values[n] as last read */
  cudaEvent_t copied;    /* the last staging copy is done */
  bool copy_pending;
};

static inline size_t oc_values_off(void) { return (sizeof(oc_step_dev) + 7) / 8 * 8; }

template <int KIND>
static __global__ void oc_step_dev_kernel(const oc_chunk *chunks, const oc_step_dev *d, float *w, const float *g,
                                          float *state) {
  if (!d->finite) return; /* the loss diverged: leave the weights (the host reports it) */
  const oc_args a = d->h.a;
  oc_update<KIND>(chunks, a, w, g, state);
}

/* One thread: norm, clip scale and total loss from the sums on the device (the host's formulas,
 * trainer/step_device.c, in the same order; no fused multiply-adds). */
static __global__ void oc_step_finish(oc_step_dev *d, const double *values, const double *weights, int n,
                                      double clip_norm) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  double total = d->h.host_total;
  for (int i = 0; i < n; i++) total = oc_dadd(total, oc_dmul(weights[i], values[i]));
  double norm = sqrt(d->sumsq);
  double scale = clip_norm > 0 && norm > clip_norm ? clip_norm / norm : 1.0;
  d->total = total;
  d->norm = norm;
  d->scale = scale;
  d->h.a.fs = (float)scale;
  d->finite = isfinite(total) ? 1 : 0;
}

extern "C" enum od_status od_cuda_optim_create(struct od_device *dev, const struct od_params *ps,
                                               struct od_cuda_optim **out, struct od_err *err) {
  *out = NULL;
  if (!dev || dev->kind != OD_DEVICE_CUDA)
    return od_err_set(err, OD_ERR_INVALID_ARG, "optimizer: od_cuda_optim_create needs a CUDA device");
  int64_t nchunks = 0;
  for (int i = 0; i < ps->n; i++) nchunks += ((int64_t)ps->p[i].n + OC_CHUNK - 1) / OC_CHUNK;
  struct od_cuda_optim *o = (struct od_cuda_optim *)calloc(1, sizeof *o);
  oc_chunk *host = (oc_chunk *)calloc((size_t)(nchunks ? nchunks : 1), sizeof *host);
  if (!o || !host) {
    free(o);
    free(host);
    return od_err_set(err, OD_ERR_OOM, "optimizer: out of memory for the table of %d parameter tensors", ps->n);
  }
  int64_t k = 0;
  for (int i = 0; i < ps->n; i++) {
    const struct od_param *p = &ps->p[i];
    for (int64_t b = 0; b < (int64_t)p->n; b += OC_CHUNK) {
      int64_t e = b + OC_CHUNK < (int64_t)p->n ? b + OC_CHUNK : (int64_t)p->n;
      host[k++] = oc_chunk{(int64_t)p->offset, (int64_t)p->n, b, e, p->decay ? 1 : 0};
    }
  }
  o->dev = dev;
  o->nchunks = nchunks;
  enum od_status s = OD_OK;
  if (nchunks) {
    size_t bytes = (size_t)nchunks * sizeof *host;
    s = dev->ops->alloc(dev, bytes, (void **)&o->chunks, err);
    if (s == OD_OK) s = dev->ops->to_device(dev, o->chunks, host, bytes, err);
    if (s == OD_OK) s = dev->ops->sync(dev, err); /* host is freed next */
  }
  free(host);
  if (s != OD_OK) {
    od_cuda_optim_destroy(o);
    return s;
  }
  *out = o;
  return OD_OK;
}

extern "C" void od_cuda_optim_destroy(struct od_cuda_optim *o) {
  if (!o) return;
  if (o->chunks) o->dev->ops->free(o->dev, o->chunks);
  free(o);
}

/* The scalars of a step, computed on the host exactly as trainer/optim.c computes them. */
static oc_args oc_make_args(const struct od_optim_cfg *c, double lr, int64_t step, double grad_scale) {
  oc_args a = {};
  a.nesterov = c->nesterov ? 1 : 0;
  a.flr = (float)lr;
  a.fs = (float)grad_scale;
  a.fwd = (float)c->weight_decay;
  a.mu = (float)c->momentum;
  a.flrwd = (float)(lr * c->weight_decay);
  a.lr = lr;
  a.b1 = c->beta1;
  a.b2 = c->beta2;
  a.omb1 = 1 - c->beta1;
  a.omb2 = 1 - c->beta2;
  a.c1 = 1 - pow(c->beta1, (double)step);
  a.c2 = 1 - pow(c->beta2, (double)step);
  a.eps = c->eps;
  return a;
}

extern "C" enum od_status od_cuda_optim_step(struct od_cuda_optim *o, const struct od_optim_cfg *c, double lr,
                                             int64_t step, float *w, const float *g, float *state,
                                             double grad_scale, struct od_err *err) {
  if (!o || !c) return od_err_set(err, OD_ERR_INVALID_ARG, "optimizer step: no optimizer or configuration");
  if (!o->nchunks) return OD_OK;
  if (!w || !g || (c->kind != OD_OPTIM_SGD && !state))
    return od_err_set(err, OD_ERR_INVALID_ARG, "optimizer step: the weights, gradient or state array is NULL");
  oc_args a = oc_make_args(c, lr, step, grad_scale);
  void (*kfn)(const oc_chunk *, oc_args, float *, const float *, float *);
  switch (c->kind) {
  case OD_OPTIM_SGD: kfn = oc_step_kernel<OD_OPTIM_SGD>; break;
  case OD_OPTIM_MOMENTUM: kfn = oc_step_kernel<OD_OPTIM_MOMENTUM>; break;
  case OD_OPTIM_ADAM: kfn = oc_step_kernel<OD_OPTIM_ADAM>; break;
  case OD_OPTIM_ADAMW: kfn = oc_step_kernel<OD_OPTIM_ADAMW>; break;
  default: return od_err_set(err, OD_ERR_INVALID_ARG, "optimizer step: unknown optimizer kind %d", (int)c->kind);
  }
  if (o->nchunks > 0x7fffffff)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "optimizer step: %lld chunks exceed one grid", (long long)o->nchunks);
  OD_LAUNCH(kfn, (unsigned)o->nchunks, OD_RED_THREADS, od_cuda_stream(o->dev))(o->chunks, a, w, g, state);
  OD_CUDA_TRY(err, cudaGetLastError());
  return OD_OK;
}


/* One float partial of sum(x^2) per block; n4 = 4-float vectors to take vectorised. */
static __global__ void oc_sumsq_kernel(const float *x, int64_t n, int64_t n4, float *partial) {
  __shared__ float sh[OD_RED_THREADS];
  float acc = 0.f;
  const tc_f4 *x4 = (const tc_f4 *)x;
  OD_GRID_LOOP(i, n4) {
    tc_f4 a = x4[i];
    acc += (a.x * a.x + a.y * a.y) + (a.z * a.z + a.w * a.w);
  }
  for (int64_t i = 4 * n4 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    acc += x[i] * x[i];
  float sum = od_block_sum_f32(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

extern "C" enum od_status od_cuda_sumsq(struct od_device *dev, const float *x, size_t n, double *out,
                                        struct od_err *err) {
  *out = 0.0;
  if (n == 0) return OD_OK;
  struct tc_sum_scratch sc;
  OD_TRY(tc_sum_scratch_get(dev, &sc, err));
  unsigned nb = tc_sum_blocks((int64_t)n);
  int64_t n4 = tc_aligned16(x) ? (int64_t)n / 4 : 0;
  OD_LAUNCH(oc_sumsq_kernel, nb, OD_RED_THREADS, od_cuda_stream(dev))(x, (int64_t)n, n4, sc.partial);
  OD_CUDA_TRY(err, cudaGetLastError());
  return tc_sum_to_host(dev, &sc, nb, out, err);
}

extern "C" enum od_status od_cuda_sumsq_dev(struct od_device *dev, const float *x, size_t n, double *d_out,
                                            struct od_err *err) {
  cudaStream_t st = od_cuda_stream(dev);
  if (n == 0) {
    OD_CUDA_TRY(err, cudaMemsetAsync(d_out, 0, sizeof(double), st));
    return OD_OK;
  }
  struct tc_sum_scratch sc;
  OD_TRY(tc_sum_scratch_get(dev, &sc, err));
  unsigned nb = tc_sum_blocks((int64_t)n);
  int64_t n4 = tc_aligned16(x) ? (int64_t)n / 4 : 0;
  OD_LAUNCH(oc_sumsq_kernel, nb, OD_RED_THREADS, st)(x, (int64_t)n, n4, sc.partial);
  OD_CUDA_TRY(err, cudaGetLastError());
  OD_LAUNCH(tc_sum_finish, 1, OD_RED_THREADS, st)(sc.partial, (int)nb, d_out);
  OD_CUDA_TRY(err, cudaGetLastError());
  return OD_OK;
}

/* ---- the step's scalars ---- */

extern "C" void od_cuda_step_destroy(struct od_cuda_step *s) {
  if (!s) return;
  if (s->copy_pending) (void)cudaEventSynchronize(s->copied);
  if (s->copied) (void)cudaEventDestroy(s->copied);
  if (s->staging) (void)cudaFreeHost(s->staging);
  if (s->readback) (void)cudaFreeHost(s->readback);
  if (s->block) s->dev->ops->free(s->dev, s->block);
  free(s);
}

extern "C" enum od_status od_cuda_step_create(struct od_device *dev, int n_losses, const double *weights,
                                              double clip_norm, struct od_cuda_step **out, struct od_err *err) {
  *out = NULL;
  if (!dev || dev->kind != OD_DEVICE_CUDA || n_losses < 0 || (n_losses && !weights))
    return od_err_set(err, OD_ERR_INVALID_ARG, "step scalars: a CUDA device and n_losses weights are needed");
  struct od_cuda_step *s = (struct od_cuda_step *)calloc(1, sizeof *s);
  if (!s) return od_err_set(err, OD_ERR_OOM, "step scalars: out of memory");
  s->dev = dev;
  s->n = n_losses;
  s->clip_norm = clip_norm;
  size_t off = oc_values_off(), nv = (size_t)n_losses * sizeof(double);
  size_t bytes = off + 2 * nv;
  enum od_status st = dev->ops->alloc(dev, bytes, (void **)&s->block, err);
  cudaError_t e = cudaSuccess;
  if (st == OD_OK && (e = cudaHostAlloc((void **)&s->staging, sizeof(oc_step_host), cudaHostAllocDefault)) != cudaSuccess)
    st = od_err_set(err, OD_ERR_CUDA, "step scalars: cudaHostAlloc: %s", cudaGetErrorString(e));
  if (st == OD_OK && (e = cudaHostAlloc((void **)&s->readback, off + 2 * nv, cudaHostAllocDefault)) != cudaSuccess)
    st = od_err_set(err, OD_ERR_CUDA, "step scalars: cudaHostAlloc: %s", cudaGetErrorString(e));
  if (st == OD_OK && (e = cudaEventCreateWithFlags(&s->copied, cudaEventDisableTiming)) != cudaSuccess)
    st = od_err_set(err, OD_ERR_CUDA, "step scalars: cudaEventCreate: %s", cudaGetErrorString(e));
  if (st == OD_OK) { /* zero block (values of losses not run read as 0), then the weights */
    memset(s->readback, 0, off + 2 * nv);
    if (nv) memcpy(s->readback + off + nv, weights, nv);
    st = dev->ops->to_device(dev, s->block, s->readback, bytes, err);
  }
  if (st == OD_OK) st = dev->ops->sync(dev, err); /* readback is reused as the staging of that copy */
  if (st != OD_OK) {
    (void)cudaGetLastError();
    od_cuda_step_destroy(s);
    return st;
  }
  *out = s;
  return OD_OK;
}

extern "C" double *od_cuda_step_loss_slot(struct od_cuda_step *s, int i) {
  return i >= 0 && i < s->n ? (double *)(s->block + oc_values_off()) + i : NULL;
}

extern "C" enum od_status od_cuda_step_set(struct od_cuda_step *s, const struct od_optim_cfg *c, double lr,
                                           int64_t step, double host_total, struct od_err *err) {
  cudaStream_t st = od_cuda_stream(s->dev);
  if (s->copy_pending) OD_CUDA_TRY(err, cudaEventSynchronize(s->copied)); /* staging is free again */
  s->copy_pending = false;
  s->staging->a = oc_make_args(c, lr, step, 1.0);
  s->staging->host_total = host_total;
  OD_CUDA_TRY(err, cudaMemcpyAsync(s->block, s->staging, sizeof(oc_step_host), cudaMemcpyHostToDevice, st));
  OD_CUDA_TRY(err, cudaEventRecord(s->copied, st));
  s->copy_pending = true;
  return OD_OK;
}

extern "C" enum od_status od_cuda_step_reduce(struct od_cuda_step *s, const float *g, size_t n, struct od_err *err) {
  oc_step_dev *d = (oc_step_dev *)s->block;
  const double *values = (const double *)(s->block + oc_values_off());
  OD_TRY(od_cuda_sumsq_dev(s->dev, g, n, &d->sumsq, err));
  OD_LAUNCH(oc_step_finish, 1, 32, od_cuda_stream(s->dev))(d, values, values + s->n, s->n, s->clip_norm);
  OD_CUDA_TRY(err, cudaGetLastError());
  return OD_OK;
}

extern "C" enum od_status od_cuda_optim_step_dev(struct od_cuda_optim *o, const struct od_optim_cfg *c, float *w,
                                                 const float *g, float *state, const struct od_cuda_step *s,
                                                 struct od_err *err) {
  if (!o || !c || !s) return od_err_set(err, OD_ERR_INVALID_ARG, "optimizer step: no optimizer, configuration or scalars");
  if (!o->nchunks) return OD_OK;
  if (!w || !g || (c->kind != OD_OPTIM_SGD && !state))
    return od_err_set(err, OD_ERR_INVALID_ARG, "optimizer step: the weights, gradient or state array is NULL");
  void (*kfn)(const oc_chunk *, const oc_step_dev *, float *, const float *, float *);
  switch (c->kind) {
  case OD_OPTIM_SGD: kfn = oc_step_dev_kernel<OD_OPTIM_SGD>; break;
  case OD_OPTIM_MOMENTUM: kfn = oc_step_dev_kernel<OD_OPTIM_MOMENTUM>; break;
  case OD_OPTIM_ADAM: kfn = oc_step_dev_kernel<OD_OPTIM_ADAM>; break;
  case OD_OPTIM_ADAMW: kfn = oc_step_dev_kernel<OD_OPTIM_ADAMW>; break;
  default: return od_err_set(err, OD_ERR_INVALID_ARG, "optimizer step: unknown optimizer kind %d", (int)c->kind);
  }
  if (o->nchunks > 0x7fffffff)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "optimizer step: %lld chunks exceed one grid", (long long)o->nchunks);
  OD_LAUNCH(kfn, (unsigned)o->nchunks, OD_RED_THREADS, od_cuda_stream(o->dev))(o->chunks, (const oc_step_dev *)s->block,
                                                                                w, g, state);
  OD_CUDA_TRY(err, cudaGetLastError());
  return OD_OK;
}

extern "C" enum od_status od_cuda_step_read(struct od_cuda_step *s, double *values, struct od_cuda_step_result *r,
                                            struct od_err *err) {
  cudaStream_t st = od_cuda_stream(s->dev);
  size_t bytes = oc_values_off() + (size_t)s->n * sizeof(double);
  OD_CUDA_TRY(err, cudaMemcpyAsync(s->readback, s->block, bytes, cudaMemcpyDeviceToHost, st));
  OD_CUDA_TRY(err, cudaStreamSynchronize(st));
  const oc_step_dev *d = (const oc_step_dev *)s->readback;
  if (values && s->n) memcpy(values, s->readback + oc_values_off(), (size_t)s->n * sizeof(double));
  r->total = d->total;
  r->norm = d->norm;
  r->grad_scale = d->scale;
  r->finite = d->finite != 0;
  return OD_OK;
}
