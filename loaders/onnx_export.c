/* loaders/onnx_export.c: struct od_model -> ONNX file (see onnx_export.h).
 *
 * Order of work:
 *  1. Values: every INITIALIZER and CONSTANT value of the graph is written from the parameter block
 *     into the kept ModelProto, in place and in the encoding the tensor already uses (float_data
 *     stays float_data, raw_data stays raw_data, float16 bit patterns stay in int32_data, ...). An
 *     int32_data element whose value did not change keeps its original encoding, so a file that
 *     wrote int8 -1 as 255 reads back the same. Sizes never change, so this needs no allocation.
 *  2. Placement: tensors that were external stay external (same location, offset, length, in the
 *     output's folder). OD_EXTERNAL_ALWAYS, or AUTO when the model would pass protobuf's 2 GiB
 *     limit, moves every inline parameter of at least `threshold` bytes to the data file; NEVER
 *     brings external tensors inline. These changes are made on the TensorProto structs for the
 *     time of the write only: each struct is saved first and restored afterwards, so a second
 *     export starts from the same proto.
 *  3. Files: each external data file and then the model are written to a temporary file in their
 *     final folder, fsync'd, and renamed over the target; a failure removes every temporary file.
 *
 * External data follows https://onnx.ai/onnx/repo-docs/ExternalData.md: entries "location",
 * "offset", "length" (in that order, as onnx.external_data_helper.set_external_data writes them),
 * data little-endian as in raw_data. Tensors moved out by us start on 64 KiB boundaries when over
 * 1 MiB (onnx_ir's mmap alignment: allocation granularity on Windows) and 64 bytes otherwise.
 * Host byte order is assumed little-endian, as in onnx_tensor.c. */
#include "loaders/onnx_export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loaders/onnx_tensor.h"

#define PROTOBUF_LIMIT ((uint64_t)INT32_MAX)   /* protobuf refuses messages of 2 GiB or more */
#define DEFAULT_THRESHOLD 1024                /* onnx.save's size_threshold default */
#define BIG_TENSOR_BYTES (1024 * 1024)
#define BIG_TENSOR_ALIGN (64 * 1024)
#define SMALL_TENSOR_ALIGN 64
#define WRITE_BUFFER_BYTES (1 << 20)
#define COPY_CHUNK_BYTES (4 << 20)

/* One external data file being written: its location as the entries name it, normalised
 * ("./a//b" -> "a/b") so two spellings of one file share a table slot. */
struct ext_file {
  char *key;          /* normalised location */
  char *final_path;   /* output folder + location */
  char *tmp_path;     /* temporary file, NULL until opened */
  int fd;             /* -1 until opened */
  uint64_t end;       /* end of the last range reserved in this file */
};

/* One tensor's bytes to place in an external data file. */
struct ext_write {
  int file;               /* index in exporter.files */
  uint64_t offset;
  uint64_t length;
  const void *data;       /* parameter block bytes, or NULL: copy from src_path */
  char *src_path;         /* the source model's data file (tensors that are not parameters) */
  uint64_t src_offset;
  const char *name;       /* tensor name for messages (owned by the proto) */
};

/* A TensorProto changed for the time of the write, with what restores it. */
struct saved_tensor {
  Onnx__TensorProto *t;
  Onnx__TensorProto orig;                   /* shallow copy taken before the change */
  Onnx__StringStringEntryProto **entries;   /* external_data we allocated, or NULL */
  size_t n_entries;
  void *owned;                              /* inline bytes we read (NEVER mode), or NULL */
};

/* One parameter of the graph and where it lives in the proto. */
struct param_ref {
  const struct od_value *v;
  Onnx__TensorProto *t;         /* initializer or Constant 'value'; NULL for value_float & co */
  Onnx__AttributeProto *attr;   /* the Constant's value* attribute; NULL for initializers */
};

struct exporter {
  struct od_model *m;
  Onnx__ModelProto *proto;
  enum od_external_mode mode;
  size_t threshold;
  const char *out_path;
  char *out_dir;                /* folder of the output ("." when the path has none) */
  char *out_base;               /* file name of the output */
  char *data_file;              /* location for tensors we move out */
  struct param_ref *params;
  size_t n_params;
  Onnx__TensorProto **sorted_tensors; /* params' TensorProtos sorted by address, for lookup */
  size_t n_sorted;
  Onnx__TensorProto **others;   /* external tensors that are not parameters (subgraphs, attributes) */
  size_t n_others, cap_others;
  struct ext_file *files;
  size_t n_files, cap_files;
  struct ext_write *writes;
  size_t n_writes, cap_writes;
  struct saved_tensor *saved;
  size_t n_saved, cap_saved;
  char *model_tmp;
  unsigned tmp_counter;
  struct od_err *err;
};

static enum od_status oom(struct exporter *x) {
  return od_err_set(x->err, OD_ERR_OOM, "export to %s: out of memory", x->out_path);
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *r = malloc(n);
  if (r) memcpy(r, s, n);
  return r;
}

/* Grows *arr (element size elem) so that it holds at least need elements. */
static bool grow(void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return true;
  size_t c = *cap ? *cap * 2 : 16;
  while (c < need) c *= 2;
  void *p = realloc(*arr, c * elem);
  if (!p) return false;
  *arr = p;
  *cap = c;
  return true;
}

