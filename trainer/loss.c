/* trainer/loss.c: the loss catalogue's table (names, arity, defaults), parameter and shape checks,
 * and the dispatch of od_loss_eval to the family files:
 *   trainer/loss_basic.c    l2, l1, smooth_l1, cosine
 *   trainer/loss_softmax.c  kd, soft_label, cwd
 *   trainer/loss_feature.c  pkd, at, fsp
 *   trainer/loss_yolo.c     yolo_split (+ FM-NMS)
 * The math of each loss is in trainer/loss.h and, with the choices made against the reference
 * implementations, in the header comment of its family file. */
#include "trainer/loss.h"

#include <stdio.h>
#include <string.h>

#include "runtime/dtype.h"
#include "trainer/loss_internal.h"

static const struct {
  const char *name;
  int arity;
  od_loss_eval_fn eval;
} kinds[OD_LOSS_COUNT] = {
    [OD_LOSS_L2] = {"l2", 1, od_loss_eval_basic},
    [OD_LOSS_L1] = {"l1", 1, od_loss_eval_basic},
    [OD_LOSS_SMOOTH_L1] = {"smooth_l1", 1, od_loss_eval_basic},
    [OD_LOSS_KD] = {"kd", 1, od_loss_eval_softmax},
    [OD_LOSS_SOFT_LABEL] = {"soft_label", 1, od_loss_eval_softmax},
    [OD_LOSS_COSINE] = {"cosine", 1, od_loss_eval_basic},
    [OD_LOSS_CWD] = {"cwd", 1, od_loss_eval_softmax},
    [OD_LOSS_PKD] = {"pkd", 1, od_loss_eval_feature},
    [OD_LOSS_AT] = {"at", 1, od_loss_eval_feature},
    [OD_LOSS_FSP] = {"fsp", 2, od_loss_eval_feature},
    [OD_LOSS_YOLO_SPLIT] = {"yolo_split", 1, od_loss_eval_yolo},
};

static bool kind_valid(enum od_loss_kind kind) { return (int)kind >= 0 && kind < OD_LOSS_COUNT; }

void od_loss_params_default(enum od_loss_kind kind, struct od_loss_params *p) {
  *p = (struct od_loss_params){
      .kind = kind,
      .temperature = 1.0,
      .teacher_temperature = 0.0, /* 0: the same as temperature */
      .axis = -1,
      .beta = 1.0,
      .num_classes = 20, /* VOC, the reference experiment (reference/method.md) */
      .num_anchors = 3,
      .fm_nms = false,
      .fm_nms_kernel = 3,
  };
}

const char *od_loss_name(enum od_loss_kind kind) { return kind_valid(kind) ? kinds[kind].name : "unknown"; }

