/* trainer/yolo_loss.c: PaddleDetection's YOLOv3 loss (fluid.layers.yolov3_loss per output,
 * reduce_mean over the batch, summed over outputs), forward and gradient.
 *
 * Source of truth: Paddle's CPU kernel paddle/fluid/operators/detection/yolov3_loss_op.h (the 2.x
 * releases the reference ran on; the same in phi/kernels/cpu/yolo_loss_kernel.cc), with
 * scale_x_y = 1 as in the PaddleDetection YOLOv3 configs. Notation for one output (one scale):
 * map [N, A*(5+C), H, W], input size in_w x in_h pixels (the batch's), anchors (aw, ah) in input
 * pixels, gts (gx, gy, gw, gh) normalised to [0, 1] of the input, with label and mixup score s. BCE(z, p) = max(z, 0) - z p +
 * log(1 + e^-|z|) (sigmoid cross-entropy with logits); sigma the sigmoid. Per image:
 *
 * 1. Valid gts: gw >= 1e-6 and gh >= 1e-6 (Paddle's LessEqualZero is x < 1e-6), taken in order.
 * 2. Ignore region, computed FIRST: every prediction (a, j, i) is decoded as Paddle's
 *    GetYoloBox with img_size 1:  centre ((i + sigma(x)) / W, (j + sigma(y)) / H),
 *    size (e^w aw / in_w, e^h ah / in_h), and its best IoU over the valid gts (centre/size IoU,
 *    starting from 0, strict >) is taken; best > ignore_thresh marks the cell IGNORED (mask -1).
 * 3. Assignment, gts in order: each valid gt picks the best of ALL anchors by the IoU of centred
 *    boxes (aw/in_w, ah/in_h) vs (gw, gh), strict > from 0, so the first of equal anchors wins.
 *    If that anchor is in this output's mask (position m), the gt is positive at anchor m, cell
 *    gi = floor(gx W), gj = floor(gy H), and adds
 *        sc = (2 - gw gh) s
 *        BCE(x, gx W - gi) sc + BCE(y, gy H - gj) sc + |w - log(gw in_w / aw)| sc
 *          + |h - log(gh in_h / ah)| sc
 *        + sum_c BCE(cls_c, c == label ? pos : neg) s
 *    (w, h are the raw logits: L1 in log space, as Paddle), and sets the cell's objectness mask
 *    to s. This OVERWRITES an ignore mark: a positive cell is never ignored.
 * 4. Objectness over every (a, j, i): mask > 1e-5: BCE(obj, 1) * mask (positive, weighted by
 *    the mixup score); else mask > -0.5 (i.e. 0): BCE(obj, 0) (negative); mask -1: nothing.
 *    A positive gt whose score is <= 1e-5 therefore makes its cell a plain negative (Paddle).
 * The loss of the output is the mean over the N images; *value sums the outputs.
 *
 * Two gts on the same (anchor, cell): both box and class terms are added (Paddle's forward sums
 * them); the objectness mask keeps the LATER gt's score (overwrite in gt order). Paddle's
 * backward kernel ASSIGNS (=) the box/class gradient per gt, so there only the later gt's
 * gradient survives, which is not the derivative of its own forward value; we accumulate both
 * (the exact derivative of the value above). That is the only place our gradient differs from
 * Paddle's, and it only happens for duplicate assignments.
 *
 * Other conventions:
 * - Label smoothing (cfg->label_smooth; off in the VOC configs): delta = min(1/C, 1/40),
 *   pos = 1 - delta, neg = delta, as Paddle's 2.x kernel (the first versions of the op used 1/C;
 *   reference/method.md quotes that older form).
 * - L1 gradient: +1 if logit > target, else -1 (Paddle's L1LossGrad, also -1 at equality).
 * - Sizes: Paddle uses input_size = downsample * H for both axes and the grid size H for x too;
 *   we use the batch's in_w / in_h and W for x, H for y. Identical for the square inputs with sides
 *   a multiple of 32 that PaddleDetection trains on; correct for non-square ones.
 * - gi, gj are clamped to [0, W-1], [0, H-1] (a gt centre at exactly 1.0 indexes past the map in
 *   Paddle).
 * - The ignore mask is piecewise constant in X, so it takes no gradient (as in Paddle).
 * - Paddle keeps the anchor IoUs of step 3 in a float; we compare doubles. Only anchors whose
 *   IoUs tie to float precision could be chosen differently.
 * - cfg->weight is not applied here (the caller scales). Images and outputs run as independent
 *   tasks on an optional thread pool, summed in a fixed order (same bits for any thread count).
 */