static bool is_external(const Onnx__TensorProto *t) {
  return t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

static const char *tensor_name(const Onnx__TensorProto *t) { return t->name ? t->name : ""; }

/* ---- 1. values back into the proto ------------------------------------------------------- */

/* True when orig, an int32_data element of a narrow dtype, decodes to v the way
 * onnx_tensor.c's copy_typed decodes it: then the original encoding is kept. */
static bool int32_elem_matches(int dt, int32_t orig, const uint8_t *v) {
  switch (dt) {
    case OD_DTYPE_INT8: return (int8_t)orig == *(const int8_t *)v;
    case OD_DTYPE_UINT8: return (uint8_t)orig == *v;
    case OD_DTYPE_BOOL: return (uint8_t)(orig != 0) == *v;
    case OD_DTYPE_INT16: { int16_t s; memcpy(&s, v, 2); return (int16_t)orig == s; }
    default: { uint16_t u; memcpy(&u, v, 2); return (uint16_t)orig == u; } /* uint16, float16, bfloat16 */
  }
}

/* The canonical int32_data encoding of one narrow element (sign-extended for signed types,
 * zero-extended bit patterns otherwise), as numpy_helper.from_array writes it. */
static int32_t int32_elem_encode(int dt, const uint8_t *v) {
  switch (dt) {
    case OD_DTYPE_INT8: return *(const int8_t *)v;
    case OD_DTYPE_UINT8: case OD_DTYPE_BOOL: return *v;
    case OD_DTYPE_INT16: { int16_t s; memcpy(&s, v, 2); return s; }
    default: { uint16_t u; memcpy(&u, v, 2); return u; }
  }
}

/* Writes nbytes of host data src into the inline field t already uses. */
static enum od_status write_back_tensor(struct exporter *x, Onnx__TensorProto *t, const struct od_value *v,
                                        const char *where) {
  struct od_host_tensor info;
  OD_TRY(od_tensor_proto_info(t, where, &info, x->err));
  if (info.dtype != v->dtype || info.nbytes != v->nbytes)
    return od_err_set(x->err, OD_ERR_INTERNAL,
                      "%s: the parameter block holds %zu bytes of %s but the file's tensor is %zu bytes of %s",
                      where, v->nbytes, od_dtype_name(v->dtype), info.nbytes, od_dtype_name(info.dtype));
  if (is_external(t)) return OD_OK; /* written to its data file later */
  const uint8_t *src = od_value_data(x->m->graph, v);
  if (t->has_raw_data && t->raw_data.len > 0) {
    if (t->raw_data.len != info.nbytes)
      return od_err_set(x->err, OD_ERR_INTERNAL, "%s: raw_data has %zu bytes, the tensor %zu", where,
                        t->raw_data.len, info.nbytes);
    memcpy(t->raw_data.data, src, info.nbytes);
    return OD_OK;
  }
  if (info.nelem == 0) return OD_OK;
  size_t n = info.nelem, have;
  switch (info.dtype) {
    case OD_DTYPE_FLOAT: have = t->n_float_data; break;
    case OD_DTYPE_DOUBLE: have = t->n_double_data; break;
    case OD_DTYPE_INT64: have = t->n_int64_data; break;
    case OD_DTYPE_UINT32: case OD_DTYPE_UINT64: have = t->n_uint64_data; break;
    default: have = t->n_int32_data; break;
  }
  if (have != n)
    return od_err_set(x->err, OD_ERR_INTERNAL, "%s: typed field holds %zu values, the tensor %zu elements",
                      where, have, n);
  switch (info.dtype) {
    case OD_DTYPE_FLOAT: memcpy(t->float_data, src, n * 4); break;
    case OD_DTYPE_DOUBLE: memcpy(t->double_data, src, n * 8); break;
    case OD_DTYPE_INT64: memcpy(t->int64_data, src, n * 8); break;
    case OD_DTYPE_UINT64: memcpy(t->uint64_data, src, n * 8); break;
    case OD_DTYPE_INT32: memcpy(t->int32_data, src, n * 4); break;
    case OD_DTYPE_UINT32:
      for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + 4 * i, 4);
        if ((uint32_t)t->uint64_data[i] != u) t->uint64_data[i] = u;
      }
      break;
    default: { /* int8, uint8, int16, uint16, bool, float16, bfloat16 in int32_data */
      size_t es = od_dtype_size(info.dtype);
      for (size_t i = 0; i < n; i++)
        if (!int32_elem_matches(info.dtype, t->int32_data[i], src + es * i))
          t->int32_data[i] = int32_elem_encode(info.dtype, src + es * i);
      break;
    }
  }
  return OD_OK;
}

/* The attribute a Constant node's value comes from: the first whose name starts with "value",
 * the rule onnx_import.c's constant_attr uses. */
static Onnx__AttributeProto *constant_attr(Onnx__NodeProto *np) {
  for (size_t a = 0; a < np->n_attribute; a++) {
    Onnx__AttributeProto *ap = np->attribute[a];
    if (ap && ap->name && !strncmp(ap->name, "value", 5)) return ap;
  }
  return NULL;
}

/* Writes a Constant's value_float / value_floats / value_int / value_ints back. */
static enum od_status write_back_scalar_attr(struct exporter *x, Onnx__AttributeProto *ap,
                                             const struct od_value *v, const char *where) {
  const uint8_t *src = od_value_data(x->m->graph, v);
  const char *nm = ap->name;
  size_t want;
  if (!strcmp(nm, "value_float") || !strcmp(nm, "value_int")) want = !strcmp(nm, "value_float") ? 4 : 8;
  else if (!strcmp(nm, "value_floats")) want = ap->n_floats * 4;
  else if (!strcmp(nm, "value_ints")) want = ap->n_ints * 8;
  else return od_err_set(x->err, OD_ERR_INTERNAL, "%s: unexpected Constant attribute", where);
  if (want != v->nbytes)
    return od_err_set(x->err, OD_ERR_INTERNAL, "%s: the parameter block holds %zu bytes, the attribute %zu",
                      where, v->nbytes, want);
  if (!strcmp(nm, "value_float")) memcpy(&ap->f, src, 4);
  else if (!strcmp(nm, "value_int")) memcpy(&ap->i, src, 8);
  else if (!strcmp(nm, "value_floats") && want) memcpy(ap->floats, src, want);
  else if (want) memcpy(ap->ints, src, want);
  return OD_OK;
}

