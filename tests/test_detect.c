/* tests/test_detect.c: YOLOv3 decoding, multiclass NMS and the VOC mAP (trainer/detect.h).
 *
 *  1. decode: a 2x2 map worked out by hand (centre, size, clipping to the original image,
 *     conf * class scores, the conf threshold, the candidate order).
 *  2. NMS: hand cases (suppression, IoU exactly at the threshold kept, score threshold strict,
 *     per-class independence, nms_top_k, keep_top_k and the output order, ties, background, eta).
 *  3. mAP: cases with a known AP worked out in the comments (perfect detections, a constructed
 *     precision/recall curve, difficult gts, duplicates, a best gt already taken, classes without
 *     gts or without detections), then tests/gen_map_refs.py: an independent numpy version of the
 *     VOC devkit metric on random detections (data and APs pasted between the GENERATED markers).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dtype.h"
#include "runtime/tensor.h"
#include "trainer/detect.h"

static struct od_det D(float x1, float y1, float x2, float y2, float score, int label) {
  return (struct od_det){.x1 = x1, .y1 = y1, .x2 = x2, .y2 = y2, .score = score, .label = label};
}

static struct od_det G(float x1, float y1, float x2, float y2, int label, int difficult) {
  return (struct od_det){.x1 = x1, .y1 = y1, .x2 = x2, .y2 = y2, .label = label, .difficult = difficult};
}

static double sigm(double z) { return 1.0 / (1.0 + exp(-z)); }

/* ---- 1. decode --------------------------------------------------------------------------------------
 * One output, stride 32, input 64x64 (map 2x2), one anchor 32x32, C = 2; original image 200 wide,
 * 100 high. Map [2, 7, 2, 2]; image 0: every objectness logit -10 (conf 4.5e-5 < 0.005: dropped)
 * except two cells with objectness 0 (conf 0.5):
 *   cell (row 0, col 1), logits x = y = w = h = 0, cls = (0, 2):
 *     centre ((1 + 0.5) / 2 * 200, (0 + 0.5) / 2 * 100) = (150, 25), size (32/64 * 200, 32/64 * 100)
 *     = (100, 50) -> [100, 0, 200, 50] -> x2 clipped to 199 -> [100, 0, 199, 50];
 *     scores 0.5 * sigma(0) = 0.25, 0.5 * sigma(2) = 0.4403985.
 *   cell (row 1, col 0), w = ln 2, others 0, cls = (0, 0): centre (50, 75), size (200, 50)
 *     -> [-50, 50, 150, 100] -> [0, 50, 150, 99]; scores 0.25, 0.25.
 * Order: row-major over the cells, so (0, 1) first. Image 1: all objectness -10 -> no candidate. */
START_TEST(test_decode) {
  struct od_task_loss_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.n_anchors = 1;
  cfg.anchors[0][0] = cfg.anchors[0][1] = 32;
  cfg.n_masks = 1;
  cfg.mask_len[0] = 1;
  cfg.num_classes = 2;
  cfg.downsample[0] = 32;
  for (int dt = 0; dt < 2; dt++) {
    struct od_tensor x = {.dtype = dt ? OD_DTYPE_DOUBLE : OD_DTYPE_FLOAT, .rank = 4, .dims = {2, 7, 2, 2}};
    x.data = calloc(56, od_dtype_size(x.dtype));
    for (int n = 0; n < 2; n++)
      for (int p = 0; p < 4; p++) od_tensor_set_f64(&x, (n * 7 + 4) * 4 + p, -10.0);
    od_tensor_set_f64(&x, 4 * 4 + 1, 0.0);     /* obj, row 0 col 1 */
    od_tensor_set_f64(&x, 6 * 4 + 1, 2.0);     /* cls 1 there */
    od_tensor_set_f64(&x, 4 * 4 + 2, 0.0);     /* obj, row 1 col 0 */
    od_tensor_set_f64(&x, 2 * 4 + 2, log(2.0)); /* w there */
    const struct od_tensor *X[1] = {&x};
    struct od_yolo_cands c = {0};
    struct od_err err;
    ck_assert_int_eq(od_yolo_decode(&cfg, 1, X, 0, 64, 64, 100, 200, OD_YOLO_CONF_THRESH, &c, &err), OD_OK);
    ck_assert_int_eq(c.n, 2);
    ck_assert_int_eq(c.num_classes, 2);
    const float want_b[2][4] = {{100, 0, 199, 50}, {0, 50, 150, 99}};
    const float want_s[2][2] = {{0.25f, (float)(0.5 * sigm(2))}, {0.25f, 0.25f}};
    for (int k = 0; k < 2; k++) {
      for (int q = 0; q < 4; q++) ck_assert_float_eq_tol(c.boxes[k * 4 + q], want_b[k][q], 1e-4);
      for (int q = 0; q < 2; q++) ck_assert_float_eq_tol(c.scores[k * 2 + q], want_s[k][q], 1e-6);
    }
    ck_assert_int_eq(od_yolo_decode(&cfg, 1, X, 1, 64, 64, 100, 200, OD_YOLO_CONF_THRESH, &c, &err), OD_OK);
    ck_assert_int_eq(c.n, 0);
    /* a lower threshold keeps every cell of image 1 */
    ck_assert_int_eq(od_yolo_decode(&cfg, 1, X, 1, 64, 64, 100, 200, 1e-5f, &c, &err), OD_OK);
    ck_assert_int_eq(c.n, 4);
    ck_assert_int_eq(od_yolo_decode(&cfg, 1, X, 2, 64, 64, 100, 200, 0.01f, &c, &err), OD_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "image 2 of a batch of 2"));
    cfg.num_classes = 3;
    ck_assert_int_eq(od_yolo_decode(&cfg, 1, X, 0, 64, 64, 100, 200, 0.01f, &c, &err), OD_ERR_SHAPE);
    cfg.num_classes = 2;
    od_yolo_cands_free(&c);
    free(x.data);
  }
}
END_TEST

