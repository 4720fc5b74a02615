/* ops/attr.h: typed attribute access for parse functions. A present attribute of the wrong type
 * is an error naming it ("attribute 'axis' must be INT, not FLOATS"); an absent one gives the
 * default. Messages are prefixed with the node by the caller. */
#ifndef OD_ATTR_H
#define OD_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/status.h"

enum od_status od_attr_get_int(const struct od_node *n, const char *name, int64_t def, int64_t *out,
                               struct od_err *err);
enum od_status od_attr_get_float(const struct od_node *n, const char *name, float def, float *out,
                                 struct od_err *err);
/* *out points into the node (valid while the graph lives); def may be NULL. */
enum od_status od_attr_get_string(const struct od_node *n, const char *name, const char *def,
                                  const char **out, struct od_err *err);
/* Copies at most max values into out and sets *count; absent: *count = 0 and *present = false.
 * More than max values is an error. present may be NULL. */
enum od_status od_attr_get_ints(const struct od_node *n, const char *name, int64_t *out, size_t max,
                                size_t *count, bool *present, struct od_err *err);
enum od_status od_attr_get_floats(const struct od_node *n, const char *name, float *out, size_t max,
                                  size_t *count, bool *present, struct od_err *err);

/* Name of an attribute type ("INT", "FLOATS", ...). */
const char *od_attr_type_name(int type);

/* Normalises an axis in [-rank, rank) to [0, rank); error naming what otherwise. */
enum od_status od_axis_normalize(int64_t axis, int rank, const char *what, int *out, struct od_err *err);

#endif