/* "initializer 'w'" or "node 'c1' (Constant-13) attribute 'value'", for messages. */
static const char *param_where(const struct exporter *x, const struct param_ref *p, char *buf, size_t size) {
  if (p->v->kind == OD_VALUE_INITIALIZER) {
    snprintf(buf, size, "%s: initializer '%s'", x->out_path, p->v->name);
  } else {
    char nd[256];
    od_node_describe(&x->m->graph->nodes[p->v->source_index], nd, sizeof nd);
    snprintf(buf, size, "%s: %s attribute '%s'", x->out_path, nd, p->attr && p->attr->name ? p->attr->name : "?");
  }
  return buf;
}

static int compare_ptr(const void *a, const void *b) {
  uintptr_t pa = (uintptr_t)*(void *const *)a, pb = (uintptr_t)*(void *const *)b;
  return pa < pb ? -1 : pa > pb;
}

/* Finds every parameter's place in the proto and writes its current value there. */
static enum od_status collect_params(struct exporter *x) {
  const struct od_graph *g = x->m->graph;
  Onnx__GraphProto *gp = x->proto->graph;
  size_t n = 0;
  for (int i = 0; i < g->n_values; i++)
    if (g->values[i].kind == OD_VALUE_INITIALIZER || g->values[i].kind == OD_VALUE_CONSTANT) n++;
  if (n && (!(x->params = calloc(n, sizeof *x->params)) ||
            !(x->sorted_tensors = calloc(n, sizeof *x->sorted_tensors))))
    return oom(x);
  char where[700];
  for (int i = 0; i < g->n_values; i++) {
    const struct od_value *v = &g->values[i];
    struct param_ref *p = &x->params[x->n_params];
    if (v->kind == OD_VALUE_INITIALIZER) {
      if (v->source_index < 0 || (size_t)v->source_index >= gp->n_initializer ||
          strcmp(tensor_name(gp->initializer[v->source_index]), v->name))
        return od_err_set(x->err, OD_ERR_INTERNAL, "%s: initializer '%s' has no matching TensorProto (index %d)",
                          x->out_path, v->name, v->source_index);
      *p = (struct param_ref){.v = v, .t = gp->initializer[v->source_index]};
    } else if (v->kind == OD_VALUE_CONSTANT) {
      if (v->source_index < 0 || v->source_index >= g->n_nodes ||
          g->nodes[v->source_index].proto_index < 0 || (size_t)g->nodes[v->source_index].proto_index >= gp->n_node)
        return od_err_set(x->err, OD_ERR_INTERNAL, "%s: Constant value '%s' has no matching node (id %d)",
                          x->out_path, v->name, v->source_index);
      Onnx__NodeProto *np = gp->node[g->nodes[v->source_index].proto_index];
      Onnx__AttributeProto *ap = constant_attr(np);
      if (!ap)
        return od_err_set(x->err, OD_ERR_INTERNAL, "%s: Constant value '%s': its node has no value attribute",
                          x->out_path, v->name);
      *p = (struct param_ref){.v = v, .attr = ap, .t = !strcmp(ap->name, "value") ? ap->t : NULL};
      if (!strcmp(ap->name, "value") && !ap->t)
        return od_err_set(x->err, OD_ERR_INTERNAL, "%s: Constant value '%s' has no tensor", x->out_path, v->name);
    } else {
      continue;
    }
    param_where(x, p, where, sizeof where);
    if (p->t) {
      OD_TRY(write_back_tensor(x, p->t, v, where));
      x->sorted_tensors[x->n_sorted++] = p->t;
    } else {
      OD_TRY(write_back_scalar_attr(x, p->attr, v, where));
    }
    x->n_params++;
  }
  if (x->n_sorted) qsort(x->sorted_tensors, x->n_sorted, sizeof *x->sorted_tensors, compare_ptr);
  return OD_OK;
}

static bool is_param_tensor(const struct exporter *x, const Onnx__TensorProto *t) {
  return x->n_sorted && bsearch(&t, x->sorted_tensors, x->n_sorted, sizeof *x->sorted_tensors, compare_ptr);
}

/* ---- external tensors that are not parameters ---------------------------------------------- */

static enum od_status walk_graph(struct exporter *x, Onnx__GraphProto *gp);

static enum od_status visit_tensor(struct exporter *x, Onnx__TensorProto *t) {
  if (!t || !is_external(t) || is_param_tensor(x, t)) return OD_OK;
  if (!grow((void **)&x->others, &x->cap_others, x->n_others + 1, sizeof *x->others)) return oom(x);
  x->others[x->n_others++] = t;
  return OD_OK;
}

static enum od_status visit_sparse(struct exporter *x, Onnx__SparseTensorProto *s) {
  if (!s) return OD_OK;
  OD_TRY(visit_tensor(x, s->values));
  return visit_tensor(x, s->indices);
}