#include "trainer/yolo_loss.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dtype.h"
#include "trainer/loss_internal.h"

#define GT_MIN_SIDE 1e-6 /* Paddle's LessEqualZero */
#define POS_MIN 1e-5     /* objectness mask above this: positive */

struct yolo_gt {
  double x, y, w, h, score;
  int label;
};

/* "task_loss.outputs[i] ('name')" */
static const char *out_name(const struct od_task_loss_cfg *cfg, int i, char *buf, size_t n) {
  if (cfg->outputs && i < cfg->n_outputs && cfg->outputs[i])
    snprintf(buf, n, "task_loss.outputs[%d] ('%s')", i, cfg->outputs[i]);
  else
    snprintf(buf, n, "task_loss.outputs[%d]", i);
  return buf;
}

enum od_status od_yolov3_check(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                               struct od_err *err) {
  char nm[300], sh[96];
  if (cfg->num_classes < 1)
    return od_err_set(err, OD_ERR_INVALID_ARG, "task_loss.num_classes: must be >= 1, got %d", cfg->num_classes);
  if (cfg->n_anchors < 1 || cfg->n_anchors > OD_MAX_ANCHORS)
    return od_err_set(err, OD_ERR_INVALID_ARG, "task_loss.anchors: expected 1 to %d anchors, got %d", OD_MAX_ANCHORS,
                      cfg->n_anchors);
  if (n_out < 1 || n_out > OD_MAX_ANCHORS)
    return od_err_set(err, OD_ERR_INVALID_ARG, "task_loss: expected 1 to %d head outputs, got %d", OD_MAX_ANCHORS,
                      n_out);
  if (n_out != cfg->n_masks)
    return od_err_set(err, OD_ERR_INVALID_ARG,
                      "task_loss: %d head outputs but %d anchor masks (task_loss.anchor_masks); give one mask per "
                      "output",
                      n_out, cfg->n_masks);
  for (int k = 0; k < cfg->n_anchors; k++)
    if (!(cfg->anchors[k][0] > 0) || !(cfg->anchors[k][1] > 0))
      return od_err_set(err, OD_ERR_INVALID_ARG, "task_loss.anchors[%d]: must be > 0, got [%g, %g]", k,
                        cfg->anchors[k][0], cfg->anchors[k][1]);
  int64_t pc = 5 + (int64_t)cfg->num_classes, n = -1;
  for (int i = 0; i < n_out; i++) {
    const struct od_tensor *x = X[i];
    int len = cfg->mask_len[i], ds = cfg->downsample[i];
    if (len < 1 || len > OD_MAX_ANCHORS)
      return od_err_set(err, OD_ERR_INVALID_ARG, "task_loss.anchor_masks[%d]: expected 1 to %d anchor indices, got %d",
                        i, OD_MAX_ANCHORS, len);
    for (int j = 0; j < len; j++)
      if (cfg->anchor_masks[i][j] < 0 || cfg->anchor_masks[i][j] >= cfg->n_anchors)
        return od_err_set(err, OD_ERR_INVALID_ARG,
                          "task_loss.anchor_masks[%d][%d]: anchor index %d out of range; task_loss.anchors has %d "
                          "entries (0..%d)",
                          i, j, cfg->anchor_masks[i][j], cfg->n_anchors, cfg->n_anchors - 1);
    if (ds < 1)
      return od_err_set(err, OD_ERR_INVALID_ARG, "task_loss.downsample[%d]: must be >= 1, got %d", i, ds);
    if (!x)
      return od_err_set(err, OD_ERR_INVALID_ARG, "%s: no tensor given", out_name(cfg, i, nm, sizeof nm));
    od_shape_str(x->rank, x->dims, sh, sizeof sh);
    if (x->dtype != OD_DTYPE_FLOAT && x->dtype != OD_DTYPE_DOUBLE)
      return od_err_set(err, OD_ERR_UNSUPPORTED, "%s: the yolov3 loss takes float or double maps, got %s",
                        out_name(cfg, i, nm, sizeof nm), od_dtype_name(x->dtype));
    if (x->rank != 4 || x->dims[0] < 1 || x->dims[2] < 1 || x->dims[3] < 1)
      return od_err_set(err, OD_ERR_SHAPE, "%s: expected a head map [N, A*(5+C), H, W], got shape %s",
                        out_name(cfg, i, nm, sizeof nm), sh);
    if (x->dims[1] != len * pc) {
      char hint[200] = "";
      if (x->dims[1] % len == 0 && x->dims[1] / len > 5)
        snprintf(hint, sizeof hint, "; %" PRId64 " channels fit %d anchors with num_classes %" PRId64, x->dims[1], len,
                 x->dims[1] / len - 5);
      else if (x->dims[1] % pc == 0)
        snprintf(hint, sizeof hint, "; %" PRId64 " channels fit %" PRId64 " anchors per cell with num_classes %d",
                 x->dims[1], x->dims[1] / pc, cfg->num_classes);
      return od_err_set(err, OD_ERR_SHAPE,
                        "%s: shape %s has %" PRId64 " channels, expected anchors x (5 + num_classes) = %d x (5 + %d) "
                        "= %" PRId64 " (task_loss.anchor_masks[%d], task_loss.num_classes)%s",
                        out_name(cfg, i, nm, sizeof nm), sh, x->dims[1], len, cfg->num_classes, len * pc, i, hint);
    }
    if (n >= 0 && x->dims[0] != n)
      return od_err_set(err, OD_ERR_SHAPE, "%s: batch %" PRId64 " differs from task_loss.outputs[0]'s %" PRId64,
                        out_name(cfg, i, nm, sizeof nm), x->dims[0], n);
    n = x->dims[0];
  }
  /* strides: an input side S gives a map side ceil(S/ds) or floor(S/ds), so S lies in
   * (ds (H-1), ds (H+1)); these ranges must meet for all outputs, per axis */
  for (int d = 2; d <= 3; d++) {
    int64_t l = 0, h = INT64_MAX;
    for (int i = 0; i < n_out; i++) {
      int64_t ds = cfg->downsample[i], li = ds * (X[i]->dims[d] - 1) + 1, hi_ = ds * (X[i]->dims[d] + 1) - 1;
      l = li > l ? li : l;
      h = hi_ < h ? hi_ : h;
    }
    if (l > h) {
      char buf[600] = "";
      size_t used = 0;
      for (int i = 0; i < n_out && used < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s %" PRId64 " at stride %d", i ? ", " : "",
                                 d == 2 ? "H" : "W", X[i]->dims[d], cfg->downsample[i]);
      return od_err_set(err, OD_ERR_SHAPE,
                        "task_loss: the head outputs do not come from one input size (%s); list task_loss.outputs "
                        "in the order of task_loss.downsample and anchor_masks (PaddleDetection: stride 32 first)",
                        buf);
    }
  }
  return OD_OK;
}

