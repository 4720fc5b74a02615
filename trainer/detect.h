/* trainer/detect.h: YOLOv3 post-processing and the VOC metric, for `onnx-distill eval` and the
 * trainer's periodic evaluation.
 *
 * - od_yolo_decode: Paddle's yolo_box (clip_bbox true, scale_x_y 1) on the raw head maps of one
 *   image: per output, anchor, cell: conf = sigma(obj); kept when conf >= conf_thresh; box centre
 *   ((i + sigma(x)) / W * im_w, (j + sigma(y)) / H * im_h), size (e^w aw / in_w * im_w,
 *   e^h ah / in_h * im_h), corners clipped to [0, im_w - 1] x [0, im_h - 1]; class scores
 *   conf * sigma(cls_c). Boxes are in ORIGINAL image pixels (im_w x im_h), the network input being
 *   in_w x in_h (Paddle uses downsample * H for both; the same for the square inputs it evaluates).
 * - od_multiclass_nms: Paddle's multiclass_nms (CPU kernel) with normalized = false (areas and
 *   intersections count +1 pixel), per class: candidates with score > score_threshold, stable
 *   sort by score, the first nms_top_k, greedy suppression of IoU > nms_threshold; then the
 *   keep_top_k best over all classes. PaddleDetection's YOLOv3 eval: score 0.01, nms_top_k 1000,
 *   IoU 0.45, keep_top_k 100, background_label -1 (none).
 * - struct od_map: VOC mAP at IoU 0.5, 11-point (VOC2007, PaddleDetection's map_type 11point)
 *   and all-point (VOC2010+ devkit: area under the monotone precision envelope); rules in
 *   trainer/detect.c. */
#ifndef OD_DETECT_H
#define OD_DETECT_H

#include <stdbool.h>
#include <stdint.h>

#include "loaders/manifest.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

/* PaddleDetection's yolo_box conf_thresh: 0.01 in the static configs (the NMS score threshold),
 * 0.005 in the 2.x dygraph configs. Both give the same detections: every class score is
 * conf * sigma(cls) <= conf, and NMS drops scores <= 0.01 anyway. */
#define OD_YOLO_CONF_THRESH 0.005f

/* A detection, or a ground-truth box: corners in image pixels, inclusive (VOC convention). */
struct od_det {
  float x1, y1, x2, y2;
  float score;     /* detections; ignored for gts */
  int label;       /* class index 0..C-1 */
  int difficult;   /* gts: VOC "difficult" flag; ignored for detections */
};

/* Candidate boxes of one image: boxes [n, 4] (x1, y1, x2, y2), scores [n, num_classes]. */
struct od_yolo_cands {
  int n, cap, num_classes;
  float *boxes;
  float *scores;
};

void od_yolo_cands_free(struct od_yolo_cands *c); /* frees the arrays, zeroes *c */

/* Decodes image `image` of the head maps X[0..n_out) (checked as od_yolov3_check does) into *out
 * (replacing its contents; the arrays grow as needed). Candidates come in Paddle's order: output,
 * anchor, row, column; only those with conf >= conf_thresh are listed (Paddle leaves the others
 * as zero rows, which NMS never keeps). in_h, in_w: the network input; im_h, im_w: the original
 * image the boxes are scaled to. */
enum od_status od_yolo_decode(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                              int image, int in_h, int in_w, int im_h, int im_w, float conf_thresh,
                              struct od_yolo_cands *out, struct od_err *err);

struct od_nms_cfg {
  float score_threshold;  /* keep scores > this (default 0.01) */
  int nms_top_k;          /* candidates per class before NMS, -1 all (default 1000) */
  float nms_threshold;    /* suppress IoU > this (default 0.45) */
  float nms_eta;          /* adaptive threshold factor, 1 = off (default 1) */
  int keep_top_k;         /* detections per image after NMS, -1 all (default 100) */
  bool normalized;        /* false: +1 pixel areas (default false) */
  int background_label;   /* class skipped, -1 none (default -1) */
};

void od_nms_cfg_default(struct od_nms_cfg *c);

/* NMS over n boxes [n, 4] with scores [n, num_classes] (row per box). *out is malloc'd (free it;
 * NULL when *n_out is 0); detections come per class in ascending class order, each class by
 * descending score (Paddle's output order). */
enum od_status od_multiclass_nms(const struct od_nms_cfg *cfg, const float *boxes, const float *scores, int n,
                                 int num_classes, struct od_det **out, int *n_out, struct od_err *err);

/* ---- VOC mAP ---- */

struct od_map_cfg {
  int num_classes;
  double iou_thresh;        /* a match needs IoU > this (default 0.5) */
  bool evaluate_difficult;  /* default false: difficult gts neither count nor match */
  bool normalized;          /* default false: +1 pixel areas (PaddleDetection, VOC devkit) */
};

void od_map_cfg_default(int num_classes, struct od_map_cfg *c);

struct od_ap {
  double ap11, ap_all;   /* 0 for a class without detections */
  int64_t n_gt;          /* gts that count (non-difficult unless evaluate_difficult) */
  int64_t n_det, n_tp;   /* detections recorded (ignored ones excluded), true positives */
  bool valid;            /* n_gt > 0: the class is part of the mean */
};

struct od_map;

enum od_status od_map_create(const struct od_map_cfg *cfg, struct od_map **out, struct od_err *err);

/* Matches one image's detections to its gts (see trainer/detect.c) and records them. Fails on a
 * label outside [0, num_classes) (the map is left unchanged) or out of memory. */
enum od_status od_map_add_image(struct od_map *m, const struct od_det *dets, int n_dets, const struct od_det *gts,
                                int n_gts, struct od_err *err);

/* mAP over the classes with gts (0 when none has), both metrics; per_class[num_classes] may be
 * NULL. Can be called any number of times while images are added. */
enum od_status od_map_compute(const struct od_map *m, double *map11, double *map_all, struct od_ap *per_class,
                              struct od_err *err);

int64_t od_map_images(const struct od_map *m);
void od_map_destroy(struct od_map *m);

/* ---- evaluation of a batch ---- */

struct od_eval_image; /* trainer/data.h */

/* Called with each image's detections (after NMS, original pixels) before they are scored. */
typedef void (*od_dets_fn)(void *ctx, const struct od_eval_image *image, const struct od_det *dets, int n_dets);

/* The whole post-processing of the first n images of a batch of head maps X (network input
 * in_h x in_w): od_yolo_decode to each image's original size (info[k].width/height), NMS, then
 * od_map_add_image against info[k]'s ground truth. scratch holds the candidate arrays between
 * calls (od_yolo_cands_free it at the end); on_dets may be NULL. */
enum od_status od_detect_eval_batch(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                                    int in_h, int in_w, const struct od_eval_image *info, int n,
                                    const struct od_nms_cfg *nms, float conf_thresh, struct od_map *m,
                                    struct od_yolo_cands *scratch, od_dets_fn on_dets, void *ctx,
                                    struct od_err *err);

#endif