static enum od_status walk_nodes(struct exporter *x, Onnx__NodeProto **nodes, size_t n) {
  for (size_t i = 0; i < n; i++) {
    Onnx__NodeProto *np = nodes[i];
    for (size_t a = 0; np && a < np->n_attribute; a++) {
      Onnx__AttributeProto *ap = np->attribute[a];
      if (!ap) continue;
      OD_TRY(visit_tensor(x, ap->t));
      for (size_t k = 0; k < ap->n_tensors; k++) OD_TRY(visit_tensor(x, ap->tensors[k]));
      OD_TRY(visit_sparse(x, ap->sparse_tensor));
      for (size_t k = 0; k < ap->n_sparse_tensors; k++) OD_TRY(visit_sparse(x, ap->sparse_tensors[k]));
      if (ap->g) OD_TRY(walk_graph(x, ap->g));
      for (size_t k = 0; k < ap->n_graphs; k++)
        if (ap->graphs[k]) OD_TRY(walk_graph(x, ap->graphs[k]));
    }
  }
  return OD_OK;
}

static enum od_status walk_graph(struct exporter *x, Onnx__GraphProto *gp) {
  for (size_t i = 0; i < gp->n_initializer; i++) OD_TRY(visit_tensor(x, gp->initializer[i]));
  for (size_t i = 0; i < gp->n_sparse_initializer; i++) OD_TRY(visit_sparse(x, gp->sparse_initializer[i]));
  return walk_nodes(x, gp->node, gp->n_node);
}

/* Every TensorProto of the model (main graph, subgraphs, functions, training info) that keeps
 * its data in an external file but is not a parameter: its bytes are copied from the source. */
static enum od_status collect_others(struct exporter *x) {
  Onnx__ModelProto *mp = x->proto;
  OD_TRY(walk_graph(x, mp->graph));
  for (size_t i = 0; i < mp->n_functions; i++)
    if (mp->functions[i]) OD_TRY(walk_nodes(x, mp->functions[i]->node, mp->functions[i]->n_node));
  for (size_t i = 0; i < mp->n_training_info; i++) {
    Onnx__TrainingInfoProto *ti = mp->training_info[i];
    if (ti && ti->initialization) OD_TRY(walk_graph(x, ti->initialization));
    if (ti && ti->algorithm) OD_TRY(walk_graph(x, ti->algorithm));
  }
  return OD_OK;
}

/* ---- 2. placement -------------------------------------------------------------------------- */

/* "./a//b/./c" -> "a/b/c": one spelling per file (od_external_path has refused ".."). */
static char *normalise_location(const char *loc) {
  char *r = malloc(strlen(loc) + 1);
  if (!r) return NULL;
  size_t n = 0;
  for (const char *p = loc; *p;) {
    const char *e = p;
    while (*e && *e != '/' && *e != '\\') e++;
    size_t len = (size_t)(e - p);
    if (len && !(len == 1 && p[0] == '.')) {
      if (n) r[n++] = '/';
      memcpy(r + n, p, len);
      n += len;
    }
    p = *e ? e + 1 : e;
  }
  r[n] = '\0';
  return r;
}

/* The table slot of the output data file for location (created on first use). */
static enum od_status ext_file_get(struct exporter *x, const char *location, const char *where, int *out) {
  char *path = NULL;
  OD_TRY(od_external_path(x->out_dir, location, where, &path, x->err));
  char *key = normalise_location(location);
  if (!key) {
    free(path);
    return oom(x);
  }
  for (size_t i = 0; i < x->n_files; i++)
    if (!strcmp(x->files[i].key, key)) {
      free(key);
      free(path);
      *out = (int)i;
      return OD_OK;
    }
  if (!key[0] || !strcmp(key, x->out_base)) {
    enum od_status st = od_err_set(x->err, OD_ERR_INVALID_ARG, "%s: external data location '%s' %s", where,
                                   location, key[0] ? "would overwrite the model file itself" : "names no file");
    free(key);
    free(path);
    return st;
  }
  if (!grow((void **)&x->files, &x->cap_files, x->n_files + 1, sizeof *x->files)) {
    free(key);
    free(path);
    return oom(x);
  }
  x->files[x->n_files] = (struct ext_file){.key = key, .final_path = path, .fd = -1};
  *out = (int)x->n_files++;
  return OD_OK;
}

static enum od_status add_write(struct exporter *x, struct ext_write w) {
  if (!grow((void **)&x->writes, &x->cap_writes, x->n_writes + 1, sizeof *x->writes)) {
    free(w.src_path);
    return oom(x);
  }
  x->writes[x->n_writes++] = w;
  struct ext_file *f = &x->files[w.file];
  if (w.offset + w.length > f->end) f->end = w.offset + w.length;
  return OD_OK;
}

static enum od_status parse_entry_u64(struct exporter *x, const Onnx__TensorProto *t, const char *key,
                                      const char *where, bool *present, uint64_t *out) {
  const char *s = od_tensor_proto_external_entry(t, key);
  *present = s != NULL;
  if (!s) return OD_OK;
  if (!*s) return od_err_set(x->err, OD_ERR_INVALID_MODEL, "%s: external data '%s' is empty", where, key);
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
      return od_err_set(x->err, OD_ERR_INVALID_MODEL, "%s: external data '%s' is not a valid number: '%s'",
                        where, key, s);
    v = v * 10 + (uint64_t)(*p - '0');
  }
  *out = v;
  return OD_OK;
}

/* The source data file and recorded range of an external tensor that is not a parameter; a
 * missing length means "to the end of the file" (as onnx's loader reads it). */
