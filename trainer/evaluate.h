/* trainer/evaluate.h: VOC mAP of a YOLOv3-style detector graph on the manifest's val list, shared
 * by `onnx-distill eval` and the trainer's eval_every. The graph is compiled for inference, sliced
 * to the head tensors (its own post-processing never runs); heads are decoded, NMS-ed and scored
 * by trainer/detect.h (PaddleDetection's eval settings). */
#ifndef OD_EVALUATE_H
#define OD_EVALUATE_H

#include <stdbool.h>
#include <stdint.h>

#include "loaders/manifest.h"
#include "runtime/device.h"
#include "runtime/graph.h"
#include "runtime/pool.h"
#include "trainer/data.h"
#include "trainer/detect.h"

struct od_eval_spec {
  const struct od_graph *g;
  int input;                        /* value id of the image input (NCHW, 3 channels) */
  const int *heads;                 /* value ids of the head maps, stride 32 first */
  const struct od_task_loss_cfg *tl;/* anchors, masks, downsample, classes */
  const struct od_data_cfg *data;   /* val list, mean/std */
  int size, batch;                  /* square input side; images per forward (the last batch is padded) */
  struct od_device *dev;
  struct od_pool *pool;
  od_dets_fn on_dets;               /* optional: every image's detections */
  void *ctx;
  bool progress;                    /* "eval N/M images" on stderr */
};

struct od_eval_result {
  double map11, map_all;            /* in [0, 1] */
  struct od_ap *per_class;          /* [tl->num_classes], malloc'd: free with od_eval_result_free */
  int64_t images;
  double seconds, net_seconds;      /* end to end; forward passes only */
  struct od_data_stats stats;       /* unreadable images skipped */
};

enum od_status od_evaluate(const struct od_eval_spec *spec, struct od_eval_result *out, struct od_err *err);

void od_eval_result_free(struct od_eval_result *r);

#endif