/* ---- 2. NMS -----------------------------------------------------------------------------------------
 * Boxes (pixels, +1 areas: each 10x10 box has area 100):
 *   0: [0, 0, 9, 9]     1: [1, 1, 10, 10]    2: [20, 20, 29, 29]    3: [6, 0, 15, 9]
 *   IoU(0, 1) = 9*9 / (200 - 81) = 0.681; IoU(0, 3) = 4*10 / (200 - 40) = 0.25 exactly;
 *   IoU(1, 3) = 5*9 / (200 - 45) = 0.290; box 2 overlaps nothing.
 * Scores [box][class]: 0: (0.9, 0), 1: (0.8, 0.6), 2: (0.7, 0.01), 3: (0.5, 0.0101).
 * With nms_threshold 0.25 and score_threshold 0.01:
 *   class 0: order 0, 1, 2, 3: keep 0; 1 suppressed (0.681 > 0.25); keep 2; keep 3 (0.25 <= 0.25).
 *   class 1: 2's 0.01 is not > 0.01; order 1, 3: keep 1; 3 suppressed (0.290).
 *   output: (c0: 0 .9, 2 .7, 3 .5), (c1: 1 .6). */
static const float nms_boxes[4][4] = {{0, 0, 9, 9}, {1, 1, 10, 10}, {20, 20, 29, 29}, {6, 0, 15, 9}};
static const float nms_scores[4][2] = {{0.9f, 0}, {0.8f, 0.6f}, {0.7f, 0.01f}, {0.5f, 0.0101f}};

static void expect_dets(const struct od_det *d, int n, const int *labels, const float *scores, const int *boxes,
                        int want_n) {
  ck_assert_int_eq(n, want_n);
  for (int k = 0; k < n; k++) {
    ck_assert_int_eq(d[k].label, labels[k]);
    ck_assert_float_eq(d[k].score, scores[k]);
    ck_assert_float_eq(d[k].x1, nms_boxes[boxes[k]][0]);
    ck_assert_float_eq(d[k].y2, nms_boxes[boxes[k]][3]);
  }
}

START_TEST(test_nms) {
  struct od_nms_cfg cfg;
  od_nms_cfg_default(&cfg);
  ck_assert_float_eq(cfg.score_threshold, 0.01f);
  ck_assert_int_eq(cfg.nms_top_k, 1000);
  ck_assert_float_eq(cfg.nms_threshold, 0.45f);
  ck_assert_int_eq(cfg.keep_top_k, 100);
  ck_assert_int_eq(cfg.background_label, -1);
  cfg.nms_threshold = 0.25f;
  struct od_det *d;
  int n;
  struct od_err err;
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], &nms_scores[0][0], 4, 2, &d, &n, &err), OD_OK);
  expect_dets(d, n, (int[]){0, 0, 0, 1}, (float[]){0.9f, 0.7f, 0.5f, 0.6f}, (int[]){0, 2, 3, 1}, 4);
  free(d);
  /* keep_top_k 3: the three best over classes are .9, .7 (class 0) and .6 (class 1); output class
   * by class */
  cfg.keep_top_k = 3;
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], &nms_scores[0][0], 4, 2, &d, &n, &err), OD_OK);
  expect_dets(d, n, (int[]){0, 0, 1}, (float[]){0.9f, 0.7f, 0.6f}, (int[]){0, 2, 1}, 3);
  free(d);
  cfg.keep_top_k = 100;
  /* nms_top_k 2: class 0 only sees boxes 0 and 1 (1 suppressed); class 1 sees 1 and 3 */
  cfg.nms_top_k = 2;
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], &nms_scores[0][0], 4, 2, &d, &n, &err), OD_OK);
  expect_dets(d, n, (int[]){0, 1}, (float[]){0.9f, 0.6f}, (int[]){0, 1}, 2);
  free(d);
  cfg.nms_top_k = 1000;
  /* class 0 as background */
  cfg.background_label = 0;
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], &nms_scores[0][0], 4, 2, &d, &n, &err), OD_OK);
  expect_dets(d, n, (int[]){1}, (float[]){0.6f}, (int[]){1}, 1);
  free(d);
  cfg.background_label = -1;
  /* the default 0.45 keeps box 3 and still suppresses 1 in class 0; in class 1, 3 survives (0.290) */
  cfg.nms_threshold = 0.45f;
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], &nms_scores[0][0], 4, 2, &d, &n, &err), OD_OK);
  expect_dets(d, n, (int[]){0, 0, 0, 1, 1}, (float[]){0.9f, 0.7f, 0.5f, 0.6f, 0.0101f}, (int[]){0, 2, 3, 1, 3}, 5);
  free(d);
  /* eta: threshold 0.9 keeps 0 and 1 (0.681); with eta 0.5 it drops to 0.45 after keeping 0 */
  cfg.nms_threshold = 0.9f;
  const float s2[2] = {0.9f, 0.8f};
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], s2, 2, 1, &d, &n, &err), OD_OK);
  ck_assert_int_eq(n, 2);
  free(d);
  cfg.nms_eta = 0.5f;
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], s2, 2, 1, &d, &n, &err), OD_OK);
  ck_assert_int_eq(n, 1);
  free(d);
  /* nothing above the threshold, no boxes */
  const float zero[4] = {0.001f, 0.002f, 0, 0};
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], zero, 4, 1, &d, &n, &err), OD_OK);
  ck_assert_int_eq(n, 0);
  ck_assert_ptr_null(d);
  ck_assert_int_eq(od_multiclass_nms(&cfg, &nms_boxes[0][0], zero, 0, 1, &d, &n, &err), OD_OK);
  ck_assert_int_eq(n, 0);
}
END_TEST

