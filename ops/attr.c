/* ops/attr.c: typed attribute access (see attr.h). */
#include "ops/attr.h"

#include <string.h>

static const char *const type_names[] = {"UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH",
                                         "FLOATS", "INTS", "STRINGS", "TENSORS", "GRAPHS",
                                         "SPARSE_TENSOR", "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};

const char *od_attr_type_name(int type) {
  return type >= 0 && type <= 14 ? type_names[type] : "UNKNOWN";
}

static enum od_status typed(const struct od_node *n, const char *name, enum od_attr_type want,
                            const struct od_attr **out, struct od_err *err) {
  const struct od_attr *a = od_node_attr(n, name);
  *out = NULL;
  if (!a) return OD_OK;
  if (a->type != want)
    return od_err_set(err, OD_ERR_INVALID_MODEL, "attribute '%s' must be %s, not %s", name,
                      od_attr_type_name(want), od_attr_type_name(a->type));
  *out = a;
  return OD_OK;
}

enum od_status od_attr_get_int(const struct od_node *n, const char *name, int64_t def, int64_t *out,
                               struct od_err *err) {
  const struct od_attr *a;
  OD_TRY(typed(n, name, OD_ATTR_INT, &a, err));
  *out = a ? a->i : def;
  return OD_OK;
}

enum od_status od_attr_get_float(const struct od_node *n, const char *name, float def, float *out,
                                 struct od_err *err) {
  const struct od_attr *a;
  OD_TRY(typed(n, name, OD_ATTR_FLOAT, &a, err));
  *out = a ? a->f : def;
  return OD_OK;
}

enum od_status od_attr_get_string(const struct od_node *n, const char *name, const char *def,
                                  const char **out, struct od_err *err) {
  const struct od_attr *a;
  OD_TRY(typed(n, name, OD_ATTR_STRING, &a, err));
  *out = a ? a->s : def;
  return OD_OK;
}

enum od_status od_attr_get_ints(const struct od_node *n, const char *name, int64_t *out, size_t max,
                                size_t *count, bool *present, struct od_err *err) {
  const struct od_attr *a;
  OD_TRY(typed(n, name, OD_ATTR_INTS, &a, err));
  if (present) *present = a != NULL;
  *count = 0;
  if (!a) return OD_OK;
  if (a->n > max)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "attribute '%s' has %zu values; at most %zu are supported", name,
                      a->n, max);
  if (a->n) memcpy(out, a->ints, a->n * sizeof *out);
  *count = a->n;
  return OD_OK;
}

enum od_status od_attr_get_floats(const struct od_node *n, const char *name, float *out, size_t max,
                                  size_t *count, bool *present, struct od_err *err) {
  const struct od_attr *a;
  OD_TRY(typed(n, name, OD_ATTR_FLOATS, &a, err));
  if (present) *present = a != NULL;
  *count = 0;
  if (!a) return OD_OK;
  if (a->n > max)
    return od_err_set(err, OD_ERR_UNSUPPORTED, "attribute '%s' has %zu values; at most %zu are supported", name,
                      a->n, max);
  if (a->n) memcpy(out, a->floats, a->n * sizeof *out);
  *count = a->n;
  return OD_OK;
}

enum od_status od_axis_normalize(int64_t axis, int rank, const char *what, int *out, struct od_err *err) {
  if (axis < -rank || axis >= (rank ? rank : 1))
    return od_err_set(err, OD_ERR_SHAPE, "%s %lld is out of range for rank %d", what, (long long)axis, rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return OD_OK;
}
