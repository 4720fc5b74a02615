/* tests/test_yolo_loss.c: PaddleDetection's YOLOv3 loss (trainer/yolo_loss.h).
 *
 *  1. hand cases: one image, one 2x2 map, arithmetic written out in the comments (positive cell,
 *     an ignored cell, negatives; mixup score; label smoothing; a gt whose best anchor belongs to
 *     another output; two gts on the same anchor and cell) plus a few gradient entries by hand.
 *  2. tests/gen_yolo_loss_refs.py: an independent numpy version on a 3-output case with the
 *     anchors/masks/strides of DESIGN.md (tiny 128x128 input), several gts incl. an invalid one,
 *     a duplicate cell and mixup scores < 1, planted predictions that fall in the ignore region:
 *     value and gradient checksums, in double and in float.
 *  3. gradient: the same case, every element against central differences (double).
 *  4. accumulate / scale / NULL gradients, a thread pool (bit-identical), and the error messages of od_yolov3_check and
 *     od_yolov3_loss.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dtype.h"
#include "runtime/pool.h"
#include "runtime/tensor.h"
#include "trainer/yolo_loss.h"

/* ---- helpers --------------------------------------------------------------------------------------- */

static struct od_tensor make(int dtype, int64_t n, int64_t c, int64_t h, int64_t w) {
  struct od_tensor t = {.dtype = dtype, .rank = 4, .dims = {n, c, h, w}};
  t.data = calloc((size_t)od_tensor_numel(&t), od_dtype_size(dtype));
  ck_assert_ptr_nonnull(t.data);
  return t;
}

static double get(const struct od_tensor *t, int64_t i) { return od_tensor_get_f64(t, i); }

static void set(struct od_tensor *t, int64_t i, double v) { od_tensor_set_f64(t, i, v); }

/* element (n, ch, j, i) */
static int64_t at(const struct od_tensor *t, int64_t n, int64_t ch, int64_t j, int64_t i) {
  return ((n * t->dims[1] + ch) * t->dims[2] + j) * t->dims[3] + i;
}

struct batch_buf {
  struct od_batch b;
  int n_gt[4];
  struct od_gt_box gt[4 * OD_MAX_GT];
};

static void batch_init(struct batch_buf *bb, int n, int h, int w) {
  memset(bb, 0, sizeof *bb);
  bb->b = (struct od_batch){.n = n, .c = 3, .h = h, .w = w, .images = NULL, .n_gt = bb->n_gt, .gt = bb->gt};
}

static void add_gt(struct batch_buf *bb, int n, float x, float y, float w, float h, int label, float score) {
  bb->gt[n * OD_MAX_GT + bb->n_gt[n]++] =
      (struct od_gt_box){.x = x, .y = y, .w = w, .h = h, .label = label, .score = score, .difficult = 0};
}

static double loss_of(const struct od_task_loss_cfg *cfg, int n_out, struct od_tensor *X, const struct od_batch *b,
                      double scale, struct od_tensor *dX) {
  const struct od_tensor *Xp[4];
  struct od_tensor *dXp[4];
  for (int i = 0; i < n_out; i++) {
    Xp[i] = &X[i];
    dXp[i] = dX ? &dX[i] : NULL;
  }
  struct od_err err;
  double v = NAN;
  enum od_status st = od_yolov3_loss(cfg, n_out, Xp, b, scale, &v, dX ? dXp : NULL, &err);
  ck_assert_msg(st == OD_OK, "%s", err.msg);
  return v;
}

#define LN2 0.69314718055994530942
static double softplus(double z) { return log1p(exp(z)); } /* BCE(-z, 0) = BCE(z, 1) = softplus(-z) */

