/* trainer/data.h: training data sources. A source yields batches of normalised NCHW float images
 * (and, for detection formats, ground truth) at a requested size; loading runs on worker threads
 * ahead of the trainer. Every source is deterministic for a seed and a step, so a resumed run sees
 * the same batches as an uninterrupted one (the step is an argument of od_data_batch; asking for
 * steps out of order only costs the prefetched work). Bad files are skipped with a report (counted
 * in od_data_stats) rather than stopping the run.
 *
 * Detection formats (voc, synthetic) apply the reference method's training augmentation; see the
 * comment at the top of trainer/data.c for the exact pipeline and conventions. */
#ifndef OD_DATA_H
#define OD_DATA_H

#include <stdint.h>

#include "loaders/manifest.h"
#include "runtime/status.h"

#define OD_MAX_GT 64 /* boxes per image kept for the detection loss */

struct od_gt_box {
  float x, y, w, h;   /* centre and size, normalised to [0, 1] of the network input */
  int label;
  float score;        /* gt_score: the mixup weight of the image the box came from (1 without mixup);
                         the two images of a mixed pair have weights f and 1 - f */
  int difficult;
};

struct od_batch {
  int n, c, h, w;
  float *images;                  /* [n, c, h, w], owned by the source, valid until the next call */
  int *n_gt;                      /* [n] boxes per image (detection formats; NULL otherwise) */
  struct od_gt_box *gt;           /* [n, OD_MAX_GT]; at most OD_PAD_BOXES used per image */
};

#define OD_PAD_BOXES 50 /* the reference's PadBox(num_max_boxes 50): boxes past the 50th are dropped */

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

/* ---- evaluation (detection formats) -------------------------------------------------------------
 * The val list (data.val, default test.txt; for synthetic data without a folder, the images the
 * generator puts in its test split) in list order, without augmentation: each image is resized to
 * size x size (bicubic, as the reference EvalReader's ResizeImage(interp 2)) and normalised with
 * data.mean/std. Alongside, per image, what a VOC mAP needs: the original size and the ground
 * truth in original pixels (x1, y1, x2, y2 as loaded: VOC numbers clipped to [0, w-1] x [0, h-1],
 * see loaders/voc.h; areas use the +1 pixel convention of PaddleDetection's VOC metric), class
 * index (in data.classes) and the difficult flag. Images whose JPEG cannot be decoded are reported,
 * counted in od_data_eval_stats().skipped and left out (so a batch can hold fewer images). The next
 * batch is decoded on a worker thread while the caller runs the current one. */

struct od_eval_gt {
  float x1, y1, x2, y2; /* original pixels */
  int label;
  int difficult;
};

struct od_eval_image {
  const char *path;     /* the JPEG (NULL for synthetic images drawn in memory) */
  int64_t index;        /* position in the val list */
  int width, height;    /* original size: the network input is a width x height -> size x size resize */
  int n_gt;
  const struct od_eval_gt *gt;
};

struct od_eval_batch {
  int n, c, h, w;                   /* n <= the batch_n asked for; 0 at the end of the list */
  float *images;                    /* [n, 3, size, size], owned by the iterator, valid until the next call */
  const struct od_eval_image *info; /* [n] */
};

struct od_data_eval;

/* Opens the val list of cfg (voc or synthetic) at size x size (size <= 0: cfg->size_max). */
enum od_status od_data_open_eval(const struct od_data_cfg *cfg, int size, struct od_data_eval **out,
                                 struct od_err *err);
/* Images in the val list (after leaving out missing files and malformed annotations). */
int od_data_eval_count(const struct od_data_eval *e);
/* The next up to batch_n images (batch_n may differ between calls); out->n == 0 once all were given. */
enum od_status od_data_eval_next(struct od_data_eval *e, int batch_n, struct od_eval_batch *out, struct od_err *err);
/* Back to the start of the list (for the next evaluation). */
void od_data_eval_rewind(struct od_data_eval *e);
void od_data_eval_stats(const struct od_data_eval *e, struct od_data_stats *out);
void od_data_eval_close(struct od_data_eval *e);

#endif
