/* ops/batchnorm.h: BatchNormalization's parsed attributes, shared by the CPU kernel
 * (ops/batchnorm.c) and the CUDA one (ops/batchnorm.cu). */
#ifndef OD_OPS_BATCHNORM_H
#define OD_OPS_BATCHNORM_H

#include <stdbool.h>

struct bn_attrs {
  float epsilon, momentum;
  bool training_mode;  /* attribute (opset >= 14) */
  bool spatial;        /* opset < 9 */
};

#endif