/* ---- 1. hand cases ---------------------------------------------------------------------------------
 *
 * Input 64x64, one output at stride 32 (map 2x2), C = 2, two anchors in the mask:
 *   anchor 0 = 32x16 px -> 0.5 x 0.25 of the input, anchor 1 = 32x32 px -> 0.5 x 0.5.
 * One gt: centre (0.75, 0.25), size 0.5 x 0.25 (32x16 px), label 1.
 *   Anchor choice (centred IoU): anchor 0 IoU 1, anchor 1 IoU 0.125/0.25 = 0.5 -> anchor 0 (mask pos 0).
 *   Cell gi = floor(0.75*2) = 1, gj = floor(0.25*2) = 0.
 *   Targets tx = 1.5 - 1 = 0.5, ty = 0.5 - 0 = 0.5, tw = log(0.5*64/32) = 0, th = log(0.25*64/16) = 0.
 *   Box scale (2 - 0.5*0.25) * score = 1.875 * score.
 * Map logits: all 0, except at anchor 0, cell (1, 0): w = 0.5, h = -0.25, obj = 1, cls1 = 2.
 *   Box terms: BCE(0, 0.5) = ln 2 twice (BCE(0, p) = ln 2 for any p), |0.5 - 0| = 0.5, |-0.25 - 0| = 0.25
 *     -> 1.875 s (2 ln 2 + 0.75).
 *   Classes: BCE(0, 0) = ln 2 for class 0, BCE(2, 1) = log(1 + e^-2) for class 1 -> s (ln 2 + log(1+e^-2)).
 *   Ignore region: anchor 1 at cell (1, 0) decodes (all logits 0) to centre (0.75, 0.25), size 0.5 x 0.5:
 *     IoU with the gt 0.125 / 0.25 = 0.5 > ignore_thresh 0.4 -> ignored. Every other anchor-1 cell and
 *     every other anchor-0 cell has IoU 0 (boxes only touch or are apart). The positive cell itself is
 *     positive whatever its IoU.
 *   Objectness: positive BCE(1, 1) s = log(1 + e^-1) s; 8 cells - 1 positive - 1 ignored = 6 negatives
 *     BCE(0, 0) = ln 2 each.
 *   Total (N = 1):  1.875 s (2 ln 2 + 0.75) + s (ln 2 + log(1+e^-2)) + s log(1+e^-1) + 6 ln 2.
 *     s = 1   -> 4.005552 + 0.820075 + 0.313262 + 4.158883 = 9.297772...
 * Gradients (scale 1): dx = 1.875 s (sigma(0) - 0.5) = 0, dw = 1.875 s (+1, 0.5 > 0), dh = -1.875 s,
 *   dcls1 = s (sigma(2) - 1), dcls0 = s (0.5 - 0), dobj(pos) = s (sigma(1) - 1), dobj(ignored) = 0,
 *   dobj(negative) = sigma(0) = 0.5. */
static void hand_cfg(struct od_task_loss_cfg *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->enabled = true;
  cfg->n_anchors = 2;
  cfg->anchors[0][0] = 32, cfg->anchors[0][1] = 16;
  cfg->anchors[1][0] = 32, cfg->anchors[1][1] = 32;
  cfg->n_masks = 1;
  cfg->mask_len[0] = 2;
  cfg->anchor_masks[0][0] = 0, cfg->anchor_masks[0][1] = 1;
  cfg->num_classes = 2;
  cfg->ignore_thresh = 0.4;
  cfg->downsample[0] = 32;
  cfg->weight = 1;
}

/* channel k of anchor a: a*7 + k */
static struct od_tensor hand_map(int dtype) {
  struct od_tensor x = make(dtype, 1, 14, 2, 2);
  set(&x, at(&x, 0, 2, 0, 1), 0.5);
  set(&x, at(&x, 0, 3, 0, 1), -0.25);
  set(&x, at(&x, 0, 4, 0, 1), 1.0);
  set(&x, at(&x, 0, 6, 0, 1), 2.0);
  return x;
}

START_TEST(test_hand_single_gt) {
  struct od_task_loss_cfg cfg;
  hand_cfg(&cfg);
  for (int dt = 0; dt < 2; dt++) {
    int dtype = dt ? OD_DTYPE_FLOAT : OD_DTYPE_DOUBLE;
    double tol = dt ? 1e-5 : 1e-12;
    const float scores[2] = {1.0f, 0.6f};
    for (int k = 0; k < 2; k++) {
      double s = scores[k];
      struct batch_buf bb;
      batch_init(&bb, 1, 64, 64);
      add_gt(&bb, 0, 0.75f, 0.25f, 0.5f, 0.25f, 1, scores[k]);
      struct od_tensor x = hand_map(dtype), dx = make(dtype, 1, 14, 2, 2);
      double want = 1.875 * s * (2 * LN2 + 0.75) + s * (LN2 + softplus(-2)) + s * softplus(-1) + 6 * LN2;
      if (k == 0) ck_assert_double_eq_tol(want, 9.297772, 1e-6); /* the sum in the comment above */
      double v = loss_of(&cfg, 1, &x, &bb.b, 1.0, &dx);
      ck_assert_msg(fabs(v - want) <= tol * fabs(want), "score %g: got %.12g, want %.12g", s, v, want);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 0, 0, 1)), 0.0, tol);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 1, 0, 1)), 0.0, tol);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 2, 0, 1)), 1.875 * s, tol);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 3, 0, 1)), -1.875 * s, tol);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 4, 0, 1)), s * (1 / (1 + exp(-1.0)) - 1), tol);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 5, 0, 1)), s * 0.5, tol);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 6, 0, 1)), s * (1 / (1 + exp(-2.0)) - 1), tol);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 7 + 4, 0, 1)), 0.0, tol); /* ignored: anchor 1, cell (1,0) */
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 4, 1, 1)), 0.5, tol);     /* negatives */
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 7 + 4, 0, 0)), 0.5, tol);
      /* non-positive cells get no box/class gradient */
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 2, 1, 1)), 0.0, tol);
      ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 7 + 5, 0, 1)), 0.0, tol);
      free(x.data);
      free(dx.data);
    }
  }
}
END_TEST

