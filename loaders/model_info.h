/* loaders/model_info.h: what `onnx-distill inspect` prints, as text or JSON. */
#ifndef OD_MODEL_INFO_H
#define OD_MODEL_INFO_H

#include <stdbool.h>
#include <stdio.h>

#include "loaders/onnx_import.h"

/* Writes IR version, producer, opsets, inputs and outputs (dtype and shape, symbolic dims by name),
 * the op-type histogram, parameter count and bytes, and the ops the runtime cannot run yet. */
void od_model_info_print(const struct od_model *m, FILE *f, bool json);

#endif
