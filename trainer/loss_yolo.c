/* trainer/loss_yolo.c: yolo_split, the fine-grained YOLOv3 distillation loss of PaddleDetection's
 * slim/distillation/distill.py (split_distill; reference/method.md 1.4), with optional FM-NMS on the
 * teacher maps (Mehta & Ozturk, "Object detection at 200 Frames Per Second", section 3.2).
 *
 * Maps S, T [N, A*(5+C), H, W] (raw head logits of one scale), PaddleDetection's channel layout: anchor
 * a owns channels a*(5+C) + {0: x, 1: y, 2: w, 3: h, 4: obj, 5..5+C-1: classes}. With s, t the
 * student/teacher logits, sigma the sigmoid, BCE(z, p) = max(z,0) - z p + log(1 + e^-|z|) (stable,
 * Paddle's sigmoid_cross_entropy_with_logits) and M = N*A*H*W cells:
 *
 *   w_obj = sigma(t_obj)           (soft objectness weight; the teacher takes no gradient)
 *   reg   = sum_cells (BCE(s_x, sigma(t_x)) + BCE(s_y, sigma(t_y)) + |s_w - t_w| + |s_h - t_h|) w_obj / M
 *   cls   = sum_{cells,c} BCE(s_c, sigma(t_c)) w_obj / (M C)
 *   obj   = sum_cells BCE(s_obj, 1[t_obj > 0]) / M      (hard target: teacher probability > 0.5)
 *   L     = reg + cls + obj       (one scale; one pair per scale. The reference's global 1000 is the
 *                                  pair's weight, not part of the loss)
 * Gradients: dBCE(z, p)/dz = sigma(z) - p; d|d|/dd = sign(d) (0 at 0).
 *
 * FM-NMS (fm_nms = true, kernel K = fm_nms_kernel, odd, default 3), a fixed mask computed from the
 * teacher maps alone, so it takes no gradient. Per image, every cell-anchor candidate (a, h, w) gets
 *   class(a,h,w) = argmax_c t_c (first maximum on ties)
 *   conf(a,h,w)  = sigma(t_obj) * sigma(max_c t_c)    (the YOLO detection score)
 * and is SUPPRESSED when some other candidate (a', h', w') of the same image and scale with
 * |h' - h| <= K/2, |w' - w| <= K/2 (any anchor a', the cell itself included: anchors of one cell
 * predicting the same class are duplicates too) has the same class and a higher conf, or an equal
 * conf and a smaller index (a'*H + h')*W + w' (so exactly one of equal candidates survives). The test
 * is made against every neighbour, suppressed or not (a parallel local-maximum test, like max-pool
 * NMS, not a greedy sweep). A suppressed candidate gets w_obj = 0 (its reg and cls terms vanish) and
 * objectness target 0 (the student is pushed to not fire there); kept candidates are unchanged.
 * The paper keeps "the candidate with the highest objectness" among same-class candidates of a K x K
 * neighbourhood and zeroes the others' class activations and objectness; we rank by
 * objectness * class probability, which orders same-class candidates by their detection score. The
 * paper does not describe its anchors explicitly; we compare across anchors as said above.
 */
#include <math.h>
#include <stdlib.h>

#include "trainer/loss_internal.h"

enum od_status od_loss_fm_nms_mask(const struct od_tensor *T, int num_anchors, int num_classes, int kernel,
                                   unsigned char *keep, struct od_err *err) {
  int64_t n = T->dims[0], h = T->dims[2], w = T->dims[3], plane = h * w, a_n = num_anchors;
  int64_t pc = 5 + (int64_t)num_classes, r = kernel / 2, cands = a_n * plane;
  double *conf = malloc((size_t)cands * sizeof *conf);
  int *cls = malloc((size_t)cands * sizeof *cls);
  if (!conf || !cls) {
    free(conf);
    free(cls);
    return od_err_set(err, OD_ERR_OOM, "yolo_split: out of memory for FM-NMS");
  }
  for (int64_t b = 0; b < n; b++) {
    /* class and confidence per candidate, indexed (a*H + y)*W + x */
    for (int64_t a = 0; a < a_n; a++)
      for (int64_t i = 0; i < plane; i++) {
        int64_t base = (b * a_n + a) * pc * plane + i;
        int best_c = 0;
        double best = od_loss_x(T, base + 5 * plane);
        for (int c = 1; c < num_classes; c++) {
          double v = od_loss_x(T, base + (5 + c) * plane);
          if (v > best) {
            best = v;
            best_c = c;
          }
        }
        cls[a * plane + i] = best_c;
        conf[a * plane + i] = od_loss_sigmoid(od_loss_x(T, base + 4 * plane)) * od_loss_sigmoid(best);
      }
    unsigned char *kb = keep + b * cands;
    for (int64_t a = 0; a < a_n; a++)
      for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
          int64_t lin = (a * h + y) * w + x;
          int keep_it = 1;
          for (int64_t a2 = 0; keep_it && a2 < a_n; a2++)
            for (int64_t y2 = y - r; keep_it && y2 <= y + r; y2++) {
              if (y2 < 0 || y2 >= h) continue;
              for (int64_t x2 = x - r; x2 <= x + r; x2++) {
                int64_t lin2 = (a2 * h + y2) * w + x2;
                if (x2 < 0 || x2 >= w || lin2 == lin || cls[lin2] != cls[lin]) continue;
                if (conf[lin2] > conf[lin] || (conf[lin2] == conf[lin] && lin2 < lin)) {
                  keep_it = 0;
                  break;
                }
              }
            }
          kb[lin] = (unsigned char)keep_it;
        }
  }
  free(conf);
  free(cls);
  return OD_OK;
}