/* Label smoothing (same case, s = 1): delta = min(1/C, 1/40) = 1/40 (Paddle >= 1.6), targets
 * class 1 -> 0.975, class 0 -> 0.025:
 *   BCE(2, 0.975) = 2 - 2*0.975 + log(1 + e^-2) = 0.05 + log(1 + e^-2), BCE(0, 0.025) = ln 2,
 * so the loss grows by exactly 0.05; dcls1 = sigma(2) - 0.975, dcls0 = 0.5 - 0.025. */
START_TEST(test_hand_label_smooth) {
  struct od_task_loss_cfg cfg;
  hand_cfg(&cfg);
  cfg.label_smooth = true;
  struct batch_buf bb;
  batch_init(&bb, 1, 64, 64);
  add_gt(&bb, 0, 0.75f, 0.25f, 0.5f, 0.25f, 1, 1.0f);
  struct od_tensor x = hand_map(OD_DTYPE_DOUBLE), dx = make(OD_DTYPE_DOUBLE, 1, 14, 2, 2);
  double want = 1.875 * (2 * LN2 + 0.75) + (LN2 + 0.05 + softplus(-2)) + softplus(-1) + 6 * LN2;
  ck_assert_double_eq_tol(loss_of(&cfg, 1, &x, &bb.b, 1.0, &dx), want, 1e-12);
  ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 6, 0, 1)), 1 / (1 + exp(-2.0)) - 0.975, 1e-12);
  ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 5, 0, 1)), 0.5 - 0.025, 1e-12);
  free(x.data);
  free(dx.data);
}
END_TEST

/* The gt's best anchor belongs to another output: anchors {0: 32x32, 1: 64x64, 2: 32x16}, mask
 * {0, 1}. Anchor 2 fits the gt exactly (IoU 1) -> not in this mask: no box, class or positive term.
 * Ignore region with the same map: anchor-position 0 (32x32) at cell (1, 0) decodes to size
 * e^0.5*0.5 x e^-0.25*0.5 = 0.8244 x 0.3894: IoU = 0.125 / (0.3210 + 0.125 - 0.125) = 0.389 < 0.4, not
 * ignored; position 1 (64x64, logits 0) size 1 x 1: IoU 0.125. Every cell is a negative:
 *   7 ln 2 + BCE(1, 0) = 7 ln 2 + 1 + log(1 + e^-1). */
START_TEST(test_hand_other_output) {
  struct od_task_loss_cfg cfg;
  hand_cfg(&cfg);
  cfg.n_anchors = 3;
  cfg.anchors[0][0] = 32, cfg.anchors[0][1] = 32;
  cfg.anchors[1][0] = 64, cfg.anchors[1][1] = 64;
  cfg.anchors[2][0] = 32, cfg.anchors[2][1] = 16;
  struct batch_buf bb;
  batch_init(&bb, 1, 64, 64);
  add_gt(&bb, 0, 0.75f, 0.25f, 0.5f, 0.25f, 1, 1.0f);
  struct od_tensor x = hand_map(OD_DTYPE_DOUBLE);
  ck_assert_double_eq_tol(loss_of(&cfg, 1, &x, &bb.b, 1.0, NULL), 7 * LN2 + 1 + softplus(-1), 1e-12);
  free(x.data);
}
END_TEST

/* Two gts with the same box (same anchor, same cell), scores 1 and 0.5, then an invalid gt (w = 0)
 * and one more invalid (h below 1e-6): box and class terms of both valid gts add up, the objectness
 * mask keeps the later score 0.5:
 *   (1.875 + 0.9375)(2 ln 2 + 0.75) + 1.5 (ln 2 + log(1+e^-2)) + 0.5 log(1+e^-1) + 6 ln 2.
 * Gradient of w there: (1.875 + 0.9375) * 1 (both gts, accumulated). */