/* IoU of two boxes given by centre and size (Paddle's CalcBoxIoU). */
static double iou_cwh(double x1, double y1, double w1, double h1, double x2, double y2, double w2, double h2) {
  double ow = fmin(x1 + w1 / 2, x2 + w2 / 2) - fmax(x1 - w1 / 2, x2 - w2 / 2);
  double oh = fmin(y1 + h1 / 2, y2 + h2 / 2) - fmax(y1 - h1 / 2, y2 - h2 / 2);
  double inter = (ow < 0 || oh < 0) ? 0.0 : ow * oh;
  return inter / (w1 * h1 + w2 * h2 - inter);
}

/* The loss of image bi for output oi (steps 2-4); adds g * d/dX to dx (if any), which only touches
 * image bi's slice. mask: scratch [A*H*W]. */
static double image_loss(const struct od_task_loss_cfg *cfg, int oi, const struct od_tensor *x,
                         const struct od_batch *b, int64_t bi, const struct yolo_gt *gt, int ng, double g, struct od_tensor *dx, double *mask) {
  const int a_n = cfg->mask_len[oi], nc = cfg->num_classes;
  const int64_t h = x->dims[2], w = x->dims[3], plane = h * w, pc = 5 + (int64_t)nc;
  const double in_w = b->w, in_h = b->h;
  double pos = 1.0, neg = 0.0;
  if (cfg->label_smooth) {
    double delta = fmin(1.0 / nc, 1.0 / 40.0);
    pos = 1.0 - delta;
    neg = delta;
  }
  double dz, loss = 0.0;
  /* 2. ignore region */
  for (int a = 0; a < a_n; a++) {
    const float *anc = cfg->anchors[cfg->anchor_masks[oi][a]];
    const int64_t base = (bi * a_n + a) * pc * plane;
    for (int64_t j = 0; j < h; j++)
      for (int64_t i = 0; i < w; i++) {
        int64_t c = base + j * w + i;
        double px = ((double)i + od_loss_sigmoid(od_loss_x(x, c))) / (double)w;
        double py = ((double)j + od_loss_sigmoid(od_loss_x(x, c + plane))) / (double)h;
        double pw = exp(od_loss_x(x, c + 2 * plane)) * anc[0] / in_w;
        double ph = exp(od_loss_x(x, c + 3 * plane)) * anc[1] / in_h;
        /* only "best IoU > ignore_thresh" matters: stop at the first gt above it; skip gts
         * that do not overlap at all (IoU 0 never exceeds a threshold >= 0) */
        bool ignore = false;
        for (int t = 0; t < ng && !ignore; t++) {
          if (fabs(px - gt[t].x) * 2 >= pw + gt[t].w || fabs(py - gt[t].y) * 2 >= ph + gt[t].h) continue;
          ignore = iou_cwh(px, py, pw, ph, gt[t].x, gt[t].y, gt[t].w, gt[t].h) > cfg->ignore_thresh;
        }
        mask[a * plane + j * w + i] = ignore ? -1.0 : 0.0;
      }
  }
  /* 3. assignment, gts in order */
  for (int t = 0; t < ng; t++) {
    int best_n = 0;
    double best = 0.0;
    for (int k = 0; k < cfg->n_anchors; k++) {
      double iou = iou_cwh(0, 0, cfg->anchors[k][0] / in_w, cfg->anchors[k][1] / in_h, 0, 0, gt[t].w, gt[t].h);
      if (iou > best) {
        best = iou;
        best_n = k;
      }
    }
    int m = -1;
    for (int j = 0; j < a_n && m < 0; j++)
      if (cfg->anchor_masks[oi][j] == best_n) m = j;
    if (m < 0) continue; /* another output's anchor */
    int64_t gi = (int64_t)(gt[t].x * (double)w), gj = (int64_t)(gt[t].y * (double)h);
    gi = gi < 0 ? 0 : gi >= w ? w - 1 : gi;
    gj = gj < 0 ? 0 : gj >= h ? h - 1 : gj;
    const float *anc = cfg->anchors[best_n];
    double tgt[4] = {gt[t].x * (double)w - (double)gi, gt[t].y * (double)h - (double)gj,
                     log(gt[t].w * in_w / anc[0]), log(gt[t].h * in_h / anc[1])};
    double sc = (2.0 - gt[t].w * gt[t].h) * gt[t].score;
    int64_t c = (bi * a_n + m) * pc * plane + gj * w + gi;
    for (int k = 0; k < 2; k++) {
      loss += od_loss_bce_grad(od_loss_x(x, c + k * plane), tgt[k], &dz) * sc;
      if (dx) od_loss_g(dx, c + k * plane, g * sc * dz);
    }
    for (int k = 2; k < 4; k++) {
      double v = od_loss_x(x, c + k * plane);
      loss += fabs(v - tgt[k]) * sc;
      if (dx) od_loss_g(dx, c + k * plane, g * sc * (v > tgt[k] ? 1.0 : -1.0));
    }
    mask[m * plane + gj * w + gi] = gt[t].score;
    for (int k = 0; k < nc; k++) {
      int64_t ck = c + (5 + (int64_t)k) * plane;
      loss += od_loss_bce_grad(od_loss_x(x, ck), k == gt[t].label ? pos : neg, &dz) * gt[t].score;
      if (dx) od_loss_g(dx, ck, g * gt[t].score * dz);
    }
  }
  /* 4. objectness */
  for (int a = 0; a < a_n; a++) {
    const int64_t base = (bi * a_n + a) * pc * plane + 4 * plane;
    for (int64_t p = 0; p < plane; p++) {
      double mk = mask[a * plane + p];
      if (mk > POS_MIN) {
        loss += od_loss_bce_grad(od_loss_x(x, base + p), 1.0, &dz) * mk;
        if (dx) od_loss_g(dx, base + p, g * mk * dz);
      } else if (mk > -0.5) {
        loss += od_loss_bce_grad(od_loss_x(x, base + p), 0.0, &dz);
        if (dx) od_loss_g(dx, base + p, g * dz);
      }
    }
  }
  return loss;
}

