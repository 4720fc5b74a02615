/* trainer/detect.c: YOLOv3 decoding (Paddle's yolo_box), multiclass NMS (Paddle's multiclass_nms)
 * and the VOC mAP (PaddleDetection's DetectionMAP / the VOC devkit). The API and the decode/NMS
 * formulas are in trainer/detect.h; sources: Paddle paddle/fluid/operators/detection/
 * {yolo_box_op.h, multiclass_nms_op.cc, nms_util.h}, PaddleDetection static/ppdet/utils/map_utils.py,
 * the VOC2012 devkit VOCevaldet.m / VOCap.m (reference/method.md 2, 4.3).
 *
 * NMS details (Paddle): per class, candidates with score > score_threshold are sorted by score,
 * stably (ties keep the input order), cut to nms_top_k; a candidate is kept when its IoU with every
 * box kept so far is <= the threshold (which, with eta < 1, shrinks by eta after each kept box
 * while above 0.5). IoU with normalized = false: 0 when the boxes are apart (one's x1 > other's
 * x2 etc.), else (inter_w + 1)(inter_h + 1) / ((w1 + 1)(h1 + 1) + (w2 + 1)(h2 + 1) - inter), an
 * inverted box having area 0. Then, when more than keep_top_k survive over all classes, the
 * keep_top_k highest scores are kept (stable over the class-ascending, score-descending order).
 *
 * mAP (matching per image, as PaddleDetection's DetectionMAP.update and the devkit):
 * - the image's detections are taken by descending score (stable); each is compared with EVERY gt
 *   of its class (matched or not, difficult or not) and takes the one with the largest IoU (the
 *   first on ties). IoU > iou_thresh: a difficult gt (unless evaluate_difficult) makes the
 *   detection IGNORED (neither TP nor FP, not recorded); otherwise TP if that gt is still
 *   unmatched (it becomes matched), FP if it was matched before (a duplicate). IoU <= thresh: FP.
 *   PaddleDetection processes the detections in the NMS output order, which within a class is
 *   already descending score, so this is the same matching.
 * - IoU: PaddleDetection's jaccard_overlap with is_bbox_normalized false: 0 when the boxes do not
 *   overlap (x1 >= other x2, ...), else areas with +1 pixel (the devkit's convention).
 * - per class: records of all images sorted by descending score (stable: earlier images first
 *   on ties); precision = TP / (TP + FP), recall = TP / n_gt at each rank, n_gt = the class's
 *   gts that count (non-difficult).
 * - 11-point: mean over t = 0, 0.1, ..., 1.0 (t = j / 10, exact) of the largest precision at a
 *   rank with recall >= t (0 if none).
 * - all-point: the devkit's VOCap: recall padded with 0 and 1, precision with 0 and 0, precision
 *   made non-increasing from the right (the envelope), AP = sum of (r[i+1] - r[i]) p[i+1] over the
 *   recall steps.
 * - mAP: mean over the classes with n_gt > 0; a class with gts but no detection has AP 0 and
 *   counts. (PaddleDetection's accumulate() skips classes without detections from the mean; that
 *   only differs for a model that never predicts some class.) */
#include "trainer/detect.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dtype.h"
#include "trainer/data.h"
#include "trainer/yolo_loss.h"

void od_yolo_cands_free(struct od_yolo_cands *c) {
  if (!c) return;
  free(c->boxes);
  free(c->scores);
  memset(c, 0, sizeof *c);
}

static double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + exp(-z));
  double e = exp(z);
  return e / (1.0 + e);
}

static double map_x(const struct od_tensor *t, int64_t i) {
  return t->dtype == OD_DTYPE_DOUBLE ? ((const double *)t->data)[i] : (double)((const float *)t->data)[i];
}