START_TEST(test_hand_duplicate) {
  struct od_task_loss_cfg cfg;
  hand_cfg(&cfg);
  struct batch_buf bb;
  batch_init(&bb, 1, 64, 64);
  add_gt(&bb, 0, 0.75f, 0.25f, 0.5f, 0.25f, 1, 1.0f);
  add_gt(&bb, 0, 0.75f, 0.25f, 0.5f, 0.25f, 1, 0.5f);
  add_gt(&bb, 0, 0.25f, 0.25f, 0.0f, 0.25f, 0, 1.0f);
  add_gt(&bb, 0, 0.25f, 0.75f, 0.5f, 5e-7f, 0, 1.0f);
  struct od_tensor x = hand_map(OD_DTYPE_DOUBLE), dx = make(OD_DTYPE_DOUBLE, 1, 14, 2, 2);
  double want = 2.8125 * (2 * LN2 + 0.75) + 1.5 * (LN2 + softplus(-2)) + 0.5 * softplus(-1) + 6 * LN2;
  ck_assert_double_eq_tol(loss_of(&cfg, 1, &x, &bb.b, 1.0, &dx), want, 1e-12);
  ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 2, 0, 1)), 2.8125, 1e-12);
  ck_assert_double_eq_tol(get(&dx, at(&dx, 0, 4, 0, 1)), 0.5 * (1 / (1 + exp(-1.0)) - 1), 1e-12);
  free(x.data);
  free(dx.data);
}
END_TEST

/* Batch mean: the same image twice gives the same loss; with a second, empty image the loss is
 * (L1 + L_empty) / 2 where the empty image is 8 negatives: L_empty = 7 ln 2 + BCE(1, 0). */
START_TEST(test_hand_batch_mean) {
  struct od_task_loss_cfg cfg;
  hand_cfg(&cfg);
  struct batch_buf bb;
  batch_init(&bb, 2, 64, 64);
  add_gt(&bb, 0, 0.75f, 0.25f, 0.5f, 0.25f, 1, 1.0f);
  struct od_tensor x = make(OD_DTYPE_DOUBLE, 2, 14, 2, 2), one = hand_map(OD_DTYPE_DOUBLE);
  memcpy(x.data, one.data, od_tensor_nbytes(&one));
  memcpy((double *)x.data + od_tensor_numel(&one), one.data, od_tensor_nbytes(&one));
  double l1 = 1.875 * (2 * LN2 + 0.75) + (LN2 + softplus(-2)) + softplus(-1) + 6 * LN2;
  double l_empty = 7 * LN2 + 1 + softplus(-1);
  ck_assert_double_eq_tol(loss_of(&cfg, 1, &x, &bb.b, 1.0, NULL), (l1 + l_empty) / 2, 1e-12);
  add_gt(&bb, 1, 0.75f, 0.25f, 0.5f, 0.25f, 1, 1.0f);
  ck_assert_double_eq_tol(loss_of(&cfg, 1, &x, &bb.b, 1.0, NULL), l1, 1e-12);
  free(x.data);
  free(one.data);
}
END_TEST

/* ---- 2./3. the generated case --------------------------------------------------------------------- */

/* clang-format off */
/* BEGIN GENERATED by tests/gen_yolo_loss_refs.py (numpy, written independently of trainer/yolo_loss.c) */
/* plain: ignored/positive cells per output [(12, 1), (12, 3), (12, 3)]; smallest margin to the ignore threshold or an L1 kink 0.000996 */
static const double ref_value_plain = 875.7314474725986;
static const double ref_grad_plain[3][3] = { /* per output: sum, sum * ((k % 7) - 3), sum |g| */
    {19.38162238075028, 1.4453058356857797, 22.1962360465467},
    {94.60571174288035, -3.155162792424588, 101.49060526565427},
    {386.9995673180165, 3.718423122213318, 396.1200446030799},
};
/* smooth: ignored/positive cells per output [(12, 1), (12, 3), (12, 3)]; smallest margin to the ignore threshold or an L1 kink 0.000996 */
static const double ref_value_smooth = 875.7803525187;
static const double ref_grad_smooth[3][3] = { /* per output: sum, sum * ((k % 7) - 3), sum |g| */
    {19.369122380750284, 1.4328058356857796, 22.1587360465467},
    {94.57321174258233, -3.1101627936166816, 101.39310526476018},
    {386.96644231794204, 3.6984231219152943, 396.03816960255836},
};
/* END GENERATED */
/* clang-format on */

/* The case of gen_yolo_loss_refs.py, rebuilt draw for draw. */
#define G_C 3
#define G_N 2
#define G_IN 128
static const float g_anchors[9][2] = {{10, 13},  {16, 30},  {33, 23},   {30, 61},  {62, 45},
                                      {59, 119}, {116, 90}, {156, 198}, {373, 326}};
