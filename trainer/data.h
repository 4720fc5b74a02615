/* trainer/data.h: training data sources. A source yields batches of normalised NCHW float images
 * (and, for detection formats, ground truth) at a requested size; loading runs on worker threads
 * ahead of the trainer. Every source is deterministic for a seed and a step, so a resumed run sees
 * the same batches as an uninterrupted one (od_data_seek). Bad files are skipped with a report
 * (counted in od_data_stats) rather than stopping the run. */
#ifndef OD_DATA_H
#define OD_DATA_H

#include <stdint.h>

#include "loaders/manifest.h"
#include "runtime/status.h"

#define OD_MAX_GT 64 /* boxes per image kept for the detection loss */

struct od_gt_box {
  float x, y, w, h;   /* centre and size, normalised to [0, 1] of the network input */
  int label;
  float score;        /* mixup weight (1 without mixup) */
  int difficult;
};

struct od_batch {
  int n, c, h, w;
  float *images;                  /* [n, c, h, w], owned by the source, valid until the next call */
  int *n_gt;                      /* [n] boxes per image (detection formats; NULL otherwise) */
  struct od_gt_box *gt;           /* [n, OD_MAX_GT] */
};

struct od_data_stats {
  int64_t images_read;
  int64_t skipped;                /* corrupt or unreadable files, each reported once on stderr */
};

struct od_data;

/* Opens the source of cfg for training batches of batch_size images with c channels. For random
 * data, h and w come from the model's input (passed in); others use cfg->size_*. */
enum od_status od_data_open(const struct od_data_cfg *cfg, int batch_size, int c, int h, int w, uint64_t seed,
                            struct od_data **out, struct od_err *err);

/* The batch for training step `step` (the size for multi-scale training is drawn from the seed and
 * the step, so every step is reproducible). */
enum od_status od_data_batch(struct od_data *d, int64_t step, struct od_batch *out, struct od_err *err);

void od_data_stats(const struct od_data *d, struct od_data_stats *out);
void od_data_close(struct od_data *d);

#endif