enum od_status od_loss_parse(const char *name, enum od_loss_kind *out, struct od_err *err) {
  for (int k = 0; k < OD_LOSS_COUNT; k++)
    if (name && !strcmp(name, kinds[k].name)) {
      *out = (enum od_loss_kind)k;
      return OD_OK;
    }
  char list[256] = "";
  size_t len = 0;
  for (int k = 0; k < OD_LOSS_COUNT; k++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", kinds[k].name);
  return od_err_set(err, OD_ERR_INVALID_ARG, "unknown loss '%s'; expected one of %s", name ? name : "(null)", list);
}

int od_loss_arity(enum od_loss_kind kind) { return kind_valid(kind) ? kinds[kind].arity : 1; }

/* ---- checks ---------------------------------------------------------------------------------------- */

static enum od_status check_params(const struct od_loss_params *p, struct od_err *err) {
  const char *n = od_loss_name(p->kind);
  switch (p->kind) {
  case OD_LOSS_KD:
  case OD_LOSS_CWD:
  case OD_LOSS_SOFT_LABEL:
    if (!(p->temperature > 0))
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: temperature must be > 0, got %g", n, p->temperature);
    if (p->kind == OD_LOSS_SOFT_LABEL && !(p->teacher_temperature >= 0))
      return od_err_set(err, OD_ERR_INVALID_ARG,
                        "%s: teacher_temperature must be > 0 (0: the same as temperature), got %g", n,
                        p->teacher_temperature);
    break;
  case OD_LOSS_SMOOTH_L1:
    if (!(p->beta >= 0))
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: beta must be >= 0, got %g", n, p->beta);
    break;
  case OD_LOSS_YOLO_SPLIT:
    if (p->num_anchors < 1)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: num_anchors must be >= 1, got %d", n, p->num_anchors);
    if (p->num_classes < 1)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: num_classes must be >= 1, got %d", n, p->num_classes);
    if (p->fm_nms && (p->fm_nms_kernel < 1 || p->fm_nms_kernel % 2 == 0))
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: fm_nms_kernel must be odd and >= 1, got %d", n, p->fm_nms_kernel);
    break;
  default:
    break;
  }
  return OD_OK;
}

/* The two tensors of one fsp side: [N, C1, spatial...] and [N, C2, spatial...], same N and spatial. */
static enum od_status check_fsp_side(const char *side, const struct od_tensor *a, const struct od_tensor *b,
                                     struct od_err *err) {
  char sa[128], sb[128];
  od_shape_str(a->rank, a->dims, sa, sizeof sa);
  od_shape_str(b->rank, b->dims, sb, sizeof sb);
  if (a->rank < 3 || b->rank != a->rank)
    return od_err_set(err, OD_ERR_SHAPE, "fsp: %s tensors %s and %s must both be [N, C, H, W] (rank >= 3, same rank)",
                      side, sa, sb);
  for (int d = 0; d < a->rank; d++)
    if (d != 1 && a->dims[d] != b->dims[d])
      return od_err_set(err, OD_ERR_SHAPE, "fsp: %s tensors %s and %s must have the same N, H, W (only C may differ)",
                        side, sa, sb);
  return OD_OK;
}

static enum od_status check_shapes(const struct od_loss_params *p, const struct od_tensor *const *S,
                                   const struct od_tensor *const *T, struct od_err *err) {
  const char *n = od_loss_name(p->kind);
  char ss[128], ts[128];
  od_shape_str(S[0]->rank, S[0]->dims, ss, sizeof ss);
  od_shape_str(T[0]->rank, T[0]->dims, ts, sizeof ts);
  if (p->kind == OD_LOSS_FSP) {
    OD_TRY(check_fsp_side("student", S[0], S[1], err));
    OD_TRY(check_fsp_side("teacher", T[0], T[1], err));
    if (S[0]->dims[0] != T[0]->dims[0] || S[0]->dims[1] != T[0]->dims[1] || S[1]->dims[1] != T[1]->dims[1]) {
      char s2[128], t2[128];
      od_shape_str(S[1]->rank, S[1]->dims, s2, sizeof s2);
      od_shape_str(T[1]->rank, T[1]->dims, t2, sizeof t2);
      return od_err_set(err, OD_ERR_SHAPE,
                        "fsp: the student's FSP matrix [%lld, %lld, %lld] (from %s, %s) and the teacher's [%lld, %lld, "
                        "%lld] (from %s, %s) differ: N, C1 and C2 must match",
                        (long long)S[0]->dims[0], (long long)S[0]->dims[1], (long long)S[1]->dims[1], ss, s2,
                        (long long)T[0]->dims[0], (long long)T[0]->dims[1], (long long)T[1]->dims[1], ts, t2);
    }
    return OD_OK;
  }
  if (!od_tensor_same_shape(S[0], T[0]))
    return od_err_set(err, OD_ERR_SHAPE, "%s: student %s and teacher %s differ", n, ss, ts);
  int r = S[0]->rank;
  switch (p->kind) {
  case OD_LOSS_KD:
  case OD_LOSS_SOFT_LABEL:
    if (r < 1 || p->axis < -r || p->axis >= r)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: axis %d is out of range for %s (rank %d)", n, p->axis, ss, r);
    break;
  case OD_LOSS_COSINE:
    if (r < 2)
      return od_err_set(err, OD_ERR_SHAPE, "%s: %s must have rank >= 2 (vectors along axis 1: [N, C, ...])", n, ss);
    break;
  case OD_LOSS_PKD:
    if (r < 2)
      return od_err_set(err, OD_ERR_SHAPE, "%s: %s must have rank >= 2 ([N, C, ...], z-score per channel)", n, ss);
    if (od_tensor_numel(S[0]) / S[0]->dims[1] < 2)
      return od_err_set(err, OD_ERR_SHAPE, "%s: %s has fewer than 2 elements per channel (N*H*W); the z-score needs 2",
                        n, ss);
    break;
  case OD_LOSS_CWD:
  case OD_LOSS_AT:
    if (r < 3)
      return od_err_set(err, OD_ERR_SHAPE, "%s: %s must have rank >= 3 ([N, C, H, W])", n, ss);
    break;
  case OD_LOSS_YOLO_SPLIT: {
    int64_t want = (int64_t)p->num_anchors * (5 + (int64_t)p->num_classes);
    if (r != 4)
      return od_err_set(err, OD_ERR_SHAPE, "%s: %s must be 4-D [N, num_anchors*(5+num_classes), H, W]", n, ss);
    if (S[0]->dims[1] != want)
      return od_err_set(err, OD_ERR_SHAPE,
                        "%s: %s has %lld channels; expected num_anchors*(5+num_classes) = %d*(5+%d) = %lld", n, ss,
                        (long long)S[0]->dims[1], p->num_anchors, p->num_classes, (long long)want);
    break;
  }
  default:
    break;
  }
  return OD_OK;
}

enum od_status od_loss_check(const struct od_loss_params *p, const struct od_tensor *const *S,
                             const struct od_tensor *const *T, struct od_err *err) {
  if (!p || !kind_valid(p->kind))
    return od_err_set(err, OD_ERR_INVALID_ARG, "invalid loss kind %d", p ? (int)p->kind : -1);
  OD_TRY(check_params(p, err));
  const char *n = od_loss_name(p->kind);
  int arity = kinds[p->kind].arity;
  if (!S || !T) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: no tensors given", n);
  for (int i = 0; i < arity; i++) {
    const char *which = arity > 1 ? (i ? " 2" : " 1") : "";
    if (!S[i] || !T[i])
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s takes %d tensor%s per side; the %s tensor%s is missing", n, arity,
                        arity > 1 ? "s" : "", S[i] ? "teacher" : "student", which);
    if (S[i]->dtype != OD_DTYPE_FLOAT && S[i]->dtype != OD_DTYPE_DOUBLE)
      return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: the student tensor%s is %s; losses take float or double", n,
                        which, od_dtype_name(S[i]->dtype));
    if (T[i]->dtype != S[i]->dtype)
      return od_err_set(err, OD_ERR_SHAPE, "%s: the student tensor%s is %s and the teacher's is %s; they must match", n,
                        which, od_dtype_name(S[i]->dtype), od_dtype_name(T[i]->dtype));
    if (od_tensor_numel(S[i]) == 0 || od_tensor_numel(T[i]) == 0) {
      char ss[128], ts[128];
      return od_err_set(err, OD_ERR_SHAPE, "%s: empty tensor%s (student %s, teacher %s)", n, which,
                        od_shape_str(S[i]->rank, S[i]->dims, ss, sizeof ss),
                        od_shape_str(T[i]->rank, T[i]->dims, ts, sizeof ts));
    }
  }
  return check_shapes(p, S, T, err);
}