/* Equal scores: the earlier box wins (stable order), as Paddle's stable sort. */
START_TEST(test_nms_ties) {
  struct od_nms_cfg cfg;
  od_nms_cfg_default(&cfg);
  const float b[2][4] = {{0, 0, 9, 9}, {0, 0, 9, 10}}, s[2] = {0.5f, 0.5f};
  struct od_det *d;
  int n;
  struct od_err err;
  ck_assert_int_eq(od_multiclass_nms(&cfg, &b[0][0], s, 2, 1, &d, &n, &err), OD_OK);
  ck_assert_int_eq(n, 1);
  ck_assert_float_eq(d[0].y2, 9);
  free(d);
  const float b2[2][4] = {{0, 0, 9, 10}, {0, 0, 9, 9}};
  ck_assert_int_eq(od_multiclass_nms(&cfg, &b2[0][0], s, 2, 1, &d, &n, &err), OD_OK);
  ck_assert_int_eq(n, 1);
  ck_assert_float_eq(d[0].y2, 10);
  free(d);
}
END_TEST

/* ---- 3. mAP ---------------------------------------------------------------------------------------- */

static struct od_map *new_map(int nc) {
  struct od_map_cfg cfg;
  od_map_cfg_default(nc, &cfg);
  struct od_map *m;
  struct od_err err;
  ck_assert_int_eq(od_map_create(&cfg, &m, &err), OD_OK);
  return m;
}

static void add(struct od_map *m, const struct od_det *d, int nd, const struct od_det *g, int ng) {
  struct od_err err;
  ck_assert_msg(od_map_add_image(m, d, nd, g, ng, &err) == OD_OK, "%s", err.msg);
}

static void compute(const struct od_map *m, double *m11, double *mall, struct od_ap *per) {
  struct od_err err;
  ck_assert_int_eq(od_map_compute(m, m11, mall, per, &err), OD_OK);
}

/* Perfect detections in two images and three classes: every class AP 1 (both metrics). */
START_TEST(test_map_perfect) {
  struct od_map *m = new_map(3);
  const struct od_det g0[] = {G(10, 10, 50, 60, 0, 0), G(100, 20, 180, 90, 1, 0), G(5, 100, 40, 160, 2, 0)};
  const struct od_det g1[] = {G(0, 0, 99, 99, 1, 0), G(150, 150, 199, 220, 1, 0)};
  const struct od_det d0[] = {D(10, 10, 50, 60, 0.9f, 0), D(100, 20, 180, 90, 0.3f, 1), D(5, 100, 40, 160, 0.8f, 2)};
  const struct od_det d1[] = {D(0, 0, 99, 99, 0.7f, 1), D(150, 150, 199, 220, 0.2f, 1)};
  add(m, d0, 3, g0, 3);
  add(m, d1, 2, g1, 2);
  double m11, mall;
  struct od_ap per[3];
  compute(m, &m11, &mall, per);
  ck_assert_double_eq_tol(m11, 1.0, 1e-12);
  ck_assert_double_eq_tol(mall, 1.0, 1e-12);
  ck_assert_int_eq(per[1].n_gt, 3);
  ck_assert_int_eq(per[1].n_tp, 3);
  ck_assert_int_eq(od_map_images(m), 2);
  od_map_destroy(m);
}
END_TEST

/* A constructed precision/recall curve: class 0, 4 gts, 5 detections in score order
 * TP, FP, TP, FP, TP (the 4th gt is missed):
 *   rank:      1     2     3     4     5
 *   precision: 1     1/2   2/3   1/2   3/5
 *   recall:    1/4   1/4   1/2   1/2   3/4
 * 11-point: t = 0, .1, .2 -> 1 (rank 1); t = .3, .4, .5 -> max(2/3, 1/2, 3/5) = 2/3;
 *   t = .6, .7 -> 3/5; t = .8, .9, 1 -> 0.   AP11 = (3 + 3 * 2/3 + 2 * 3/5) / 11 = 6.2 / 11 = 0.563636...
 * All-point: envelope 1 on (0, 1/4], 2/3 on (1/4, 1/2], 3/5 on (1/2, 3/4], 0 after:
 *   AP = 1/4 (1 + 2/3 + 3/5) = 0.566666...
 * The gts sit in two images (2 + 2) and the detections are split between them; a second class
 * (1) has gts but no detections: AP 0, and the mean is (AP_0 + 0) / 2; a third class (2) has a
 * detection but no gt: not in the mean. */
START_TEST(test_map_curve) {
  struct od_map *m = new_map(3);
  const struct od_det ga[] = {G(0, 0, 49, 49, 0, 0), G(100, 0, 149, 49, 0, 0), G(0, 200, 30, 230, 1, 0)};
  const struct od_det gb[] = {G(0, 0, 49, 49, 0, 0), G(100, 0, 149, 49, 0, 0)};
  /* image a: ranks 1 (TP .9), 2 (FP .8), 4 (FP .6); image b: ranks 3 (TP .7), 5 (TP .5), + class 2 */
  const struct od_det da[] = {D(300, 300, 349, 349, 0.8f, 0), D(0, 0, 49, 49, 0.9f, 0), D(400, 0, 449, 49, 0.6f, 0)};
  const struct od_det db[] = {D(100, 0, 149, 49, 0.5f, 0), D(0, 0, 49, 49, 0.7f, 0), D(0, 0, 10, 10, 0.95f, 2)};
  add(m, da, 3, ga, 3);
  add(m, db, 3, gb, 2);
  double m11, mall;
  struct od_ap per[3];
  compute(m, &m11, &mall, per);
  ck_assert_double_eq_tol(per[0].ap11, 6.2 / 11, 1e-12);
  ck_assert_double_eq_tol(per[0].ap_all, 0.25 * (1 + 2.0 / 3 + 0.6), 1e-12);
  ck_assert(per[1].valid);
  ck_assert_double_eq(per[1].ap11, 0);
  ck_assert(!per[2].valid);
  ck_assert_int_eq(per[2].n_det, 1);
  ck_assert_double_eq_tol(m11, 6.2 / 11 / 2, 1e-12);
  ck_assert_double_eq_tol(mall, 0.25 * (1 + 2.0 / 3 + 0.6) / 2, 1e-12);
  ck_assert_int_eq(per[0].n_gt, 4);
  ck_assert_int_eq(per[0].n_det, 5);
  ck_assert_int_eq(per[0].n_tp, 3);
  od_map_destroy(m);
}
END_TEST