static enum od_status cands_reserve(struct od_yolo_cands *c, int need, int nc, struct od_err *err) {
  if (need <= c->cap && nc == c->num_classes) return OD_OK;
  int cap = need > c->cap ? need : c->cap;
  float *b = realloc(c->boxes, (size_t)cap * 4 * sizeof *b);
  if (!b) return od_err_set(err, OD_ERR_OOM, "yolo decode: out of memory for %d candidates", cap);
  c->boxes = b;
  float *s = realloc(c->scores, (size_t)cap * (size_t)nc * sizeof *s);
  if (!s) return od_err_set(err, OD_ERR_OOM, "yolo decode: out of memory for %d candidates", cap);
  c->scores = s;
  c->cap = cap;
  c->num_classes = nc;
  return OD_OK;
}

enum od_status od_yolo_decode(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                              int image, int in_h, int in_w, int im_h, int im_w, float conf_thresh,
                              struct od_yolo_cands *out, struct od_err *err) {
  OD_TRY(od_yolov3_check(cfg, n_out, X, err));
  if (image < 0 || image >= X[0]->dims[0])
    return od_err_set(err, OD_ERR_INVALID_ARG, "yolo decode: image %d of a batch of %" PRId64, image, X[0]->dims[0]);
  if (in_h < 1 || in_w < 1 || im_h < 1 || im_w < 1)
    return od_err_set(err, OD_ERR_INVALID_ARG, "yolo decode: bad sizes: input %dx%d, image %dx%d", in_w, in_h, im_w,
                      im_h);
  const int nc = cfg->num_classes;
  int64_t total = 0;
  for (int i = 0; i < n_out; i++) total += (int64_t)cfg->mask_len[i] * X[i]->dims[2] * X[i]->dims[3];
  if (total > INT32_MAX / 4) return od_err_set(err, OD_ERR_UNSUPPORTED, "yolo decode: %" PRId64 " cells", total);
  OD_TRY(cands_reserve(out, (int)total, nc, err));
  int n = 0;
  for (int i = 0; i < n_out; i++) {
    const struct od_tensor *x = X[i];
    const int64_t h = x->dims[2], w = x->dims[3], plane = h * w, pc = 5 + (int64_t)nc;
    for (int a = 0; a < cfg->mask_len[i]; a++) {
      const float *anc = cfg->anchors[cfg->anchor_masks[i][a]];
      const int64_t base = ((int64_t)image * cfg->mask_len[i] + a) * pc * plane;
      for (int64_t j = 0; j < h; j++)
        for (int64_t k = 0; k < w; k++) {
          int64_t c = base + j * w + k;
          float conf = (float)sigmoid(map_x(x, c + 4 * plane));
          if (conf < conf_thresh) continue;
          double cx = ((double)k + sigmoid(map_x(x, c))) * im_w / (double)w;
          double cy = ((double)j + sigmoid(map_x(x, c + plane))) * im_h / (double)h;
          double bw = exp(map_x(x, c + 2 * plane)) * anc[0] * im_w / in_w;
          double bh = exp(map_x(x, c + 3 * plane)) * anc[1] * im_h / in_h;
          double x1 = cx - bw / 2, y1 = cy - bh / 2, x2 = cx + bw / 2, y2 = cy + bh / 2;
          float *bx = out->boxes + (size_t)n * 4;
          bx[0] = (float)(x1 > 0 ? x1 : 0);
          bx[1] = (float)(y1 > 0 ? y1 : 0);
          bx[2] = (float)(x2 < im_w - 1 ? x2 : im_w - 1);
          bx[3] = (float)(y2 < im_h - 1 ? y2 : im_h - 1);
          float *sc = out->scores + (size_t)n * nc;
          for (int cl = 0; cl < nc; cl++) sc[cl] = (float)(conf * sigmoid(map_x(x, c + (5 + (int64_t)cl) * plane)));
          n++;
        }
    }
  }
  out->n = n;
  return OD_OK;
}

/* ---- NMS ---- */