static enum od_status source_range(struct exporter *x, const Onnx__TensorProto *t, const char *where,
                                   char **src_path, uint64_t *off_out, uint64_t *len_out) {
  const char *loc = od_tensor_proto_external_entry(t, "location");
  bool has_off, has_len;
  uint64_t off = 0, len = 0;
  OD_TRY(parse_entry_u64(x, t, "offset", where, &has_off, &off));
  OD_TRY(parse_entry_u64(x, t, "length", where, &has_len, &len));
  char *path = NULL;
  OD_TRY(od_external_path(x->m->dir, loc, where, &path, x->err));
  struct stat sb;
  enum od_status st = OD_OK;
  if (stat(path, &sb) != 0) {
    st = od_err_set(x->err, OD_ERR_IO, "%s: cannot read external data file '%s': %s", where, path,
                    strerror(errno));
  } else if (!S_ISREG(sb.st_mode)) {
    st = od_err_set(x->err, OD_ERR_IO, "%s: external data '%s' is not a regular file", where, path);
  } else {
    uint64_t size = (uint64_t)sb.st_size;
    if (!has_len) len = size >= off ? size - off : 0;
    if (off > size || size - off < len)
      st = od_err_set(x->err, OD_ERR_INVALID_MODEL,
                      "%s: external data '%s' needs bytes %llu..%llu but the file has %llu", where, path,
                      (unsigned long long)off, (unsigned long long)(off + len), (unsigned long long)size);
  }
  if (st != OD_OK) {
    free(path);
    return st;
  }
  *src_path = path;
  *off_out = off;
  *len_out = len;
  return OD_OK;
}

/* Reserves the recorded range of a tensor that stays external and records how to fill it: from
 * data (a parameter, nbytes long) or, when data is NULL, from the source model's data file. */
static enum od_status keep_external(struct exporter *x, Onnx__TensorProto *t, const void *data, size_t nbytes,
                                    const char *where) {
  struct ext_write w = {.data = data, .name = tensor_name(t)};
  if (data) {
    bool has_off, has_len;
    uint64_t len = nbytes;
    OD_TRY(parse_entry_u64(x, t, "offset", where, &has_off, &w.offset));
    OD_TRY(parse_entry_u64(x, t, "length", where, &has_len, &len));
    if (len != nbytes)
      return od_err_set(x->err, OD_ERR_INTERNAL, "%s: external length %llu but the tensor has %zu bytes", where,
                        (unsigned long long)len, nbytes);
    w.length = nbytes;
  } else {
    OD_TRY(source_range(x, t, where, &w.src_path, &w.src_offset, &w.length));
    w.offset = w.src_offset;
  }
  enum od_status st = ext_file_get(x, od_tensor_proto_external_entry(t, "location"), where, &w.file);
  if (st != OD_OK) {
    free(w.src_path);
    return st;
  }
  return add_write(x, w);
}

static enum od_status save_tensor(struct exporter *x, Onnx__TensorProto *t, struct saved_tensor **out) {
  if (!grow((void **)&x->saved, &x->cap_saved, x->n_saved + 1, sizeof *x->saved)) return oom(x);
  struct saved_tensor *s = &x->saved[x->n_saved++];
  *s = (struct saved_tensor){.t = t, .orig = *t};
  *out = s;
  return OD_OK;
}

static Onnx__StringStringEntryProto *new_entry(const char *key, const char *value) {
  Onnx__StringStringEntryProto *e = malloc(sizeof *e);
  if (!e) return NULL;
  onnx__string_string_entry_proto__init(e);
  e->key = dup_str(key);
  e->value = dup_str(value);
  if (!e->key || !e->value) {
    free(e->key);
    free(e->value);
    free(e);
    return NULL;
  }
  return e;
}

/* Moves an inline parameter tensor to the data file (for the time of the write). */
static enum od_status move_out(struct exporter *x, Onnx__TensorProto *t, const void *data, size_t nbytes,
                               const char *where) {
  int fi;
  OD_TRY(ext_file_get(x, x->data_file, where, &fi));
  struct ext_file *f = &x->files[fi];
  uint64_t align = nbytes > BIG_TENSOR_BYTES ? BIG_TENSOR_ALIGN : SMALL_TENSOR_ALIGN;
  uint64_t off = (f->end + align - 1) / align * align;
  struct saved_tensor *s;
  OD_TRY(save_tensor(x, t, &s));
  char off_s[32], len_s[32];
  snprintf(off_s, sizeof off_s, "%llu", (unsigned long long)off);
  snprintf(len_s, sizeof len_s, "%zu", nbytes);
  if (!(s->entries = calloc(3, sizeof *s->entries))) return oom(x);
  const char *keys[3] = {"location", "offset", "length"}, *vals[3] = {x->data_file, off_s, len_s};
  for (int i = 0; i < 3; i++) {
    if (!(s->entries[i] = new_entry(keys[i], vals[i]))) return oom(x);
    s->n_entries = (size_t)i + 1;
  }
  t->n_external_data = 3;
  t->external_data = s->entries;
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  t->has_raw_data = 0;
  t->raw_data = (ProtobufCBinaryData){0, NULL};
  t->n_float_data = t->n_int32_data = t->n_int64_data = t->n_double_data = t->n_uint64_data = 0;
  return add_write(x, (struct ext_write){.file = fi, .offset = off, .length = nbytes, .data = data,
                                         .name = tensor_name(t)});
}

/* Brings an external tensor inline as raw_data (NEVER mode), pointing at data (not copied). */
static enum od_status bring_in(struct exporter *x, Onnx__TensorProto *t, void *data, size_t nbytes, void *owned) {
  struct saved_tensor *s;
  if (save_tensor(x, t, &s) != OD_OK) {
    free(owned);
    return OD_ERR_OOM;
  }
  s->owned = owned;
  t->n_external_data = 0;
  t->external_data = NULL;
  t->has_data_location = 1; /* as onnx's convert_model_from_external_data: DEFAULT, set */
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
  t->has_raw_data = 1;
  t->raw_data = (ProtobufCBinaryData){nbytes, data};
  return OD_OK;
}

