/* ops/nms.c: ONNX NonMaxSuppression (opsets 10, 11; 11 only changed the docs' wording).
 * Spec: https://onnx.ai/onnx/operators/onnx__NonMaxSuppression.html
 *
 * Inputs: boxes [num_batches, spatial, 4] float, scores [num_batches, classes, spatial] float,
 * optional max_output_boxes_per_class (int64, one value; absent = 0: nothing selected),
 * iou_threshold (float, absent = 0), score_threshold (float; absent = no score filter). An empty
 * tensor counts as absent. Attribute center_point_box: 0 = [y1, x1, y2, x2] (corners in any order),
 * 1 = [x_center, y_center, width, height].
 * Output selected_indices [num_selected, 3] int64 rows (batch, class, box).
 *
 * For each batch and class, in that order: keep the boxes whose score is > score_threshold, sort
 * by score descending (equal scores: lower box index first), then greedily select a box unless its
 * IoU with an already selected box of the same class is > iou_threshold, until
 * max_output_boxes_per_class are selected. The IoU arithmetic is float32 in the order of the ONNX
 * reference implementation, so boxes exactly at the threshold go the same way.
 *
 * The output length depends on the data: infer runs the selection to count when every input value
 * is known, and otherwise asks for values (needs_values) so the executor shapes it at run time. */
#include <stdlib.h>
#include <string.h>

#include "ops/attr.h"
#include "ops/op.h"

struct nms_attrs {
  int center_point_box;
};

static enum od_status nms_parse(const struct od_node *n, void *vattrs, struct od_err *err) {
  struct nms_attrs *a = vattrs;
  int64_t c;
  OD_TRY(od_attr_get_int(n, "center_point_box", 0, &c, err));
  if (c != 0 && c != 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute 'center_point_box' = %lld (must be 0 or 1)", (long long)c);
  a->center_point_box = (int)c;
  if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "NonMaxSuppression expects the inputs boxes and scores");
  return OD_OK;
}

/* A box as its min/max corners. */
struct nms_box {
  float x_min, x_max, y_min, y_max;
};

struct nms_cand {
  float score;
  int64_t idx;
};

/* Everything the selection reads, resolved from the inputs. */
struct nms_args {
  const float *boxes, *scores;
  int64_t batches, classes, spatial;
  int64_t max_out;
  float iou_threshold;
  bool has_score_threshold;
  float score_threshold;
  int center_point_box;
};