/* Difficult gts: one normal gt, one difficult gt. Detections: on the difficult gt (.9), a false
 * positive elsewhere (.85), on the normal gt (.8). The first is ignored (neither TP nor FP), so
 * the ranks are FP, TP: precision 0, 1/2 at recall 0, 1 -> AP11 = 11 * 0.5 / 11 = 0.5,
 * all-point = 1 * 0.5 = 0.5. Counted as an FP it would give 1/3. With evaluate_difficult the
 * difficult gt counts: TP, FP, TP with 2 gts: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1:
 * AP11 = (6 * 1 + 5 * 2/3) / 11, all-point = 1/2 + 1/2 * 2/3. */
START_TEST(test_map_difficult) {
  const struct od_det g[] = {G(0, 0, 49, 49, 0, 0), G(100, 100, 149, 149, 0, 1)};
  const struct od_det d[] = {D(100, 100, 149, 149, 0.9f, 0), D(300, 0, 349, 49, 0.85f, 0), D(0, 0, 49, 49, 0.8f, 0)};
  struct od_map *m = new_map(1);
  add(m, d, 3, g, 2);
  double m11, mall;
  struct od_ap per[1];
  compute(m, &m11, &mall, per);
  ck_assert_double_eq_tol(per[0].ap11, 0.5, 1e-12);
  ck_assert_double_eq_tol(per[0].ap_all, 0.5, 1e-12);
  ck_assert_int_eq(per[0].n_gt, 1);
  ck_assert_int_eq(per[0].n_det, 2);
  od_map_destroy(m);
  struct od_map_cfg cfg;
  od_map_cfg_default(1, &cfg);
  cfg.evaluate_difficult = true;
  struct od_err err;
  ck_assert_int_eq(od_map_create(&cfg, &m, &err), OD_OK);
  add(m, d, 3, g, 2);
  compute(m, &m11, &mall, per);
  ck_assert_double_eq_tol(per[0].ap11, (6 + 5 * 2.0 / 3) / 11, 1e-12);
  ck_assert_double_eq_tol(per[0].ap_all, 0.5 + 0.5 * 2.0 / 3, 1e-12);
  od_map_destroy(m);
}
END_TEST

/* Duplicates: gts g1, g2; detections on g1 (.9, TP), on g1 again (.8, FP: already matched), on g2
 * (.7, TP): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> AP11 = (6 + 5 * 2/3) / 11 = 0.848484...,
 * all-point 1/2 + 1/2 * 2/3 = 0.833333...
 * Best gt already taken: g3 = [0, 0, 99, 99], g4 = [10, 0, 109, 99] (IoU 0.818). d = g3 (.9) takes
 * g3; d' = [2, 0, 101, 99] (.8) has IoU 0.961 with g3 and 0.852 with g4: its best gt is g3, taken,
 * so it is an FP although g4 is free: precision 1, 1/2 at recall 1/2 -> AP11 = 6/11, all-point 1/2. */
START_TEST(test_map_duplicates) {
  struct od_map *m = new_map(2);
  const struct od_det g[] = {G(0, 0, 49, 49, 0, 0), G(100, 100, 149, 149, 0, 0)};
  const struct od_det d[] = {D(1, 1, 49, 49, 0.8f, 0), D(0, 0, 49, 49, 0.9f, 0), D(100, 100, 149, 149, 0.7f, 0)};
  add(m, d, 3, g, 2);
  const struct od_det g2[] = {G(0, 0, 99, 99, 1, 0), G(10, 0, 109, 99, 1, 0)};
  const struct od_det d2[] = {D(0, 0, 99, 99, 0.9f, 1), D(2, 0, 101, 99, 0.8f, 1)};
  add(m, d2, 2, g2, 2);
  double m11, mall;
  struct od_ap per[2];
  compute(m, &m11, &mall, per);
  ck_assert_double_eq_tol(per[0].ap11, (6 + 5 * 2.0 / 3) / 11, 1e-12);
  ck_assert_double_eq_tol(per[0].ap_all, 0.5 + 0.5 * 2.0 / 3, 1e-12);
  ck_assert_double_eq_tol(per[1].ap11, 6.0 / 11, 1e-12);
  ck_assert_double_eq_tol(per[1].ap_all, 0.5, 1e-12);
  ck_assert_int_eq(per[1].n_tp, 1);
  od_map_destroy(m);
}
END_TEST

/* IoU threshold is strict (> 0.5) with +1 areas: gt [0, 0, 9, 9] (area 100); detection
 * [0, 0, 9, 4] has (10 * 5) / 100 = 0.5 exactly -> FP; [0, 0, 9, 5]: 60 / 100 -> TP. */