void od_nms_cfg_default(struct od_nms_cfg *c) {
  *c = (struct od_nms_cfg){.score_threshold = 0.01f,
                           .nms_top_k = 1000,
                           .nms_threshold = 0.45f,
                           .nms_eta = 1.0f,
                           .keep_top_k = 100,
                           .normalized = false,
                           .background_label = -1};
}

/* Paddle's BBoxArea / JaccardOverlap (nms_util.h) */
static double nms_area(const float *b, bool normalized) {
  if (b[2] < b[0] || b[3] < b[1]) return 0.0;
  double w = (double)b[2] - b[0], h = (double)b[3] - b[1];
  return normalized ? w * h : (w + 1) * (h + 1);
}

static double nms_iou(const float *b1, const float *b2, bool normalized) {
  if (b2[0] > b1[2] || b2[2] < b1[0] || b2[1] > b1[3] || b2[3] < b1[1]) return 0.0;
  double norm = normalized ? 0.0 : 1.0;
  double iw = fmin(b1[2], b2[2]) - fmax(b1[0], b2[0]) + norm;
  double ih = fmin(b1[3], b2[3]) - fmax(b1[1], b2[1]) + norm;
  double inter = iw * ih;
  return inter / (nms_area(b1, normalized) + nms_area(b2, normalized) - inter);
}

struct scored {
  float score;
  int label;
  int idx;
  int64_t seq; /* position before sorting: makes the sort stable */
};

