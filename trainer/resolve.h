/* trainer/resolve.h: binding the manifest's tensor references to graph values.
 *
 * A reference is a value name, or node:NAME:out:K / node:NAME:in:K. Exporters rename and fuse:
 * paddle2onnx folds the conv-bias elementwise_add into the Conv, so 'conv2d_20.tmp_1' (the add's
 * output in Paddle) may only exist as 'conv2d_20.tmp_0' (the Conv's). When a name is missing and a
 * sibling 'X.tmp_K' is produced by a Conv/ConvTranspose/Gemm that carries a bias, the reference
 * binds to it and says so. An unknown reference lists the closest names. */
#ifndef OD_RESOLVE_H
#define OD_RESOLVE_H

#include "runtime/graph.h"
#include "runtime/status.h"

struct od_ref_binding {
  int value;          /* value id */
  char how[300];      /* "value 'x'", "node 'conv1' output 0 ('y')", "'a.tmp_0' (bias folded into ...)" */
};

/* Resolves ref in g. where names the JSON path and model the file, for messages:
 * "pairs[2].teacher: no tensor 'conv2d_6.tmp_1' in teacher.onnx; closest: conv2d_6.tmp_0, ..." */
enum od_status od_ref_resolve(const struct od_graph *g, const char *ref, const char *model, const char *where,
                              struct od_ref_binding *out, struct od_err *err);

#endif