enum od_status od_loss_eval(const struct od_loss_params *p, const struct od_tensor *const *S,
                            const struct od_tensor *const *T, double scale, double *value,
                            struct od_tensor *const *dS, struct od_err *err) {
  OD_TRY(od_loss_check(p, S, T, err));
  if (!value) return od_err_set(err, OD_ERR_INVALID_ARG, "%s: value is NULL", od_loss_name(p->kind));
  int arity = kinds[p->kind].arity;
  struct od_tensor *g[2] = {NULL, NULL};
  for (int i = 0; i < arity; i++) {
    if (!S[i]->data || !T[i]->data)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: tensor without data", od_loss_name(p->kind));
    if (!dS || !dS[i]) continue;
    if (dS[i]->dtype != S[i]->dtype || !od_tensor_same_shape(dS[i], S[i]) || !dS[i]->data) {
      char ss[128], gs[128];
      return od_err_set(err, OD_ERR_SHAPE, "%s: the gradient tensor (%s %s) does not match the student's (%s %s)",
                        od_loss_name(p->kind), od_dtype_name(dS[i]->dtype),
                        od_shape_str(dS[i]->rank, dS[i]->dims, gs, sizeof gs), od_dtype_name(S[i]->dtype),
                        od_shape_str(S[i]->rank, S[i]->dims, ss, sizeof ss));
    }
    g[i] = dS[i];
  }
  return kinds[p->kind].eval(p, S, T, scale, value, g, err);
}