static int nms_cand_cmp(const void *pa, const void *pb) {
  const struct nms_cand *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void nms_corners(const float *b, int center_point_box, struct nms_box *o) {
  if (center_point_box == 0) { /* [y1, x1, y2, x2], either order */
    o->x_min = b[1] < b[3] ? b[1] : b[3];
    o->x_max = b[1] < b[3] ? b[3] : b[1];
    o->y_min = b[0] < b[2] ? b[0] : b[2];
    o->y_max = b[0] < b[2] ? b[2] : b[0];
  } else { /* [x_center, y_center, width, height] */
    float wh = b[2] / 2, hh = b[3] / 2;
    o->x_min = b[0] - wh;
    o->x_max = b[0] + wh;
    o->y_min = b[1] - hh;
    o->y_max = b[1] + hh;
  }
}

/* True when IoU(a, b) > threshold. */
static bool nms_suppress(const struct nms_box *a, const struct nms_box *b, float threshold) {
  float ix_min = a->x_min > b->x_min ? a->x_min : b->x_min;
  float ix_max = a->x_max < b->x_max ? a->x_max : b->x_max;
  if (ix_max <= ix_min) return false;
  float iy_min = a->y_min > b->y_min ? a->y_min : b->y_min;
  float iy_max = a->y_max < b->y_max ? a->y_max : b->y_max;
  if (iy_max <= iy_min) return false;
  float inter = (ix_max - ix_min) * (iy_max - iy_min);
  if (inter <= 0) return false;
  float area_a = (a->x_max - a->x_min) * (a->y_max - a->y_min);
  float area_b = (b->x_max - b->x_min) * (b->y_max - b->y_min);
  float uni = area_a + area_b - inter;
  if (area_a <= 0 || area_b <= 0 || uni <= 0) return false;
  return inter / uni > threshold;
}

/* Runs the selection. Writes rows into out (if not NULL, capacity cap rows) and the count into
 * *count. */
static enum od_status nms_run(const struct nms_args *g, int64_t *out, int64_t cap, int64_t *count,
                              struct od_err *err) {
  int64_t n = g->spatial, total = 0;
  *count = 0;
  if (g->max_out <= 0 || n == 0) return OD_OK;
  struct nms_box *bx = malloc((size_t)n * sizeof *bx);
  struct nms_cand *cand = malloc((size_t)n * sizeof *cand);
  int64_t *sel = malloc((size_t)n * sizeof *sel);
  if (!bx || !cand || !sel) {
    free(bx);
    free(cand);
    free(sel);
    return od_err_set(err, OD_ERR_OOM, "out of memory for %lld boxes", (long long)n);
  }
  for (int64_t b = 0; b < g->batches; b++) {
    for (int64_t i = 0; i < n; i++) nms_corners(g->boxes + (b * n + i) * 4, g->center_point_box, &bx[i]);
    for (int64_t c = 0; c < g->classes; c++) {
      const float *sc = g->scores + (b * g->classes + c) * n;
      int64_t nc = 0;
      for (int64_t i = 0; i < n; i++)
        if (!g->has_score_threshold || sc[i] > g->score_threshold) cand[nc++] = (struct nms_cand){sc[i], i};
      qsort(cand, (size_t)nc, sizeof *cand, nms_cand_cmp);
      int64_t ns = 0;
      for (int64_t k = 0; k < nc && ns < g->max_out; k++) {
        const struct nms_box *cb = &bx[cand[k].idx];
        bool keep = true;
        for (int64_t s = 0; s < ns && keep; s++)
          if (nms_suppress(cb, &bx[sel[s]], g->iou_threshold)) keep = false;
        if (!keep) continue;
        sel[ns++] = cand[k].idx;
        if (out && total < cap) {
          out[total * 3 + 0] = b;
          out[total * 3 + 1] = c;
          out[total * 3 + 2] = cand[k].idx;
        }
        total++;
      }
    }
  }
  free(bx);
  free(cand);
  free(sel);
  *count = total;
  return OD_OK;
}

static const struct od_tensor *nms_opt(const struct od_tensor *t) {
  return t && t->dtype != OD_DTYPE_UNDEFINED && od_tensor_numel(t) > 0 ? t : NULL;
}

/* Checks shapes and dtypes and resolves the arguments. *known = false when a value the selection
 * needs is not known yet (infer at compile time). */
static enum od_status nms_args_get(const struct nms_attrs *a, const struct od_tensor *const in[5], struct nms_args *g,
                                   bool *known, struct od_err *err) {
  const struct od_tensor *boxes = in[0], *scores = in[1];
  char s1[128], s2[128];
  if (boxes->dtype != OD_DTYPE_FLOAT || scores->dtype != OD_DTYPE_FLOAT)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "boxes and scores must be float, not %s and %s",
                      od_dtype_name(boxes->dtype), od_dtype_name(scores->dtype));
  if (boxes->rank != 3 || boxes->dims[2] != 4 || scores->rank != 3 || scores->dims[0] != boxes->dims[0] ||
      scores->dims[2] != boxes->dims[1])
    return od_err_set(err, OD_ERR_SHAPE,
                      "boxes %s and scores %s do not fit [num_batches, spatial, 4] and [num_batches, classes, spatial]",
                      od_shape_str(boxes->rank, boxes->dims, s1, sizeof s1),
                      od_shape_str(scores->rank, scores->dims, s2, sizeof s2));
  memset(g, 0, sizeof *g);
  g->batches = boxes->dims[0];
  g->spatial = boxes->dims[1];
  g->classes = scores->dims[1];
  g->center_point_box = a->center_point_box;
  g->boxes = boxes->data;
  g->scores = scores->data;
  *known = boxes->data && scores->data;
  const struct od_tensor *mo = nms_opt(in[2]), *iou = nms_opt(in[3]), *st = nms_opt(in[4]);
  if (mo && mo->dtype != OD_DTYPE_INT64)
    return od_err_set(err, OD_ERR_SHAPE, "max_output_boxes_per_class must be int64, not %s", od_dtype_name(mo->dtype));
  if ((iou && iou->dtype != OD_DTYPE_FLOAT) || (st && st->dtype != OD_DTYPE_FLOAT))
    return od_err_set(err, OD_ERR_SHAPE, "iou_threshold and score_threshold must be float");
  if (mo) {
    if (mo->data) g->max_out = ((const int64_t *)mo->data)[0];
    else *known = false;
  }
  if (iou) {
    if (iou->data) g->iou_threshold = ((const float *)iou->data)[0];
    else *known = false;
  }
  if (st) {
    g->has_score_threshold = true;
    if (st->data) g->score_threshold = ((const float *)st->data)[0];
    else *known = false;
  }
  if (g->iou_threshold < 0 || g->iou_threshold > 1)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "iou_threshold = %g (must be in [0, 1])", (double)g->iou_threshold);
  return OD_OK;
}

