/* trainer/data_internal.h: what trainer/data.c shares with the detection sources in
 * trainer/data_det.c. Not for use outside the data sources. */
#ifndef OD_DATA_INTERNAL_H
#define OD_DATA_INTERNAL_H

#include "trainer/data.h"

/* The input size of a step: fixed (h x w), or for multi-scale training ([min, max, step] in cfg)
 * min + k * step with k drawn from (seed, step). */
void od_data_step_size(const struct od_data_cfg *cfg, uint64_t seed, int h, int w, int64_t step, int *oh, int *ow);

/* The detection training source (voc, synthetic). */
struct od_detsrc;
enum od_status od_detsrc_open(const struct od_data_cfg *cfg, int batch_size, int h, int w, uint64_t seed,
                           struct od_detsrc **out, struct od_err *err);
enum od_status od_detsrc_batch(struct od_detsrc *d, int64_t step, struct od_batch *out, struct od_err *err);
void od_detsrc_stats(const struct od_detsrc *d, struct od_data_stats *out);
void od_detsrc_close(struct od_detsrc *d);

#endif