/* Reads a non-parameter external tensor's bytes from the source model's folder (NEVER mode). */
static enum od_status read_other(struct exporter *x, Onnx__TensorProto *t, const char *where, void **out,
                                 size_t *len_out) {
  char *path;
  uint64_t off, len;
  OD_TRY(source_range(x, t, where, &path, &off, &len));
  enum od_status st = OD_OK;
  void *buf = len <= SIZE_MAX ? malloc(len ? (size_t)len : 1) : NULL;
  FILE *f = buf ? fopen(path, "rb") : NULL;
  if (!buf) st = oom(x);
  else if (!f) st = od_err_set(x->err, OD_ERR_IO, "%s: cannot open '%s': %s", where, path, strerror(errno));
  else if (len && (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(buf, 1, (size_t)len, f) != len))
    st = od_err_set(x->err, OD_ERR_IO, "%s: reading external data '%s' failed", where, path);
  if (f) fclose(f);
  free(path);
  if (st != OD_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  *len_out = (size_t)len;
  return OD_OK;
}

/* Packed size of the model, or UINT64_MAX when the inline data alone passes the limit (protobuf-c
 * computes length prefixes in 32 bits, so its answer is only trusted below 4 GiB). */
static uint64_t model_packed_size(const struct exporter *x, uint64_t inline_bytes) {
  if (inline_bytes > PROTOBUF_LIMIT) return UINT64_MAX;
  return protobuf_c_message_get_packed_size(&x->proto->base);
}

static enum od_status plan_placement(struct exporter *x) {
  char where[700];
  uint64_t inline_bytes = 0;
  /* tensors that are external in the source keep their place, unless NEVER brings them in */
  for (size_t i = 0; i < x->n_params; i++) {
    struct param_ref *p = &x->params[i];
    uint8_t *data = od_value_data(x->m->graph, p->v);
    if (!p->t) continue;
    param_where(x, p, where, sizeof where);
    if (!is_external(p->t)) inline_bytes += p->v->nbytes;
    else if (x->mode == OD_EXTERNAL_NEVER) {
      OD_TRY(bring_in(x, p->t, data, p->v->nbytes, NULL));
      inline_bytes += p->v->nbytes;
    } else {
      OD_TRY(keep_external(x, p->t, data, p->v->nbytes, where));
    }
  }
  for (size_t i = 0; i < x->n_others; i++) {
    Onnx__TensorProto *t = x->others[i];
    snprintf(where, sizeof where, "%s: tensor '%s'", x->out_path, tensor_name(t));
    if (x->mode == OD_EXTERNAL_NEVER) {
      void *buf;
      size_t len;
      OD_TRY(read_other(x, t, where, &buf, &len));
      OD_TRY(bring_in(x, t, buf, len, buf));
      inline_bytes += len;
    } else {
      OD_TRY(keep_external(x, t, NULL, 0, where));
    }
  }
  bool move = x->mode == OD_EXTERNAL_ALWAYS;
  if (!move) {
    uint64_t size = model_packed_size(x, inline_bytes);
    if (size > PROTOBUF_LIMIT && x->mode == OD_EXTERNAL_NEVER) {
      char what[64];
      if (size == UINT64_MAX) snprintf(what, sizeof what, "more than 2 GiB");
      else snprintf(what, sizeof what, "%llu bytes", (unsigned long long)size);
      return od_err_set(x->err, OD_ERR_INVALID_ARG,
                        "%s: the model would be %s, over protobuf's 2 GiB limit; export it with external "
                        "data (auto or always)", x->out_path, what);
    }
    move = size > PROTOBUF_LIMIT;
  }
  if (!move) return OD_OK;
  for (size_t i = 0; i < x->n_params; i++) {
    struct param_ref *p = &x->params[i];
    if (!p->t || is_external(p->t) || p->v->nbytes == 0 || p->v->nbytes < x->threshold) continue;
    param_where(x, p, where, sizeof where);
    OD_TRY(move_out(x, p->t, od_value_data(x->m->graph, p->v), p->v->nbytes, where));
    inline_bytes -= p->v->nbytes;
  }
  uint64_t size = model_packed_size(x, inline_bytes);
  if (size > PROTOBUF_LIMIT)
    return od_err_set(x->err, OD_ERR_INVALID_ARG,
                      "%s: the model stays over protobuf's 2 GiB limit even with every parameter of %zu bytes "
                      "or more in '%s'; lower the threshold", x->out_path, x->threshold, x->data_file);
  return OD_OK;
}

/* ---- 3. files ---------------------------------------------------------------------------------- */

/* Creates a new temporary file beside final (same folder, so rename is atomic), mode 0666 less
 * the umask like any new file. */
static enum od_status open_temp(struct exporter *x, const char *final, char **tmp_out, int *fd_out) {
  const char *slash = strrchr(final, '/');
  size_t dir_len = slash ? (size_t)(slash - final) + 1 : 0;
  const char *base = final + dir_len;
  size_t n = strlen(final) + 64;
  char *tmp = malloc(n);
  if (!tmp) return oom(x);
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(tmp, n, "%.*s.%s.%ld.%u.tmp", (int)dir_len, final, base, (long)getpid(), x->tmp_counter++);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      *tmp_out = tmp;
      *fd_out = fd;
      return OD_OK;
    }
    if (errno != EEXIST) {
      enum od_status st = od_err_set(x->err, OD_ERR_IO, "%s: cannot create '%s': %s", x->out_path, tmp,
                                     strerror(errno));
      free(tmp);
      return st;
    }
  }
  free(tmp);
  return od_err_set(x->err, OD_ERR_IO, "%s: cannot find a free temporary file name beside '%s'", x->out_path,
                    final);
}