START_TEST(test_map_threshold) {
  const struct od_det g[] = {G(0, 0, 9, 9, 0, 0)};
  struct od_map *m = new_map(1);
  const struct od_det d[] = {D(0, 0, 9, 4, 0.9f, 0)};
  add(m, d, 1, g, 1);
  double m11, mall;
  compute(m, &m11, &mall, NULL);
  ck_assert_double_eq(m11, 0);
  od_map_destroy(m);
  m = new_map(1);
  const struct od_det d2[] = {D(0, 0, 9, 5, 0.9f, 0)};
  add(m, d2, 1, g, 1);
  compute(m, &m11, &mall, NULL);
  ck_assert_double_eq_tol(m11, 1, 1e-12);
  ck_assert_double_eq_tol(mall, 1, 1e-12);
  od_map_destroy(m);
}
END_TEST

START_TEST(test_map_errors) {
  struct od_map *m = new_map(2);
  struct od_err err;
  const struct od_det g[] = {G(0, 0, 9, 9, 0, 0)}, bad_g[] = {G(0, 0, 9, 9, 2, 0)};
  const struct od_det d[] = {D(0, 0, 9, 9, 0.5f, -1)};
  ck_assert_int_eq(od_map_add_image(m, d, 1, g, 1, &err), OD_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(err.msg, "detection 0 has label -1; expected 0..1"));
  ck_assert_int_eq(od_map_add_image(m, NULL, 0, bad_g, 1, &err), OD_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(err.msg, "ground-truth box 0 has label 2"));
  /* nothing was recorded: no class has gts, the mean is 0 */
  double m11 = -1, mall = -1;
  struct od_ap per[2];
  compute(m, &m11, &mall, per);
  ck_assert_double_eq(m11, 0);
  ck_assert(!per[0].valid);
  ck_assert_int_eq(od_map_images(m), 0);
  od_map_destroy(m);
  struct od_map_cfg cfg;
  od_map_cfg_default(0, &cfg);
  ck_assert_int_eq(od_map_create(&cfg, &m, &err), OD_ERR_INVALID_ARG);
  od_map_destroy(NULL);
}
END_TEST

/* ---- the numpy cross-check ------------------------------------------------------------------------ */

