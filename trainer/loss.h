/* trainer/loss.h: the distillation loss catalogue. Each loss reads student tensors S and teacher
 * tensors T (float or double, same dtype), returns its value, and ACCUMULATES scale * dL/dS into
 * dS (the teacher takes no gradient). Sums run in double. Math per kind (N = batch):
 *
 *   l2         mean((s - t)^2) over all elements                         (PaddleSlim l2_loss)
 *   l1         mean(|s - t|)
 *   smooth_l1  mean(huber_beta(s - t)): 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta
 *   kd         tau^2 * sum(p_t * (log p_t - log p_s)) / R, p = softmax(x / tau) along axis, R = number of
 *              positions of the other dims (= N for [N, C] logits: PyTorch batchmean; Hinton)
 *   soft_label mean over rows of -sum(softmax(t / tau_t) * log softmax(s / tau_s)) along axis (PaddleSlim, no tau^2)
 *   cosine     mean over positions of 1 - cos(s[n,:,h,w], t[n,:,h,w]) (vectors along axis 1; norms
 *              clamped at 1e-8 as torch's cosine_similarity)
 *   cwd        tau^2 / (N C) * sum_{n,c} KL(softmax(t[n,c,:]/tau) || softmax(s[n,c,:]/tau)) over H*W
 *   pkd        0.5 * mean((z(s) - z(t))^2), z = per-channel z-score over (N, H, W):
 *              (x - mean) / (unbiased std + 1e-6)  (mmrazor PKDLoss)
 *   at         mean over the N*H*W elements of (a(s) - a(t))^2, a(F)[n] = normalize(flatten(mean_c F^2)),
 *              normalize(v) = v / max(|v|_2, 1e-12)  (mmrazor ATLoss, torchdistill ATLoss mode "code")
 *   fsp        mean((G(s1, s2) - G(t1, t2))^2), G(x, y)[n] = x_n y_n^T / (H W)  (two tensors per side)
 *   yolo_split the objectness-weighted fine-grained YOLO loss of PaddleDetection's distill.py
 *              (reference/method.md 1.4), optional FM-NMS on the teacher maps (section 3.2)
 *
 * Shapes must match between the sides (the trainer inserts adapters first). */
#ifndef OD_LOSS_H
#define OD_LOSS_H

#include <stdbool.h>

#include "runtime/status.h"
#include "runtime/tensor.h"

enum od_loss_kind {
  OD_LOSS_L2,
  OD_LOSS_L1,
  OD_LOSS_SMOOTH_L1,
  OD_LOSS_KD,
  OD_LOSS_SOFT_LABEL,
  OD_LOSS_COSINE,
  OD_LOSS_CWD,
  OD_LOSS_PKD,
  OD_LOSS_AT,
  OD_LOSS_FSP,
  OD_LOSS_YOLO_SPLIT,
  OD_LOSS_COUNT
};

struct od_loss_params {
  enum od_loss_kind kind;
  double temperature;          /* kd, cwd, soft_label (student side); default 1 */
  double teacher_temperature;  /* soft_label teacher side; default 0 = the same as temperature */
  int axis;                    /* class/channel axis for kd and soft_label; default -1 (last) */
  double beta;                 /* smooth_l1; default 1 */
  int num_classes;             /* yolo_split: classes C (default 20, VOC); maps are [N, A*(5+C), H, W] */
  int num_anchors;             /* yolo_split: anchors per scale A (default 3) */
  bool fm_nms;                 /* yolo_split: feature-map NMS on the teacher (paper section 3.2) */
  int fm_nms_kernel;           /* yolo_split: neighbourhood size for FM-NMS (default 3) */
};

/* Defaults above for kind. */
void od_loss_params_default(enum od_loss_kind kind, struct od_loss_params *p);

/* Name <-> kind ("l2", "kd", ...). parse returns OD_ERR_INVALID_ARG listing the valid names. */
const char *od_loss_name(enum od_loss_kind kind);
enum od_status od_loss_parse(const char *name, enum od_loss_kind *out, struct od_err *err);

/* How many tensors each side passes (2 for fsp, 1 otherwise). */
int od_loss_arity(enum od_loss_kind kind);

/* Checks dtypes and shapes of the n tensors per side; the message names the shapes. */
enum od_status od_loss_check(const struct od_loss_params *p, const struct od_tensor *const *S,
                             const struct od_tensor *const *T, struct od_err *err);

/* *value = L(S, T); when dS is non-NULL, dS[i] += scale * dL/dS[i] (dS[i] may be NULL to skip). */
enum od_status od_loss_eval(const struct od_loss_params *p, const struct od_tensor *const *S,
                            const struct od_tensor *const *T, double scale, double *value,
                            struct od_tensor *const *dS, struct od_err *err);

#endif
