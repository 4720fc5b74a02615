/* trainer/untie.h: storage sharing is not weight tying.
 *
 * Exporters share storage: PyTorch's exporter deduplicates equal initializers (freshly initialised
 * BatchNormalization scales of 1 and biases of 0 all become one tensor, read through Identity
 * nodes), and any exporter may let several layers read one tensor. Trained as is, those layers
 * would be tied. With "untie_shared" (the default) each weight use gets its own parameter:
 *   - Identity(P) -> V where V feeds weight inputs: in the graph those inputs read a new parameter
 *     V' (a copy of P); in the file the Identity reads V' (a new initializer), so the exported
 *     student keeps its nodes, names, inputs and outputs.
 *   - P read by weight inputs of several nodes: each node after the first reads its own copy (a new
 *     initializer; that node's input is renamed in the file).
 * Without untying, Identity(P) is still looked through (the weight inputs read P directly), so the
 * tied tensor trains as one parameter instead of being frozen by constant folding. */
#ifndef OD_UNTIE_H
#define OD_UNTIE_H

#include <stdbool.h>

#include "loaders/onnx_import.h"
#include "runtime/status.h"

/* Rewrites m's graph (and, when untying, its proto) as described; *n_untied gets how many new
 * parameters were made. Call before choosing parameters and compiling. */
enum od_status od_untie_shared(struct od_model *m, bool untie, int *n_untied, struct od_err *err);

#endif