/* clang-format off */
/* BEGIN GENERATED by tests/gen_map_refs.py (numpy, the VOC devkit definition, independent of trainer/detect.c) */
/* rc0: seed 7, 8 images, 4 classes, 24 gts, 40 detections */
static const float rc0_gt[][7] = { /* image, label, difficult, x1, y1, x2, y2 */
    {0, 0, 0, 262, 241, 405, 337},
    {0, 1, 0, 106, 87, 238, 218},
    {0, 0, 1, 199, 28, 356, 165},
    {0, 3, 0, 184, 187, 271, 341},
    {0, 2, 1, 289, 54, 443, 167},
    {1, 3, 0, 126, 66, 217, 184},
    {1, 1, 0, 222, 63, 290, 130},
    {2, 3, 1, 191, 272, 273, 422},
    {2, 2, 0, 320, 199, 386, 340},
    {2, 1, 0, 140, 156, 280, 279},
    {2, 0, 1, 142, 269, 156, 386},
    {2, 2, 0, 111, 19, 185, 130},
    {2, 1, 0, 52, 293, 63, 399},
    {3, 0, 0, 20, 107, 176, 168},
    {3, 0, 0, 168, 357, 234, 428},
    {3, 2, 0, 144, 352, 179, 439},
    {3, 2, 1, 152, 158, 207, 218},
    {4, 2, 0, 206, 244, 352, 390},
    {5, 2, 0, 263, 100, 358, 249},
    {5, 0, 0, 257, 87, 353, 148},
    {6, 1, 0, 143, 120, 252, 258},
    {6, 2, 0, 157, 29, 279, 170},
    {7, 1, 0, 284, 67, 393, 178},
    {7, 3, 0, 33, 48, 80, 147},
};
static const float rc0_det[][7] = { /* image, label, score, x1, y1, x2, y2 */
    {0, 0, 0.46793497f, 271, 251, 393, 337},
    {0, 1, 0.7926619f, 105, 86, 238, 220},
    {0, 1, 0.16021204f, 107, 92, 241, 214},
    {0, 0, 0.19240214f, 184, 181, 271, 338},
    {0, 2, 0.8803322f, 292, 62, 447, 158},
    {0, 2, 0.7417709f, 335, 167, 421, 317},
    {1, 3, 0.15019973f, 128, 56, 206, 188},
    {1, 1, 0.15078802f, 224, 61, 293, 129},
    {1, 0, 0.096704096f, 88, 35, 182, 111},
    {1, 0, 0.67176515f, 262, 147, 332, 218},
    {1, 0, 0.13161582f, 163, 149, 176, 204},
    {2, 3, 0.1805525f, 193, 264, 279, 433},
    {2, 3, 0.46773022f, 332, 197, 379, 333},
    {2, 0, 0.87280923f, 154, 259, 160, 392},
    {2, 2, 0.15106228f, 107, 29, 185, 131},
    {2, 2, 0.81052685f, 118, 17, 196, 125},
    {2, 1, 0.72584945f, 40, 302, 66, 399},
    {2, 1, 0.94812405f, 26, 69, 171, 133},
    {3, 0, 0.8965405f, 13, 119, 167, 168},
    {3, 0, 0.87818784f, 27, 113, 178, 170},
    {3, 2, 0.9715607f, 148, 356, 174, 444},
    {3, 2, 0.11240574f, 151, 151, 202, 228},
    {3, 2, 0.659275f, 96, 54, 196, 199},
    {3, 3, 0.6281009f, 29, 386, 95, 442},
    {3, 0, 0.06186542f, 141, 34, 220, 105},
    {3, 2, 0.72998923f, 0, 295, 111, 366},
    {4, 1, 0.25276867f, 214, 254, 347, 379},
    {4, 2, 0.03898584f, 194, 249, 346, 401},
    {4, 0, 0.021075355f, 42, 58, 98, 156},
    {5, 2, 0.03968642f, 256, 103, 351, 241},
    {5, 2, 0.050709646f, 256, 108, 357, 261},
    {6, 2, 0.6319547f, 151, 32, 286, 160},
    {6, 1, 0.7220473f, 245, 64, 377, 176},
    {6, 0, 0.02670235f, 177, 133, 234, 272},
    {6, 0, 0.56370974f, 262, 136, 296, 219},
    {6, 0, 0.45651004f, 299, 52, 403, 202},
    {6, 0, 0.38058478f, 256, 78, 304, 235},
    {7, 1, 0.45742568f, 285, 62, 386, 183},
    {7, 3, 0.13320664f, 28, 40, 69, 139},
    {7, 3, 0.2692443f, 40, 57, 71, 151},
};
static const double rc0_ap[][4] = { /* per class: ap11, ap_all, n_gt (non-difficult), n_det recorded */
    {0.36363636363636354, 0.3333333333333333, 4, 14},
    {0.23181818181818184, 0.2125, 6, 8},
    {0.5909090909090908, 0.5833333333333333, 6, 10},
    {0.31818181818181823, 0.3333333333333333, 3, 5},
};
static const double rc0_map[2] = {0.3761363636363636, 0.3656249999999999};
/* rc1: seed 2024, 20 images, 6 classes, 70 gts, 116 detections */
static const float rc1_gt[][7] = { /* image, label, difficult, x1, y1, x2, y2 */
    {0, 4, 0, 70, 311, 112, 369},
    {1, 1, 0, 151, 20, 188, 166},
    {2, 4, 0, 91, 329, 224, 381},
    {2, 2, 0, 129, 92, 255, 172},
    {2, 5, 0, 177, 157, 218, 302},
    {3, 2, 0, 102, 13, 197, 159},
    {3, 1, 1, 14, 4, 73, 16},
    {3, 2, 0, 237, 95, 308, 106},
    {3, 2, 1, 87, 44, 154, 83},
    {4, 3, 0, 280, 9, 422, 103},
    {4, 4, 0, 90, 2, 173, 87},
    {4, 1, 0, 214, 29, 354, 173},
    {4, 2, 0, 319, 78, 357, 182},
    {4, 2, 0, 299, 29, 406, 178},
    {4, 3, 0, 31, 47, 88, 66},
    {5, 4, 0, 273, 200, 382, 286},
    {5, 0, 0, 290, 102, 314, 201},
    {5, 1, 0, 265, 69, 304, 152},
    {5, 5, 1, 204, 220, 261, 248},
    {5, 1, 1, 39, 93, 116, 203},
    {6, 4, 0, 124, 327, 204, 378},
    {6, 0, 0, 208, 163, 264, 294},
    {6, 4, 0, 302, 212, 339, 308},
    {6, 1, 0, 141, 48, 176, 184},
    {6, 1, 0, 240, 62, 363, 176},
    {6, 2, 0, 64, 23, 191, 55},
    {7, 5, 0, 218, 374, 313, 386},
    {7, 1, 0, 87, 209, 169, 303},
    {7, 1, 0, 44, 148, 69, 218},
    {8, 3, 1, 73, 113, 217, 197},
    {9, 4, 0, 57, 339, 187, 351},
    {9, 0, 0, 26, 233, 152, 257},
    {9, 2, 0, 22, 48, 113, 135},
    {9, 0, 0, 57, 320, 146, 377},
    {9, 0, 0, 94, 62, 243, 169},
    {9, 2, 1, 131, 105, 218, 195},
    {10, 5, 0, 50, 35, 162, 164},
    {10, 0, 0, 153, 20, 301, 38},
    {10, 4, 0, 157, 32, 211, 79},
    {10, 5, 1, 268, 56, 339, 135},
    {10, 3, 0, 1, 14, 100, 121},
    {11, 4, 0, 292, 67, 381, 221},
    {12, 1, 0, 2, 102, 76, 213},
    {12, 2, 0, 17, 119, 96, 261},
    {12, 3, 1, 147, 216, 205, 356},
    {12, 5, 0, 54, 324, 65, 365},
    {13, 1, 0, 359, 93, 466, 175},
    {13, 3, 1, 50, 191, 163, 272},
    {14, 4, 1, 110, 175, 131, 232},
    {14, 5, 0, 165, 32, 271, 136},
    {14, 1, 0, 66, 2, 101, 73},
    {14, 3, 1, 104, 5, 178, 155},
    {14, 0, 0, 142, 193, 297, 219},
    {15, 4, 0, 373, 230, 412, 312},
    {15, 3, 0, 210, 242, 308, 389},
    {15, 5, 0, 59, 45, 116, 181},
    {15, 5, 0, 316, 121, 327, 253},
    {16, 0, 0, 220, 279, 330, 335},
    {17, 4, 0, 204, 189, 251, 320},
    {17, 3, 0, 40, 129, 140, 262},
    {17, 0, 0, 70, 261, 143, 309},
    {17, 4, 0, 128, 203, 226, 222},
    {18, 3, 0, 0, 18, 82, 131},
    {18, 0, 0, 76, 152, 120, 184},
    {18, 1, 0, 39, 30, 106, 146},
    {18, 0, 0, 61, 104, 141, 192},
    {19, 1, 0, 322, 111, 371, 159},
    {19, 1, 0, 292, 223, 382, 287},
    {19, 5, 0, 8, 175, 73, 275},
    {19, 3, 1, 196, 11, 225, 153},
};
static const float rc1_det[][7] = { /* image, label, score, x1, y1, x2, y2 */
    {1, 3, 0.4651192f, 154, 32, 178, 166},
    {1, 1, 0.32534966f, 140, 32, 192, 173},
    {2, 4, 0.070881784f, 98, 337, 223, 375},
    {2, 2, 0.96493024f, 126, 99, 252, 172},
    {2, 2, 0.18478708f, 123, 102, 247, 161},
    {2, 5, 0.02387229f, 167, 153, 217, 307},
    {2, 2, 0.27584088f, 49, 232, 163, 323},
    {3, 2, 0.94394284f, 102, 13, 199, 160},
    {3, 2, 0.5984542f, 100, 14, 186, 155},
    {3, 1, 0.013476454f, 2, -7, 69, 8},
    {3, 2, 0.5658211f, 228, 102, 316, 107},
    {3, 2, 0.13162664f, 92, 40, 144, 81},
    {3, 4, 0.27987272f, 144, 35, 280, 127},
    {4, 3, 0.6132496f, 281, 6, 422, 96},
    {4, 4, 0.7823282f, 89, 2, 171, 78},
    {4, 4, 0.6337531f, 78, -5, 170, 96},
    {4, 2, 0.051933624f, 294, 26, 397, 169},
    {4, 3, 0.1341193f, 41, 57, 98, 59},
    {4, 1, 0.9481526f, 62, 104, 83, 193},
    {4, 3, 0.0065342914f, 323, 8, 412, 148},
    {4, 1, 0.3578133f, 197, 14, 323, 162},
    {4, 4, 0.8292147f, 57, 88, 211, 132},
    {5, 4, 0.9074869f, 267, 210, 389, 276},
    {5, 4, 0.7174153f, 280, 192, 385, 276},
    {5, 0, 0.87661994f, 295, 90, 313, 211},
    {5, 2, 0.7710462f, 368, 166, 421, 287},
    {5, 2, 0.4859554f, 312, 109, 455, 266},
    {5, 1, 0.19104289f, 305, 177, 462, 202},
    {5, 0, 0.5727143f, 90, 173, 164, 286},
    {6, 0, 0.12084065f, 212, 151, 262, 296},
    {6, 0, 0.6627238f, 201, 166, 254, 300},
    {6, 4, 0.6545657f, 298, 211, 333, 309},
    {6, 1, 0.30915135f, 139, 59, 183, 188},
    {6, 1, 0.17751661f, 249, 73, 352, 176},
    {6, 2, 0.13606955f, 73, 17, 186, 64},
    {6, 2, 0.20123638f, 75, 17, 179, 63},
    {6, 4, 0.14112122f, 212, 278, 360, 334},
    {6, 2, 0.54017437f, 98, 305, 186, 421},
    {6, 5, 0.41931346f, 201, 264, 314, 321},
    {6, 1, 0.46934545f, 153, 190, 226, 305},
    {7, 0, 0.52312547f, 215, 368, 306, 387},
    {7, 4, 0.40898272f, 68, 146, 217, 283},
    {7, 4, 0.011239913f, 207, 120, 320, 174},
    {7, 0, 0.6223127f, 195, 96, 288, 195},
    {7, 4, 0.41441342f, 211, 179, 358, 271},
    {7, 0, 0.42899588f, 205, 323, 217, 466},
    {8, 3, 0.7670039f, 67, 113, 212, 194},
    {8, 2, 0.8939154f, 3, 236, 88, 254},
    {8, 3, 0.5693883f, 75, 43, 180, 97},
    {8, 1, 0.7803688f, 55, 203, 67, 305},
    {8, 2, 0.28939983f, 119, 45, 227, 187},
    {9, 4, 0.72460884f, 62, 331, 181, 360},
    {9, 0, 0.24366012f, 33, 230, 149, 255},
    {9, 2, 0.3221629f, 11, 40, 115, 128},
    {9, 0, 0.12714835f, 83, 69, 245, 172},
    {9, 0, 0.33515412f, 106, 65, 231, 157},
    {9, 2, 0.59349793f, 134, 117, 230, 184},
    {9, 3, 0.58475274f, 100, 182, 166, 207},
    {9, 0, 0.452611f, 110, 267, 152, 391},
    {9, 3, 0.3458577f, 54, 121, 123, 242},
    {9, 0, 0.017747251f, 11, 304, 114, 440},
    {10, 5, 0.27308837f, 56, 37, 166, 171},
    {10, 0, 0.89476377f, 141, 8, 313, 40},
    {10, 2, 0.4582288f, 276, 63, 346, 134},
    {10, 3, 0.7691533f, -8, 5, 100, 126},
    {10, 2, 0.06718195f, 108, 123, 209, 150},
    {10, 1, 0.88002795f, 60, 29, 132, 150},
    {11, 4, 0.5656274f, 293, 60, 386, 215},
    {12, 2, 0.08494039f, 27, 120, 88, 273},
    {12, 3, 0.81419367f, 153, 209, 207, 360},
    {12, 5, 0.8030236f, 61, 325, 75, 376},
    {12, 2, 0.18850186f, 48, 72, 146, 172},
    {12, 4, 0.7006825f, 193, 228, 249, 318},
    {12, 4, 0.2942915f, 16, 186, 146, 267},
    {12, 0, 0.30651712f, 101, 387, 239, 434},
    {13, 1, 0.9445576f, 364, 102, 478, 174},
    {13, 1, 0.8375707f, 350, 93, 473, 181},
    {13, 0, 0.7839631f, 24, 90, 167, 235},
    {14, 4, 0.17376904f, 119, 169, 143, 231},
    {14, 5, 0.6147888f, 161, 33, 276, 127},
    {14, 1, 0.48332596f, 59, 2, 96, 73},
    {14, 1, 0.8628155f, 65, -6, 97, 80},
    {14, 3, 0.7578855f, 112, 6, 175, 165},
    {14, 4, 0.92102104f, 141, 186, 302, 214},
    {14, 3, 0.3742315f, 293, 79, 304, 232},
    {14, 1, 0.65141857f, 341, 77, 353, 205},
    {15, 4, 0.673169f, 378, 237, 413, 311},
    {15, 3, 0.20533447f, 211, 248, 301, 401},
    {15, 3, 0.8447804f, 210, 243, 318, 383},
    {15, 5, 0.1595669f, 62, 41, 123, 185},
    {15, 5, 0.5710133f, 310, 126, 336, 242},
    {16, 1, 0.02680646f, 122, 350, 191, 431},
    {16, 3, 0.71025926f, 72, 277, 162, 407},
    {16, 1, 0.50023794f, 302, 330, 391, 385},
    {16, 5, 0.6922413f, 293, 84, 350, 159},
    {17, 0, 0.89898443f, 72, 249, 152, 311},
    {18, 3, 0.6590634f, 1, 15, 77, 119},
    {18, 3, 0.5207576f, -1, 25, 81, 136},
    {18, 3, 0.06163644f, 84, 147, 126, 189},
    {18, 1, 0.8897475f, 30, 24, 116, 153},
    {18, 0, 0.7521784f, 51, 108, 152, 200},
    {18, 3, 0.5507243f, 73, 164, 87, 206},
    {18, 5, 0.66501087f, 131, 1, 246, 124},
    {18, 3, 0.49113384f, 213, 28, 232, 178},
    {18, 1, 0.50890505f, 73, 131, 106, 199},
    {19, 1, 0.76200145f, 316, 100, 372, 147},
    {19, 1, 0.23680097f, 303, 216, 392, 285},
    {19, 1, 0.9028442f, 283, 211, 385, 296},
    {19, 5, 0.9076175f, 7, 167, 81, 272},
    {19, 5, 0.5580588f, 11, 182, 76, 273},
    {19, 3, 0.2165653f, 185, 21, 222, 153},
    {19, 4, 0.8174227f, 254, 167, 317, 254},
    {19, 1, 0.86278266f, 34, 6, 90, 92},
    {19, 1, 0.3010384f, 54, 50, 206, 165},
    {19, 0, 0.40255606f, 252, 205, 350, 246},
    {19, 0, 0.99201447f, 87, 21, 230, 169},
};
static const double rc1_ap[][4] = { /* per class: ap11, ap_all, n_gt (non-difficult), n_det recorded */
    {0.275974025974026, 0.2759740259740259, 11, 19},
    {0.3863636363636363, 0.3968531468531469, 13, 24},
    {0.41626794258373195, 0.4078947368421053, 8, 19},
    {0.5818181818181819, 0.6, 6, 17},
    {0.2256778309409888, 0.2068713450292398, 12, 20},
    {0.38842975206611563, 0.3522727272727273, 8, 11},
};
static const double rc1_map[2] = {0.37908856162444676, 0.3733109969952076};
/* END GENERATED */
/* clang-format on */