static int cmp_scored_desc(const void *pa, const void *pb) {
  const struct scored *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int cmp_seq(const void *pa, const void *pb) {
  const struct scored *a = pa, *b = pb;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

enum od_status od_multiclass_nms(const struct od_nms_cfg *cfg, const float *boxes, const float *scores, int n,
                                 int num_classes, struct od_det **out, int *n_out, struct od_err *err) {
  if (n < 0 || num_classes < 1)
    return od_err_set(err, OD_ERR_INVALID_ARG, "nms: bad sizes (%d boxes, %d classes)", n, num_classes);
  *out = NULL;
  *n_out = 0;
  if (n == 0) return OD_OK;
  struct scored *cand = malloc((size_t)n * sizeof *cand);
  /* kept: per class, a run in `kept` (class-ascending, score-descending); grows as needed */
  int64_t kept_cap = n;
  struct scored *kept = malloc((size_t)kept_cap * sizeof *kept);
  int *sel = malloc((size_t)n * sizeof *sel);
  if (!cand || !kept || !sel) {
    free(cand);
    free(kept);
    free(sel);
    return od_err_set(err, OD_ERR_OOM, "nms: out of memory for %d boxes x %d classes", n, num_classes);
  }
  int64_t n_kept = 0;
  for (int c = 0; c < num_classes; c++) {
    if (c == cfg->background_label) continue;
    int m = 0;
    for (int k = 0; k < n; k++) {
      float s = scores[(size_t)k * num_classes + c];
      if (s > cfg->score_threshold) cand[m] = (struct scored){.score = s, .label = c, .idx = k, .seq = k}, m++;
    }
    qsort(cand, (size_t)m, sizeof *cand, cmp_scored_desc);
    if (cfg->nms_top_k > -1 && m > cfg->nms_top_k) m = cfg->nms_top_k;
    double thr = cfg->nms_threshold;
    int n_sel = 0;
    for (int q = 0; q < m; q++) {
      const float *bq = boxes + (size_t)cand[q].idx * 4;
      bool keep = true;
      for (int s = 0; s < n_sel && keep; s++) keep = nms_iou(bq, boxes + (size_t)sel[s] * 4, cfg->normalized) <= thr;
      if (keep) {
        if (n_kept == kept_cap) {
          struct scored *k2 = realloc(kept, (size_t)kept_cap * 2 * sizeof *kept);
          if (!k2) {
            free(cand);
            free(kept);
            free(sel);
            return od_err_set(err, OD_ERR_OOM, "nms: out of memory");
          }
          kept = k2;
          kept_cap *= 2;
        }
        sel[n_sel++] = cand[q].idx;
        kept[n_kept] = cand[q];
        kept[n_kept].seq = n_kept;
        n_kept++;
        if (cfg->nms_eta < 1 && thr > 0.5) thr *= cfg->nms_eta;
      }
    }
  }
  free(cand);
  free(sel);
  if (cfg->keep_top_k > -1 && n_kept > cfg->keep_top_k) {
    qsort(kept, (size_t)n_kept, sizeof *kept, cmp_scored_desc);
    n_kept = cfg->keep_top_k;
    /* back to class-ascending order; within a class the sorted (descending score) order */
    for (int64_t q = 0; q < n_kept; q++) kept[q].seq = (int64_t)kept[q].label * n_kept + q;
    qsort(kept, (size_t)n_kept, sizeof *kept, cmp_seq);
  }
  if (n_kept == 0) {
    free(kept);
    return OD_OK;
  }
  struct od_det *d = malloc((size_t)n_kept * sizeof *d);
  if (!d) {
    free(kept);
    return od_err_set(err, OD_ERR_OOM, "nms: out of memory");
  }
  for (int64_t q = 0; q < n_kept; q++) {
    const float *b = boxes + (size_t)kept[q].idx * 4;
    d[q] = (struct od_det){
        .x1 = b[0], .y1 = b[1], .x2 = b[2], .y2 = b[3], .score = kept[q].score, .label = kept[q].label};
  }
  free(kept);
  *out = d;
  *n_out = (int)n_kept;
  return OD_OK;
}

/* ---- mAP ---- */

struct map_rec {
  float score;
  unsigned char tp;
  int64_t seq;
};

struct map_class {
  struct map_rec *r;
  int64_t n, cap;
  int64_t n_gt;
};

struct od_map {
  struct od_map_cfg cfg;
  struct map_class *cls;
  int64_t images, seq;
};

void od_map_cfg_default(int num_classes, struct od_map_cfg *c) {
  *c = (struct od_map_cfg){
      .num_classes = num_classes, .iou_thresh = 0.5, .evaluate_difficult = false, .normalized = false};
}

enum od_status od_map_create(const struct od_map_cfg *cfg, struct od_map **out, struct od_err *err) {
  if (cfg->num_classes < 1)
    return od_err_set(err, OD_ERR_INVALID_ARG, "mAP: num_classes must be >= 1, got %d", cfg->num_classes);
  struct od_map *m = calloc(1, sizeof *m);
  if (m) m->cls = calloc((size_t)cfg->num_classes, sizeof *m->cls);
  if (!m || !m->cls) {
    free(m);
    return od_err_set(err, OD_ERR_OOM, "mAP: out of memory");
  }
  m->cfg = *cfg;
  *out = m;
  return OD_OK;
}

void od_map_destroy(struct od_map *m) {
  if (!m) return;
  for (int c = 0; c < m->cfg.num_classes; c++) free(m->cls[c].r);
  free(m->cls);
  free(m);
}

int64_t od_map_images(const struct od_map *m) { return m->images; }

/* PaddleDetection's jaccard_overlap (map_utils.py) */
static double voc_iou(const struct od_det *p, const struct od_det *g, bool normalized) {
  if (p->x1 >= g->x2 || p->x2 <= g->x1 || p->y1 >= g->y2 || p->y2 <= g->y1) return 0.0;
  double norm = normalized ? 0.0 : 1.0;
  double iw = fmin(p->x2, g->x2) - fmax(p->x1, g->x1) + norm, ih = fmin(p->y2, g->y2) - fmax(p->y1, g->y1) + norm;
  double pa = ((double)p->x2 - p->x1 + norm) * ((double)p->y2 - p->y1 + norm);
  double ga = ((double)g->x2 - g->x1 + norm) * ((double)g->y2 - g->y1 + norm);
  return iw * ih / (pa + ga - iw * ih);
}

enum od_status od_map_add_image(struct od_map *m, const struct od_det *dets, int n_dets, const struct od_det *gts,
                                int n_gts, struct od_err *err) {
  const int nc = m->cfg.num_classes;
  for (int k = 0; k < n_dets; k++)
    if (dets[k].label < 0 || dets[k].label >= nc)
      return od_err_set(err, OD_ERR_INVALID_ARG, "mAP: detection %d has label %d; expected 0..%d", k, dets[k].label,
                        nc - 1);
  for (int k = 0; k < n_gts; k++)
    if (gts[k].label < 0 || gts[k].label >= nc)
      return od_err_set(err, OD_ERR_INVALID_ARG, "mAP: ground-truth box %d has label %d; expected 0..%d", k,
                        gts[k].label, nc - 1);
  /* reserve first, so that a failure leaves the map unchanged */
  for (int c = 0; c < nc; c++) {
    int64_t need = m->cls[c].n;
    for (int k = 0; k < n_dets; k++) need += dets[k].label == c;
    if (need > m->cls[c].cap) {
      int64_t cap = m->cls[c].cap ? m->cls[c].cap : 64;
      while (cap < need) cap *= 2;
      struct map_rec *r = realloc(m->cls[c].r, (size_t)cap * sizeof *r);
      if (!r) return od_err_set(err, OD_ERR_OOM, "mAP: out of memory");
      m->cls[c].r = r;
      m->cls[c].cap = cap;
    }
  }
  struct scored *order = malloc(((size_t)n_dets + 1) * sizeof *order);
  unsigned char *used = calloc((size_t)n_gts + 1, 1);
  if (!order || !used) {
    free(order);
    free(used);
    return od_err_set(err, OD_ERR_OOM, "mAP: out of memory");
  }
  for (int k = 0; k < n_dets; k++)
    order[k] = (struct scored){.score = dets[k].score, .label = dets[k].label, .idx = k, .seq = k};
  qsort(order, (size_t)n_dets, sizeof *order, cmp_scored_desc);
  for (int k = 0; k < n_gts; k++)
    if (m->cfg.evaluate_difficult || !gts[k].difficult) m->cls[gts[k].label].n_gt++;
  for (int q = 0; q < n_dets; q++) {
    const struct od_det *d = &dets[order[q].idx];
    double best = -1.0;
    int best_g = -1;
    for (int k = 0; k < n_gts; k++) {
      if (gts[k].label != d->label) continue;
      double iou = voc_iou(d, &gts[k], m->cfg.normalized);
      if (iou > best) {
        best = iou;
        best_g = k;
      }
    }
    int tp;
    if (best > m->cfg.iou_thresh) {
      if (!m->cfg.evaluate_difficult && gts[best_g].difficult) continue; /* ignored */
      tp = !used[best_g];
      used[best_g] = 1;
    } else {
      tp = 0;
    }
    struct map_class *mc = &m->cls[d->label];
    mc->r[mc->n++] = (struct map_rec){.score = d->score, .tp = (unsigned char)tp, .seq = m->seq++};
  }
  free(order);
  free(used);
  m->images++;
  return OD_OK;
}

static int cmp_rec_desc(const void *pa, const void *pb) {
  const struct map_rec *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

enum od_status od_map_compute(const struct od_map *m, double *map11, double *map_all, struct od_ap *per_class,
                              struct od_err *err) {
  const int nc = m->cfg.num_classes;
  int64_t max_n = 0;
  for (int c = 0; c < nc; c++) max_n = m->cls[c].n > max_n ? m->cls[c].n : max_n;
  struct map_rec *r = malloc(((size_t)max_n + 1) * sizeof *r);
  double *prec = malloc(((size_t)max_n + 2) * sizeof *prec), *rec = malloc(((size_t)max_n + 2) * sizeof *rec);
  if (!r || !prec || !rec) {
    free(r);
    free(prec);
    free(rec);
    return od_err_set(err, OD_ERR_OOM, "mAP: out of memory");
  }
  double sum11 = 0, sum_all = 0;
  int valid = 0;
  for (int c = 0; c < nc; c++) {
    const struct map_class *mc = &m->cls[c];
    struct od_ap ap = {.n_gt = mc->n_gt, .n_det = mc->n, .valid = mc->n_gt > 0};
    int64_t n = mc->n;
    if (n > 0) memcpy(r, mc->r, (size_t)n * sizeof *r);
    qsort(r, (size_t)n, sizeof *r, cmp_rec_desc);
    int64_t tp = 0;
    for (int64_t i = 0; i < n; i++) {
      tp += r[i].tp;
      prec[i + 1] = (double)tp / (double)(i + 1);
      rec[i + 1] = mc->n_gt > 0 ? (double)tp / (double)mc->n_gt : 0.0;
    }
    ap.n_tp = tp;
    if (ap.valid && n > 0) {
      for (int j = 0; j <= 10; j++) {
        double t = j / 10.0, p = 0.0;
        for (int64_t i = 1; i <= n; i++)
          if (rec[i] >= t && prec[i] > p) p = prec[i];
        ap.ap11 += p / 11.0;
      }
      /* envelope: prec[0] = 0 at recall 0, prec[n+1] = 0 at recall 1 */
      prec[0] = 0.0, rec[0] = 0.0, prec[n + 1] = 0.0, rec[n + 1] = 1.0;
      for (int64_t i = n; i >= 0; i--)
        if (prec[i + 1] > prec[i]) prec[i] = prec[i + 1];
      for (int64_t i = 0; i <= n; i++)
        if (rec[i + 1] != rec[i]) ap.ap_all += (rec[i + 1] - rec[i]) * prec[i + 1];
    }
    if (ap.valid) {
      sum11 += ap.ap11;
      sum_all += ap.ap_all;
      valid++;
    }
    if (per_class) per_class[c] = ap;
  }
  free(r);
  free(prec);
  free(rec);
  *map11 = valid ? sum11 / valid : 0.0;
  *map_all = valid ? sum_all / valid : 0.0;
  return OD_OK;
}

/* ---- evaluation of a batch ---- */

enum od_status od_detect_eval_batch(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                                    int in_h, int in_w, const struct od_eval_image *info, int n,
                                    const struct od_nms_cfg *nms, float conf_thresh, struct od_map *m,
                                    struct od_yolo_cands *scratch, od_dets_fn on_dets, void *ctx,
                                    struct od_err *err) {
  for (int k = 0; k < n; k++) {
    const struct od_eval_image *im = &info[k];
    OD_TRY(od_yolo_decode(cfg, n_out, X, k, in_h, in_w, im->height, im->width, conf_thresh, scratch, err));
    struct od_det *dets = NULL;
    int n_dets = 0;
    OD_TRY(od_multiclass_nms(nms, scratch->boxes, scratch->scores, scratch->n, cfg->num_classes, &dets, &n_dets,
                             err));
    struct od_det *gts = malloc(((size_t)im->n_gt + 1) * sizeof *gts);
    if (!gts) {
      free(dets);
      return od_err_set(err, OD_ERR_OOM, "eval: out of memory");
    }
    for (int g = 0; g < im->n_gt; g++)
      gts[g] = (struct od_det){.x1 = im->gt[g].x1,
                               .y1 = im->gt[g].y1,
                               .x2 = im->gt[g].x2,
                               .y2 = im->gt[g].y2,
                               .label = im->gt[g].label,
                               .difficult = im->gt[g].difficult};
    if (on_dets) on_dets(ctx, im, dets, n_dets);
    enum od_status st = od_map_add_image(m, dets, n_dets, gts, im->n_gt, err);
    free(gts);
    free(dets);
    if (st != OD_OK) {
      od_err_prefix(err, "%s", im->path ? im->path : "eval image");
      return st;
    }
  }
  return OD_OK;
}
