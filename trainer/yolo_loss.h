/* trainer/yolo_loss.h: the YOLOv3 detection loss of PaddleDetection (task_loss "yolov3"):
 * fluid.layers.yolov3_loss per head output, reduce_mean over the batch, summed over the outputs
 * (reference/method.md 1.5; Paddle's kernel paddle/fluid/operators/detection/yolov3_loss_op.h).
 * The exact conventions (anchor assignment, duplicates, ignore region, label smoothing, where we
 * differ from Paddle and why) are written out at the top of trainer/yolo_loss.c.
 *
 * Head maps X[i]: [N, A_i*(5+C), H_i, W_i] (raw logits), PaddleDetection's channel layout: anchor
 * a of mask i owns channels a*(5+C) + {0: x, 1: y, 2: w, 3: h, 4: objectness, 5..5+C-1: classes}.
 * Output i uses cfg->anchor_masks[i] (indices into cfg->anchors, pixels of the network input) and
 * stride cfg->downsample[i]. Float or double maps (each its own dtype); sums run in double. */
#ifndef OD_YOLO_LOSS_H
#define OD_YOLO_LOSS_H

#include "loaders/manifest.h"
#include "runtime/pool.h"
#include "runtime/status.h"
#include "runtime/tensor.h"
#include "trainer/data.h"

/* Checks n_out head maps against cfg before anything runs (only dtypes and dims are read):
 * one output per anchor mask, rank 4, float/double, the same batch, channels = mask_len*(5+C)
 * (the message says which num_classes or anchors per mask the channel count would fit), anchor
 * indices in range, and strides consistent with one input size (outputs listed in the order of
 * anchor_masks/downsample, stride 32 first for PaddleDetection). Messages name
 * "task_loss.outputs[i] ('name')". */
enum od_status od_yolov3_check(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                               struct od_err *err);

/* The loss of a batch b (input size b->h x b->w; ground truth b->gt, b->n_gt: centre/size in [0, 1]
 * of the input, label in [0, C), mixup score): *value = sum_i mean_n L_i(n), WITHOUT cfg->weight
 * (the caller applies it). When dX is non-NULL, dX[i] += scale * dL/dX[i] (dX[i] may be NULL to
 * skip; each dX[i] has X[i]'s dtype and shape). Runs od_yolov3_check first; fails on a batch size
 * that differs from the maps', an input size the maps' strides do not fit, a label outside
 * [0, C), or a batch without ground truth. */
enum od_status od_yolov3_loss(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                              const struct od_batch *b, double scale, double *value, struct od_tensor *const *dX,
                              struct od_err *err);

/* The same on a thread pool (NULL: serial): images and outputs are split over the threads; the
 * value and gradients are identical for any number of threads. */
enum od_status od_yolov3_loss_pool(const struct od_task_loss_cfg *cfg, int n_out, const struct od_tensor *const *X,
                                   const struct od_batch *b, double scale, double *value, struct od_tensor *const *dX,
                                   struct od_pool *pool, struct od_err *err);

#endif