/* Every (output, image) pair is a task: the pool splits them, each writes its own loss slot and
 * its own slice of dX, and the slots are summed in a fixed order afterwards, so the result does not
 * depend on the number of threads. */
struct loss_job {
  const struct od_task_loss_cfg *cfg;
  const struct od_tensor *const *X;
  const struct od_batch *b;
  struct od_tensor *const *dX;
  const struct yolo_gt *gts;
  const int *n_valid;
  int64_t n, mask_max;
  double g;
  double *mask;   /* [tasks, mask_max] */
  double *losses; /* [tasks] */
};

static void loss_tasks(void *ctx, int64_t begin, int64_t end) {
  const struct loss_job *j = ctx;
  for (int64_t t = begin; t < end; t++) {
    int oi = (int)(t / j->n);
    int64_t bi = t % j->n;
    j->losses[t] = image_loss(j->cfg, oi, j->X[oi], j->b, bi, j->gts + bi * OD_MAX_GT, j->n_valid[bi], j->g,
                              j->dX ? j->dX[oi] : NULL, j->mask + t * j->mask_max);
  }
}

enum od_status od_yolov3_loss_pool(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                                   const struct od_batch *b, double scale, double *value, struct od_tensor *const *dX,
                                   struct od_pool *pool, struct od_err *err) {
  OD_TRY(od_yolov3_check(cfg, n_out, X, err));
  char nm[300], sh[96];
  const int64_t n = X[0]->dims[0];
  if (!b || !b->gt || !b->n_gt)
    return od_err_set(err, OD_ERR_INVALID_ARG,
                      "task_loss: the batch has no ground-truth boxes (the yolov3 loss needs detection data: "
                      "data.format voc or synthetic)");
  if (b->n != n)
    return od_err_set(err, OD_ERR_SHAPE, "task_loss: the head maps have batch %" PRId64 ", the data batch has %d", n,
                      b->n);
  if (b->h < 1 || b->w < 1)
    return od_err_set(err, OD_ERR_INVALID_ARG, "task_loss: bad input size %dx%d", b->h, b->w);
  for (int i = 0; i < n_out; i++) {
    int64_t ds = cfg->downsample[i];
    if ((int64_t)b->h <= ds * (X[i]->dims[2] - 1) || (int64_t)b->h >= ds * (X[i]->dims[2] + 1) ||
        (int64_t)b->w <= ds * (X[i]->dims[3] - 1) || (int64_t)b->w >= ds * (X[i]->dims[3] + 1))
      return od_err_set(err, OD_ERR_SHAPE,
                        "%s: map %s does not fit input %dx%d at stride %" PRId64 " (task_loss.downsample[%d]); "
                        "are task_loss.outputs in the order of anchor_masks/downsample?",
                        out_name(cfg, i, nm, sizeof nm), od_shape_str(X[i]->rank, X[i]->dims, sh, sizeof sh), b->h,
                        b->w, ds, i);
    if (dX && dX[i] && (dX[i]->dtype != X[i]->dtype || !od_tensor_same_shape(dX[i], X[i])))
      return od_err_set(err, OD_ERR_SHAPE, "%s: gradient tensor must have the map's dtype and shape",
                        out_name(cfg, i, nm, sizeof nm));
  }
  /* valid gts per image (step 1), labels checked */
  struct yolo_gt *gts = malloc((size_t)n * OD_MAX_GT * sizeof *gts);
  int *n_valid = calloc((size_t)n, sizeof *n_valid);
  int64_t mask_max = 0;
  for (int i = 0; i < n_out; i++) {
    int64_t m = cfg->mask_len[i] * X[i]->dims[2] * X[i]->dims[3];
    mask_max = m > mask_max ? m : mask_max;
  }
  const int64_t tasks = n_out * n;
  double *mask = malloc((size_t)(tasks * mask_max) * sizeof *mask);
  double *losses = calloc((size_t)tasks, sizeof *losses);
  if (!gts || !n_valid || !mask || !losses) {
    free(gts);
    free(n_valid);
    free(mask);
    free(losses);
    return od_err_set(err, OD_ERR_OOM, "task_loss: out of memory");
  }
  for (int64_t bi = 0; bi < n; bi++) {
    int cnt = b->n_gt[bi] < OD_MAX_GT ? b->n_gt[bi] : OD_MAX_GT;
    for (int t = 0; t < cnt; t++) {
      const struct od_gt_box *s = &b->gt[bi * OD_MAX_GT + t];
      if (!(s->w >= GT_MIN_SIDE) || !(s->h >= GT_MIN_SIDE)) continue;
      if (s->label < 0 || s->label >= cfg->num_classes) {
        free(gts);
        free(n_valid);
        free(mask);
        free(losses);
        return od_err_set(err, OD_ERR_INVALID_ARG,
                          "task_loss: image %" PRId64 " of the batch, box %d: label %d out of range for "
                          "task_loss.num_classes %d",
                          bi, t, s->label, cfg->num_classes);
      }
      gts[bi * OD_MAX_GT + n_valid[bi]++] =
          (struct yolo_gt){.x = s->x, .y = s->y, .w = s->w, .h = s->h, .score = s->score, .label = s->label};
    }
  }
  struct loss_job job = {.cfg = cfg, .X = X, .b = b, .dX = dX, .gts = gts, .n_valid = n_valid, .n = n,
                         .mask_max = mask_max, .g = scale / (double)n, .mask = mask, .losses = losses};
  od_pool_parallel_for(pool, tasks, 1, loss_tasks, &job);
  double total = 0.0;
  for (int i = 0; i < n_out; i++) {
    double sum = 0.0;
    for (int64_t bi = 0; bi < n; bi++) sum += losses[i * n + bi];
    total += sum / (double)n;
  }
  free(gts);
  free(n_valid);
  free(mask);
  free(losses);
  *value = total;
  return OD_OK;
}

enum od_status od_yolov3_loss(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                              const struct od_batch *b, double scale, double *value, struct od_tensor *const *dX,
                              struct od_err *err) {
  return od_yolov3_loss_pool(cfg, n_out, X, b, scale, value, dX, NULL, err);
}