static void check_random(const float (*gt)[7], int n_gt, const float (*det)[7], int n_det, const double (*ap)[4],
                         const double *want_map, int n_images, int nc) {
  struct od_map *m = new_map(nc);
  struct od_det *g = malloc(((size_t)n_gt + 1) * sizeof *g), *d = malloc(((size_t)n_det + 1) * sizeof *d);
  for (int img = 0; img < n_images; img++) {
    int ng = 0, nd = 0;
    for (int k = 0; k < n_gt; k++)
      if ((int)gt[k][0] == img) g[ng++] = G(gt[k][3], gt[k][4], gt[k][5], gt[k][6], (int)gt[k][1], (int)gt[k][2]);
    for (int k = 0; k < n_det; k++)
      if ((int)det[k][0] == img) d[nd++] = D(det[k][3], det[k][4], det[k][5], det[k][6], det[k][2], (int)det[k][1]);
    add(m, d, nd, g, ng);
  }
  double m11, mall;
  struct od_ap *per = calloc((size_t)nc, sizeof *per);
  compute(m, &m11, &mall, per);
  for (int c = 0; c < nc; c++) {
    ck_assert_msg(fabs(per[c].ap11 - ap[c][0]) < 1e-12, "class %d ap11 %.15g, numpy %.15g", c, per[c].ap11, ap[c][0]);
    ck_assert_msg(fabs(per[c].ap_all - ap[c][1]) < 1e-12, "class %d ap_all %.15g, numpy %.15g", c, per[c].ap_all,
                  ap[c][1]);
    ck_assert_int_eq(per[c].n_gt, (int64_t)ap[c][2]);
    ck_assert_int_eq(per[c].n_det, (int64_t)ap[c][3]);
  }
  ck_assert_double_eq_tol(m11, want_map[0], 1e-12);
  ck_assert_double_eq_tol(mall, want_map[1], 1e-12);
  free(per);
  free(g);
  free(d);
  od_map_destroy(m);
}

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

START_TEST(test_map_numpy) {
  check_random(rc0_gt, COUNT(rc0_gt), rc0_det, COUNT(rc0_det), rc0_ap, rc0_map, 8, 4);
  check_random(rc1_gt, COUNT(rc1_gt), rc1_det, COUNT(rc1_det), rc1_ap, rc1_map, 20, 6);
}
END_TEST

static Suite *detect_suite(void) {
  Suite *s = suite_create("detect");
  TCase *tc = tcase_create("decode_nms");
  tcase_add_test(tc, test_decode);
  tcase_add_test(tc, test_nms);
  tcase_add_test(tc, test_nms_ties);
  suite_add_tcase(s, tc);
  tc = tcase_create("map");
  tcase_add_test(tc, test_map_perfect);
  tcase_add_test(tc, test_map_curve);
  tcase_add_test(tc, test_map_difficult);
  tcase_add_test(tc, test_map_duplicates);
  tcase_add_test(tc, test_map_threshold);
  tcase_add_test(tc, test_map_errors);
  tcase_add_test(tc, test_map_numpy);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(detect_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