enum od_status od_loss_eval_yolo(const struct od_loss_params *p, const struct od_tensor *const *S,
                                 const struct od_tensor *const *T, double scale, double *value,
                                 struct od_tensor *const *dS, struct od_err *err) {
  const struct od_tensor *s = S[0], *t = T[0];
  struct od_tensor *g = dS[0];
  int64_t n = s->dims[0], h = s->dims[2], w = s->dims[3], plane = h * w, a_n = p->num_anchors;
  int64_t nc = p->num_classes, pc = 5 + nc;
  unsigned char *keep = NULL;
  if (p->fm_nms) {
    keep = malloc((size_t)(n * a_n * plane));
    if (!keep) return od_err_set(err, OD_ERR_OOM, "yolo_split: out of memory for the FM-NMS mask");
    enum od_status st = od_loss_fm_nms_mask(t, p->num_anchors, p->num_classes, p->fm_nms_kernel, keep, err);
    if (st != OD_OK) {
      free(keep);
      return st;
    }
  }
  double m = (double)(n * a_n * plane), reg = 0.0, cls = 0.0, obj = 0.0;
  double g_cell = scale / m, g_cls = scale / (m * (double)nc);
  for (int64_t b = 0; b < n; b++)
    for (int64_t a = 0; a < a_n; a++)
      for (int64_t i = 0; i < plane; i++) {
        int64_t cell = (b * a_n + a) * plane + i;
        int64_t base = (b * a_n + a) * pc * plane + i; /* channel k at base + k * plane */
        double t_obj = od_loss_x(t, base + 4 * plane);
        bool kept = !keep || keep[cell];
        double wobj = kept ? od_loss_sigmoid(t_obj) : 0.0;
        double target = kept && t_obj > 0 ? 1.0 : 0.0;
        double dz;
        obj += od_loss_bce_grad(od_loss_x(s, base + 4 * plane), target, &dz);
        if (g) od_loss_g(g, base + 4 * plane, g_cell * dz);
        if (wobj == 0.0) continue; /* suppressed by FM-NMS: no reg and cls terms */
        for (int k = 0; k < 2; k++) { /* x, y: BCE against the teacher's sigmoid */
          double pt = od_loss_sigmoid(od_loss_x(t, base + k * plane));
          reg += od_loss_bce_grad(od_loss_x(s, base + k * plane), pt, &dz) * wobj;
          if (g) od_loss_g(g, base + k * plane, g_cell * wobj * dz);
        }
        for (int k = 2; k < 4; k++) { /* w, h: L1 on the raw logits */
          double d = od_loss_x(s, base + k * plane) - od_loss_x(t, base + k * plane);
          reg += fabs(d) * wobj;
          if (g) od_loss_g(g, base + k * plane, g_cell * wobj * od_loss_sign(d));
        }
        for (int64_t c = 0; c < nc; c++) {
          int64_t j = base + (5 + c) * plane;
          double pt = od_loss_sigmoid(od_loss_x(t, j));
          cls += od_loss_bce_grad(od_loss_x(s, j), pt, &dz) * wobj;
          if (g) od_loss_g(g, j, g_cls * wobj * dz);
        }
      }
  free(keep);
  *value = reg / m + cls / (m * (double)nc) + obj / m;
  return OD_OK;
}