static const int g_masks[3][3] = {{6, 7, 8}, {3, 4, 5}, {0, 1, 2}};
static const int g_ds[3] = {32, 16, 8};
struct g_gt {
  float x, y, w, h;
  int label;
  float score;
};
static const struct g_gt g_gts[G_N][5] = {
    {{0.50f, 0.50f, 0.90f, 0.80f, 2, 1.0f},
     {0.30f, 0.40f, 0.40f, 0.45f, 0, 0.6f},
     {0.70f, 0.20f, 0.10f, 0.12f, 1, 1.0f},
     {0.72f, 0.23f, 0.11f, 0.10f, 2, 0.35f},
     {0.15f, 0.85f, 0.25f, 0.50f, 1, 1.0f}},
    {{0.40f, 0.60f, 0.30f, 0.20f, 0, 0.8f},
     {0.90f, 0.10f, 0.00f, 0.30f, 1, 1.0f},
     {0.62f, 0.33f, 0.55f, 0.95f, 2, 1.0f},
     {0.05f, 0.05f, 0.06f, 0.08f, 1, 0.5f}},
};
static const int g_n_gts[G_N] = {5, 4};

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s, double amp) {
  return amp * (2.0 * (double)(rng_next(s) >> 11) / 9007199254740992.0 - 1.0);
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static void gen_cfg(struct od_task_loss_cfg *cfg, bool smooth) {
  memset(cfg, 0, sizeof *cfg);
  cfg->enabled = true;
  cfg->n_anchors = 9;
  memcpy(cfg->anchors, g_anchors, sizeof g_anchors);
  cfg->n_masks = 3;
  for (int i = 0; i < 3; i++) {
    cfg->mask_len[i] = 3;
    for (int j = 0; j < 3; j++) cfg->anchor_masks[i][j] = g_masks[i][j];
    cfg->downsample[i] = g_ds[i];
  }
  cfg->num_classes = G_C;
  cfg->ignore_thresh = 0.7;
  cfg->label_smooth = smooth;
  cfg->weight = 1;
}

static void gen_case(int dtype, struct od_tensor X[3], struct batch_buf *bb) {
  uint64_t s = 0x5EED0123;
  double *maps[3];
  for (int i = 0; i < 3; i++) {
    int64_t hw = G_IN / g_ds[i], c = 3 * (5 + G_C);
    X[i] = make(dtype, G_N, c, hw, hw);
    int64_t n = od_tensor_numel(&X[i]);
    maps[i] = malloc((size_t)n * sizeof(double));
    for (int64_t k = 0; k < n; k++) maps[i][k] = rng_uniform(&s, 2.0);
  }
  batch_init(bb, G_N, G_IN, G_IN);
  for (int n = 0; n < G_N; n++)
    for (int t = 0; t < g_n_gts[n]; t++) {
      const struct g_gt *g = &g_gts[n][t];
      add_gt(bb, n, g->x, g->y, g->w, g->h, g->label, g->score);
      if (g->w < 1e-6 || g->h < 1e-6) continue;
      for (int i = 0; i < 3; i++) {
        int64_t hw = G_IN / g_ds[i];
        for (int a = 0; a < 3; a++) {
          if ((t + a + i) % 2) continue;
          int64_t gi = (int64_t)((double)g->x * hw), gj = (int64_t)((double)g->y * hw);
          gi = gi > hw - 1 ? hw - 1 : gi;
          gj = gj > hw - 1 ? hw - 1 : gj;
          double fx = clampd((double)g->x * hw - gi, 0.05, 0.95), fy = clampd((double)g->y * hw - gj, 0.05, 0.95);
          const float *anc = g_anchors[g_masks[i][a]];
          double v[4] = {log(fx / (1 - fx)), log(fy / (1 - fy)), log((double)g->w * G_IN / anc[0]),
                         log((double)g->h * G_IN / anc[1])};
          for (int ch = 0; ch < 4; ch++) {
            double u = rng_uniform(&s, 1.0);
            double d = (0.02 + 0.13 * fabs(u)) * (u >= 0 ? 1.0 : -1.0);
            maps[i][at(&X[i], n, a * (5 + G_C) + ch, gj, gi)] = v[ch] + d;
          }
        }
      }
    }
  for (int i = 0; i < 3; i++) {
    for (int64_t k = 0; k < od_tensor_numel(&X[i]); k++) set(&X[i], k, maps[i][k]);
    free(maps[i]);
  }
}

static void free3(struct od_tensor X[3]) {
  for (int i = 0; i < 3; i++) free(X[i].data);
}

static void grad_sums(const struct od_tensor *g, double out[3]) {
  out[0] = out[1] = out[2] = 0;
  for (int64_t k = 0; k < od_tensor_numel(g); k++) {
    double v = get(g, k);
    out[0] += v;
    out[1] += v * (double)((k % 7) - 3);
    out[2] += fabs(v);
  }
}

static void check_ref(int dtype, bool smooth) {
  struct od_task_loss_cfg cfg;
  gen_cfg(&cfg, smooth);
  struct od_tensor X[3], dX[3];
  struct batch_buf bb;
  gen_case(dtype, X, &bb);
  for (int i = 0; i < 3; i++) dX[i] = make(dtype, X[i].dims[0], X[i].dims[1], X[i].dims[2], X[i].dims[3]);
  double v = loss_of(&cfg, 3, X, &bb.b, 1.0, dX);
  double want = smooth ? ref_value_smooth : ref_value_plain;
  /* float: the maps themselves are rounded to float, so compare loosely */
  double rtol = dtype == OD_DTYPE_DOUBLE ? 1e-11 : 2e-5;
  ck_assert_msg(fabs(v - want) <= rtol * fabs(want), "%s%s: value %.15g, numpy %.15g",
                dtype == OD_DTYPE_DOUBLE ? "double" : "float", smooth ? " smooth" : "", v, want);
  for (int i = 0; i < 3; i++) {
    double s[3];
    grad_sums(&dX[i], s);
    const double *r = smooth ? ref_grad_smooth[i] : ref_grad_plain[i];
    for (int k = 0; k < 3; k++)
      ck_assert_msg(fabs(s[k] - r[k]) <= rtol * 10 * (fabs(r[k]) + 1), "output %d checksum %d: %.15g vs numpy %.15g",
                    i, k, s[k], r[k]);
  }
  free3(X);
  free3(dX);
}

START_TEST(test_ref_double) {
  check_ref(OD_DTYPE_DOUBLE, false);
  check_ref(OD_DTYPE_DOUBLE, true);
}
END_TEST

START_TEST(test_ref_float) {
  check_ref(OD_DTYPE_FLOAT, false);
  check_ref(OD_DTYPE_FLOAT, true);
}
END_TEST

/* Every element of the three maps against central differences (h = 1e-6, double). The case keeps
 * every decoded IoU and every L1 difference at least 1e-3 away from its kink (printed by the
 * generator), so the loss is smooth within +-h everywhere. Scale 0.5 checks that the gradient
 * is scaled. Loop 0: plain, every element; loop 1: label smoothing, every 5th element. */
START_TEST(test_gradient_fd) {
  struct od_task_loss_cfg cfg;
  gen_cfg(&cfg, _i == 1);
  struct od_tensor X[3], dX[3];
  struct batch_buf bb;
  gen_case(OD_DTYPE_DOUBLE, X, &bb);
  for (int i = 0; i < 3; i++) dX[i] = make(OD_DTYPE_DOUBLE, X[i].dims[0], X[i].dims[1], X[i].dims[2], X[i].dims[3]);
  loss_of(&cfg, 3, X, &bb.b, 0.5, dX);
  const double h = 1e-6;
  for (int i = 0; i < 3; i++) {
    double *x = X[i].data;
    for (int64_t k = 0; k < od_tensor_numel(&X[i]); k += _i == 1 ? 5 : 1) { /* smooth: every 5th */
      double keep = x[k];
      x[k] = keep + h;
      double up = loss_of(&cfg, 3, X, &bb.b, 1.0, NULL);
      x[k] = keep - h;
      double down = loss_of(&cfg, 3, X, &bb.b, 1.0, NULL);
      x[k] = keep;
      double num = 0.5 * (up - down) / (2 * h), ana = ((double *)dX[i].data)[k];
      ck_assert_msg(fabs(num - ana) <= 2e-6 + 1e-5 * fabs(ana), "output %d element %lld: analytic %.10g, numeric %.10g",
                    i, (long long)k, ana, num);
    }
  }
  free3(X);
  free3(dX);
}
END_TEST

/* dX accumulates (a second call doubles it), NULL dX entries are skipped, value-only calls agree. */
START_TEST(test_accumulate) {
  struct od_task_loss_cfg cfg;
  gen_cfg(&cfg, false);
  struct od_tensor X[3], dA[3], dB[3];
  struct batch_buf bb;
  gen_case(OD_DTYPE_FLOAT, X, &bb);
  for (int i = 0; i < 3; i++) {
    dA[i] = make(OD_DTYPE_FLOAT, X[i].dims[0], X[i].dims[1], X[i].dims[2], X[i].dims[3]);
    dB[i] = make(OD_DTYPE_FLOAT, X[i].dims[0], X[i].dims[1], X[i].dims[2], X[i].dims[3]);
  }
  double v0 = loss_of(&cfg, 3, X, &bb.b, 1.0, NULL);
  double v1 = loss_of(&cfg, 3, X, &bb.b, 1.0, dA);
  double v2 = loss_of(&cfg, 3, X, &bb.b, 1.0, dA);
  ck_assert_double_eq(v0, v1);
  ck_assert_double_eq(v1, v2);
  /* only output 1 gets a gradient */
  const struct od_tensor *Xp[3] = {&X[0], &X[1], &X[2]};
  struct od_tensor *dp[3] = {NULL, &dB[1], NULL};
  struct od_err err;
  double v3;
  ck_assert_int_eq(od_yolov3_loss(&cfg, 3, Xp, &bb.b, 2.0, &v3, dp, &err), OD_OK);
  ck_assert_double_eq(v3, v0);
  for (int i = 0; i < 3; i++)
    for (int64_t k = 0; k < od_tensor_numel(&X[i]); k++) {
      double b = get(&dB[i], k);
      ck_assert_double_eq_tol(b, i == 1 ? get(&dA[i], k) : 0.0, 1e-6); /* 2 * g vs g + g */
    }
  free3(X);
  free3(dA);
  free3(dB);
}
END_TEST

/* A thread pool gives bit-identical values and gradients. */
START_TEST(test_pool) {
  struct od_task_loss_cfg cfg;
  gen_cfg(&cfg, false);
  struct od_tensor X[3], dA[3], dB[3];
  struct batch_buf bb;
  gen_case(OD_DTYPE_FLOAT, X, &bb);
  for (int i = 0; i < 3; i++) {
    dA[i] = make(OD_DTYPE_FLOAT, X[i].dims[0], X[i].dims[1], X[i].dims[2], X[i].dims[3]);
    dB[i] = make(OD_DTYPE_FLOAT, X[i].dims[0], X[i].dims[1], X[i].dims[2], X[i].dims[3]);
  }
  double v0 = loss_of(&cfg, 3, X, &bb.b, 1.0, dA);
  struct od_pool *pool;
  struct od_err err;
  ck_assert_int_eq(od_pool_create(3, &pool, &err), OD_OK);
  const struct od_tensor *Xp[3] = {&X[0], &X[1], &X[2]};
  struct od_tensor *dp[3] = {&dB[0], &dB[1], &dB[2]};
  double v1;
  ck_assert_int_eq(od_yolov3_loss_pool(&cfg, 3, Xp, &bb.b, 1.0, &v1, dp, pool, &err), OD_OK);
  ck_assert(v0 == v1);
  for (int i = 0; i < 3; i++) ck_assert(!memcmp(dA[i].data, dB[i].data, od_tensor_nbytes(&dA[i])));
  od_pool_destroy(pool);
  free3(X);
  free3(dA);
  free3(dB);
}
END_TEST

/* ---- 4. errors ------------------------------------------------------------------------------------ */

static void expect_err(enum od_status st, enum od_status want, const struct od_err *err, const char *part) {
  ck_assert_msg(st == want, "status %d, want %d (%s)", st, want, err->msg);
  ck_assert_msg(strstr(err->msg, part), "message '%s' lacks '%s'", err->msg, part);
}

START_TEST(test_errors) {
  struct od_task_loss_cfg cfg;
  gen_cfg(&cfg, false);
  char *names[3] = {"conv2d_20.tmp_1", "conv2d_28.tmp_1", "conv2d_36.tmp_1"};
  cfg.outputs = names;
  cfg.n_outputs = 3;
  struct od_tensor X[3];
  struct batch_buf bb;
  gen_case(OD_DTYPE_FLOAT, X, &bb);
  const struct od_tensor *Xp[3] = {&X[0], &X[1], &X[2]};
  struct od_err err;
  double v;
  ck_assert_int_eq(od_yolov3_check(&cfg, 3, Xp, &err), OD_OK);
  expect_err(od_yolov3_check(&cfg, 2, Xp, &err), OD_ERR_INVALID_ARG, &err, "2 head outputs but 3 anchor masks");
  /* num_classes wrong: 24 channels = 3 x (5 + 3) */
  cfg.num_classes = 20;
  expect_err(od_yolov3_check(&cfg, 3, Xp, &err), OD_ERR_SHAPE, &err,
             "task_loss.outputs[0] ('conv2d_20.tmp_1'): shape [2, 24, 4, 4] has 24 channels, expected anchors x (5 + "
             "num_classes) = 3 x (5 + 20) = 75 (task_loss.anchor_masks[0], task_loss.num_classes); 24 channels fit 3 "
             "anchors with num_classes 3");
  cfg.num_classes = G_C;
  /* outputs swapped: strides no longer fit one input */
  const struct od_tensor *Xs[3] = {&X[2], &X[1], &X[0]};
  expect_err(od_yolov3_check(&cfg, 3, Xs, &err), OD_ERR_SHAPE, &err,
             "the head outputs do not come from one input size (H 16 at stride 32, H 8 at stride 16, H 4 at stride "
             "8); list task_loss.outputs in the order");
  cfg.anchor_masks[1][2] = 9;
  expect_err(od_yolov3_check(&cfg, 3, Xp, &err), OD_ERR_INVALID_ARG, &err,
             "task_loss.anchor_masks[1][2]: anchor index 9 out of range");
  cfg.anchor_masks[1][2] = 5;
  struct od_tensor bad = X[1];
  bad.dtype = OD_DTYPE_INT32;
  const struct od_tensor *Xb[3] = {&X[0], &bad, &X[2]};
  expect_err(od_yolov3_check(&cfg, 3, Xb, &err), OD_ERR_UNSUPPORTED, &err,
             "task_loss.outputs[1] ('conv2d_28.tmp_1'): the yolov3 loss takes float or double maps, got int32");
  bad = X[1];
  bad.dims[0] = 3;
  expect_err(od_yolov3_check(&cfg, 3, Xb, &err), OD_ERR_SHAPE, &err, "batch 3 differs from task_loss.outputs[0]'s 2");
  bad.dims[0] = 2;
  bad.rank = 3;
  expect_err(od_yolov3_check(&cfg, 3, Xb, &err), OD_ERR_SHAPE, &err, "expected a head map [N, A*(5+C), H, W]");
  /* the loss: batch, input size, labels, missing gt */
  bb.b.n = 1;
  expect_err(od_yolov3_loss(&cfg, 3, Xp, &bb.b, 1, &v, NULL, &err), OD_ERR_SHAPE, &err,
             "the head maps have batch 2, the data batch has 1");
  bb.b.n = 2;
  bb.b.h = bb.b.w = 256;
  expect_err(od_yolov3_loss(&cfg, 3, Xp, &bb.b, 1, &v, NULL, &err), OD_ERR_SHAPE, &err,
             "task_loss.outputs[0] ('conv2d_20.tmp_1'): map [2, 24, 4, 4] does not fit input 256x256 at stride 32");
  bb.b.h = bb.b.w = 128;
  bb.gt[3].label = 3;
  expect_err(od_yolov3_loss(&cfg, 3, Xp, &bb.b, 1, &v, NULL, &err), OD_ERR_INVALID_ARG, &err,
             "image 0 of the batch, box 3: label 3 out of range for task_loss.num_classes 3");
  bb.gt[3].label = 2;
  bb.b.gt = NULL;
  expect_err(od_yolov3_loss(&cfg, 3, Xp, &bb.b, 1, &v, NULL, &err), OD_ERR_INVALID_ARG, &err,
             "the batch has no ground-truth boxes");
  /* an input side that is not a multiple of 32 is accepted when every map is its ceil or floor */
  bb.b.gt = bb.gt;
  bb.b.h = bb.b.w = 124; /* ceil(124/32) = 4, ceil(124/16) = 8, ceil(124/8) = 16 */
  ck_assert_int_eq(od_yolov3_loss(&cfg, 3, Xp, &bb.b, 1, &v, NULL, &err), OD_OK);
  free3(X);
}
END_TEST

static Suite *yolo_loss_suite(void) {
  Suite *s = suite_create("yolo_loss");
  TCase *tc = tcase_create("hand");
  tcase_add_test(tc, test_hand_single_gt);
  tcase_add_test(tc, test_hand_label_smooth);
  tcase_add_test(tc, test_hand_other_output);
  tcase_add_test(tc, test_hand_duplicate);
  tcase_add_test(tc, test_hand_batch_mean);
  suite_add_tcase(s, tc);
  tc = tcase_create("reference");
  tcase_add_test(tc, test_ref_double);
  tcase_add_test(tc, test_ref_float);
  tcase_add_test(tc, test_accumulate);
  tcase_add_test(tc, test_pool);
  suite_add_tcase(s, tc);
  tc = tcase_create("gradient");
  tcase_add_loop_test(tc, test_gradient_fd, 0, 2);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(yolo_loss_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