/* Creates the folders of a location below the output folder ("weights/w.bin" -> weights/). */
static enum od_status make_parent_dirs(struct exporter *x, const char *path) {
  char *p = dup_str(path);
  if (!p) return oom(x);
  enum od_status st = OD_OK;
  for (char *s = p + strlen(x->out_dir) + 1; (s = strchr(s, '/')); s++) {
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      st = od_err_set(x->err, OD_ERR_IO, "%s: cannot create folder '%s': %s", x->out_path, p, strerror(errno));
      break;
    }
    *s = '/';
  }
  free(p);
  return st;
}

static enum od_status pwrite_all(struct exporter *x, int fd, const void *buf, size_t len, uint64_t off,
                                 const char *path) {
  const uint8_t *b = buf;
  while (len) {
    size_t chunk = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
    ssize_t w = pwrite(fd, b, chunk, (off_t)off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return od_err_set(x->err, OD_ERR_IO, "%s: writing '%s' failed: %s", x->out_path, path,
                        w < 0 ? strerror(errno) : "no progress");
    b += w;
    off += (uint64_t)w;
    len -= (size_t)w;
  }
  return OD_OK;
}

/* Copies length bytes at src_offset of a source data file to the output data file. */
static enum od_status copy_range(struct exporter *x, const struct ext_write *w, struct ext_file *f) {
  int in = open(w->src_path, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return od_err_set(x->err, OD_ERR_IO, "%s: tensor '%s': cannot open '%s': %s", x->out_path, w->name,
                      w->src_path, strerror(errno));
  size_t cap = w->length < COPY_CHUNK_BYTES ? (size_t)w->length : COPY_CHUNK_BYTES;
  uint8_t *buf = malloc(cap ? cap : 1);
  enum od_status st = buf ? OD_OK : oom(x);
  for (uint64_t done = 0; st == OD_OK && done < w->length;) {
    size_t want = w->length - done < cap ? (size_t)(w->length - done) : cap;
    ssize_t r = pread(in, buf, want, (off_t)(w->src_offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      st = od_err_set(x->err, OD_ERR_IO, "%s: tensor '%s': reading '%s' failed: %s", x->out_path, w->name,
                      w->src_path, r < 0 ? strerror(errno) : "file is shorter than recorded");
      break;
    }
    st = pwrite_all(x, f->fd, buf, (size_t)r, w->offset + done, f->tmp_path);
    done += (uint64_t)r;
  }
  free(buf);
  close(in);
  return st;
}

static enum od_status write_data_files(struct exporter *x) {
  for (size_t i = 0; i < x->n_files; i++) {
    struct ext_file *f = &x->files[i];
    OD_TRY(make_parent_dirs(x, f->final_path));
    OD_TRY(open_temp(x, f->final_path, &f->tmp_path, &f->fd));
  }
  for (size_t i = 0; i < x->n_writes; i++) {
    struct ext_write *w = &x->writes[i];
    struct ext_file *f = &x->files[w->file];
    if (w->data) OD_TRY(pwrite_all(x, f->fd, w->data, (size_t)w->length, w->offset, f->tmp_path));
    else OD_TRY(copy_range(x, w, f));
  }
  for (size_t i = 0; i < x->n_files; i++) {
    struct ext_file *f = &x->files[i];
    /* a range ending in a hole (an empty last tensor) still needs the file to reach its end */
    if (ftruncate(f->fd, (off_t)f->end) != 0 || fsync(f->fd) != 0)
      return od_err_set(x->err, OD_ERR_IO, "%s: finishing '%s' failed: %s", x->out_path, f->tmp_path,
                        strerror(errno));
  }
  return OD_OK;
}

/* A ProtobufCBuffer that streams the packed model into a file through a 1 MiB buffer, so a large
 * model is never held twice in memory. protobuf-c's append has no error return: the first
 * failure is kept in err_no and checked after packing. */
struct file_sink {
  ProtobufCBuffer base;
  int fd;
  uint8_t *buf;
  size_t len;
  int err_no;
};

static void sink_write(struct file_sink *s, const uint8_t *data, size_t len) {
  while (len && !s->err_no) {
    ssize_t w = write(s->fd, data, len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      s->err_no = w < 0 ? errno : EIO;
      return;
    }
    data += w;
    len -= (size_t)w;
  }
}

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
  struct file_sink *s = (struct file_sink *)b;
  if (s->err_no || len == 0) return; /* protobuf-c passes (NULL, 0) for empty bytes fields */
  if (s->len + len > WRITE_BUFFER_BYTES) {
    sink_write(s, s->buf, s->len);
    s->len = 0;
  }
  if (len >= WRITE_BUFFER_BYTES) {
    sink_write(s, data, len);
  } else {
    memcpy(s->buf + s->len, data, len);
    s->len += len;
  }
}

static enum od_status write_model(struct exporter *x) {
  int fd;
  OD_TRY(open_temp(x, x->out_path, &x->model_tmp, &fd));
  struct file_sink s = {.base = {.append = sink_append}, .fd = fd, .buf = malloc(WRITE_BUFFER_BYTES)};
  if (!s.buf) {
    close(fd);
    return oom(x);
  }
  protobuf_c_message_pack_to_buffer(&x->proto->base, &s.base);
  if (s.len) sink_write(&s, s.buf, s.len);
  free(s.buf);
  if (!s.err_no && fsync(fd) != 0) s.err_no = errno;
  if (close(fd) != 0 && !s.err_no) s.err_no = errno;
  if (s.err_no)
    return od_err_set(x->err, OD_ERR_IO, "%s: writing '%s' failed: %s", x->out_path, x->model_tmp,
                      strerror(s.err_no));
  return OD_OK;
}

/* fsync of a folder makes the renames in it durable; best effort (not every file system allows it). */
static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

/* Data files first, the model last: a reader never sees a new model with old data. */
static enum od_status commit(struct exporter *x) {
  for (size_t i = 0; i < x->n_files; i++) {
    struct ext_file *f = &x->files[i];
    if (close(f->fd) != 0) {
      f->fd = -1;
      return od_err_set(x->err, OD_ERR_IO, "%s: closing '%s' failed: %s", x->out_path, f->tmp_path,
                        strerror(errno));
    }
    f->fd = -1;
  }
  for (size_t i = 0; i < x->n_files; i++) {
    struct ext_file *f = &x->files[i];
    if (rename(f->tmp_path, f->final_path) != 0)
      return od_err_set(x->err, OD_ERR_IO, "%s: cannot rename '%s' to '%s': %s", x->out_path, f->tmp_path,
                        f->final_path, strerror(errno));
    free(f->tmp_path);
    f->tmp_path = NULL;
  }
  if (rename(x->model_tmp, x->out_path) != 0)
    return od_err_set(x->err, OD_ERR_IO, "%s: cannot rename '%s' over it: %s", x->out_path, x->model_tmp,
                      strerror(errno));
  free(x->model_tmp);
  x->model_tmp = NULL;
  sync_dir(x->out_dir);
  return OD_OK;
}

/* ---- setup and teardown ------------------------------------------------------------------------- */

static enum od_status exporter_init(struct exporter *x, const struct od_export_opts *opts) {
  const char *path = x->out_path;
  x->mode = opts ? opts->external : OD_EXTERNAL_AUTO;
  if (x->mode != OD_EXTERNAL_AUTO && x->mode != OD_EXTERNAL_ALWAYS && x->mode != OD_EXTERNAL_NEVER)
    return od_err_set(x->err, OD_ERR_INVALID_ARG, "%s: unknown external data mode %d", path, (int)x->mode);
  x->threshold = opts && opts->threshold ? opts->threshold : DEFAULT_THRESHOLD;
  const char *slash = strrchr(path, '/');
  if (!slash) {
    x->out_dir = dup_str(".");
    x->out_base = dup_str(path);
  } else {
    size_t n = (size_t)(slash - path);
    x->out_dir = malloc(n + 2);
    if (x->out_dir) {
      memcpy(x->out_dir, path, n ? n : 1); /* "/m.onnx" -> "/" */
      x->out_dir[n ? n : 1] = '\0';
    }
    x->out_base = dup_str(slash + 1);
  }
  if (!x->out_dir || !x->out_base) return oom(x);
  if (!x->out_base[0])
    return od_err_set(x->err, OD_ERR_INVALID_ARG, "%s: the output path names a folder, not a file", path);
  struct stat sb;
  if (stat(x->out_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return od_err_set(x->err, OD_ERR_IO, "%s: the output folder '%s' does not exist", path, x->out_dir);
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return od_err_set(x->err, OD_ERR_INVALID_ARG, "%s: is a folder; give the output file's name", path);
  if (opts && opts->data_file) {
    x->data_file = dup_str(opts->data_file);
  } else {
    x->data_file = malloc(strlen(x->out_base) + 6);
    if (x->data_file) sprintf(x->data_file, "%s.data", x->out_base);
  }
  if (!x->data_file) return oom(x);
  char *check = NULL;
  OD_TRY(od_external_path(x->out_dir, x->data_file, path, &check, x->err));
  free(check);
  return OD_OK;
}

static void restore_tensors(struct exporter *x) {
  for (size_t i = x->n_saved; i-- > 0;) {
    struct saved_tensor *s = &x->saved[i];
    *s->t = s->orig;
    for (size_t k = 0; k < s->n_entries; k++) {
      free(s->entries[k]->key);
      free(s->entries[k]->value);
      free(s->entries[k]);
    }
    free(s->entries);
    free(s->owned);
  }
  x->n_saved = 0;
}

static void exporter_free(struct exporter *x, bool failed) {
  for (size_t i = 0; i < x->n_files; i++) {
    struct ext_file *f = &x->files[i];
    if (f->fd >= 0) close(f->fd);
    if (f->tmp_path && failed) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->key);
    free(f->final_path);
  }
  if (x->model_tmp && failed) unlink(x->model_tmp);
  free(x->model_tmp);
  for (size_t i = 0; i < x->n_writes; i++) free(x->writes[i].src_path);
  free(x->writes);
  free(x->files);
  free(x->saved);
  free(x->others);
  free(x->params);
  free(x->sorted_tensors);
  free(x->out_dir);
  free(x->out_base);
  free(x->data_file);
}

enum od_status od_model_export(struct od_model *m, const char *path, const struct od_export_opts *opts,
                               struct od_err *err) {
  if (!path || !path[0]) return od_err_set(err, OD_ERR_INVALID_ARG, "export: no output path");
  if (!m || !m->graph || !m->proto || !m->proto->graph)
    return od_err_set(err, OD_ERR_INVALID_ARG, "%s: export: the model has no ModelProto to write", path);
  struct exporter x = {.m = m, .proto = m->proto, .out_path = path, .err = err};
  enum od_status st = exporter_init(&x, opts);
  if (st == OD_OK) st = collect_params(&x);
  if (st == OD_OK) st = collect_others(&x);
  if (st == OD_OK) st = plan_placement(&x);
  if (st == OD_OK) st = write_data_files(&x);
  if (st == OD_OK) st = write_model(&x);
  if (st == OD_OK) st = commit(&x);
  restore_tensors(&x);
  exporter_free(&x, st != OD_OK);
  return st;
}
