/* trainer/loss_internal.h: helpers shared by the loss files (trainer/loss*.c). Not a public API.
 *
 * The family evaluators below are called by od_loss_eval after od_loss_check has passed, with dS
 * normalised to an array of od_loss_arity(kind) pointers, each NULL (no gradient for that tensor)
 * or a tensor of the student's dtype and shape. They write *value and add scale * dL/dS. */
#ifndef OD_LOSS_INTERNAL_H
#define OD_LOSS_INTERNAL_H

#include <math.h>
#include <stdint.h>

#include "runtime/dtype.h"
#include "trainer/loss.h"

/* Element i of a float or double tensor, as double. */
static inline double od_loss_x(const struct od_tensor *t, int64_t i) {
  return t->dtype == OD_DTYPE_DOUBLE ? ((const double *)t->data)[i] : (double)((const float *)t->data)[i];
}

/* g[i] += v, in g's dtype (float or double). */
static inline void od_loss_g(struct od_tensor *g, int64_t i, double v) {
  if (g->dtype == OD_DTYPE_DOUBLE)
    ((double *)g->data)[i] += v;
  else
    ((float *)g->data)[i] += (float)v;
}

/* The product of dims [from, rank). */
static inline int64_t od_loss_prod(const struct od_tensor *t, int from) {
  int64_t n = 1;
  for (int d = from; d < t->rank; d++) n *= t->dims[d];
  return n;
}

/* 1 / (1 + e^-z) without overflow. */
static inline double od_loss_sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + exp(-z));
  double e = exp(z);
  return e / (1.0 + e);
}

/* Binary cross-entropy with logits, BCE(z, p) = max(z, 0) - z p + log(1 + e^-|z|) (Paddle's
 * sigmoid_cross_entropy_with_logits, stable for any z); *dz = its derivative sigmoid(z) - p. One exp. */
static inline double od_loss_bce_grad(double z, double p, double *dz) {
  double e = exp(-fabs(z));
  *dz = (z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e)) - p;
  return (z > 0 ? z : 0.0) - z * p + log1p(e);
}

/* Subgradient of |d|: sign(d), 0 at 0. */
static inline double od_loss_sign(double d) { return d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0; }

typedef enum od_status (*od_loss_eval_fn)(const struct od_loss_params *p, const struct od_tensor *const *S,
                                          const struct od_tensor *const *T, double scale, double *value,
                                          struct od_tensor *const *dS, struct od_err *err);

/* trainer/loss_basic.c: l2, l1, smooth_l1, cosine */
enum od_status od_loss_eval_basic(const struct od_loss_params *p, const struct od_tensor *const *S,
                                  const struct od_tensor *const *T, double scale, double *value,
                                  struct od_tensor *const *dS, struct od_err *err);
/* trainer/loss_softmax.c: kd, soft_label, cwd */
enum od_status od_loss_eval_softmax(const struct od_loss_params *p, const struct od_tensor *const *S,
                                    const struct od_tensor *const *T, double scale, double *value,
                                    struct od_tensor *const *dS, struct od_err *err);
/* trainer/loss_feature.c: pkd, at, fsp */
enum od_status od_loss_eval_feature(const struct od_loss_params *p, const struct od_tensor *const *S,
                                    const struct od_tensor *const *T, double scale, double *value,
                                    struct od_tensor *const *dS, struct od_err *err);
/* trainer/loss_yolo.c: yolo_split (+ FM-NMS) */
enum od_status od_loss_eval_yolo(const struct od_loss_params *p, const struct od_tensor *const *S,
                                 const struct od_tensor *const *T, double scale, double *value,
                                 struct od_tensor *const *dS, struct od_err *err);

/* FM-NMS keep mask of the teacher maps T [N, A*(5+C), H, W]: keep[(n*A + a)*H*W + h*W + w] is 1 for
 * a kept cell, 0 for a suppressed one (rule in trainer/loss_yolo.c). Exposed for the tests. Fails
 * only for lack of memory. */
enum od_status od_loss_fm_nms_mask(const struct od_tensor *T, int num_anchors, int num_classes, int kernel,
                                   unsigned char *keep, struct od_err *err);

#endif