static enum od_status nms_infer(struct od_infer_ctx *ctx) {
  const struct od_tensor *in[5] = {NULL};
  for (int i = 0; i < 5 && i < ctx->n_in; i++) in[i] = &ctx->in[i];
  struct nms_args g;
  bool known;
  OD_TRY(nms_args_get(ctx->attrs, in, &g, &known, ctx->err));
  struct od_tensor *Y = &ctx->out[0];
  Y->dtype = OD_DTYPE_INT64;
  Y->rank = 2;
  Y->dims[1] = 3;
  if (!known) {
    /* an empty selection is known without values */
    if (g.batches == 0 || g.classes == 0 || g.spatial == 0) {
      Y->dims[0] = 0;
      return OD_OK;
    }
    Y->dims[0] = OD_DIM_UNKNOWN;
    ctx->needs_values = true;
    return OD_OK;
  }
  int64_t count;
  OD_TRY(nms_run(&g, NULL, 0, &count, ctx->err));
  Y->dims[0] = count;
  return OD_OK;
}

static enum od_status nms_forward_cpu(struct od_kernel_ctx *ctx) {
  const struct od_tensor *in[5] = {NULL};
  for (int i = 0; i < 5 && i < ctx->n_in; i++) in[i] = ctx->in[i];
  struct nms_args g;
  bool known;
  OD_TRY(nms_args_get(ctx->attrs, in, &g, &known, ctx->err));
  if (!known) return od_err_set(ctx->err, OD_ERR_INTERNAL, "inputs have no values at run time");
  struct od_tensor *Y = ctx->out[0];
  int64_t count;
  OD_TRY(nms_run(&g, Y->data, Y->dims[0], &count, ctx->err));
  if (count != Y->dims[0])
    return od_err_set(ctx->err, OD_ERR_INTERNAL, "selected %lld boxes, but the output was shaped for %lld",
                      (long long)count, (long long)Y->dims[0]);
  return OD_OK;
}

const struct od_op_kernels od_kernels_non_max_suppression = {
    .attrs_size = sizeof(struct nms_attrs),
    .parse = nms_parse,
    .infer = nms_infer,
    .forward = {[OD_DEVICE_CPU] = nms_forward_cpu},
    .no_grad_inputs = 0x1f, /* indices out: no input takes a gradient */
    .flags = OD_OP_FOLDABLE,
    .dtypes = "float (boxes, scores); int64 output",
};
