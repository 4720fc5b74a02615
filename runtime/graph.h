/* runtime/graph.h: the runtime's own graph, built from an ONNX ModelProto by loaders/onnx_import.c.
 *
 * Values are every named tensor of the graph (inputs, initializers, Constant outputs, activations);
 * nodes refer to values by index. Nodes are stored in topological order (import sorts them and
 * rejects cycles); proto_index remembers each node's place in the file for export.
 *
 * Every initializer and every Constant node's value lives in one host block, param_data, each
 * 64-byte aligned: paddle2onnx keeps weights in Constant nodes, PyTorch in initializers, and the
 * rest of the runtime sees both as the same kind of parameter. The graph owns all its memory;
 * od_graph_destroy frees it. */
#ifndef OD_GRAPH_H
#define OD_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/dtype.h"
#include "runtime/status.h"

#define OD_MAX_DIMS 8
#define OD_DIM_UNKNOWN (-1)

/* ONNX's AttributeProto.AttributeType codes. */
enum od_attr_type {
  OD_ATTR_UNDEFINED = 0,
  OD_ATTR_FLOAT = 1,
  OD_ATTR_INT = 2,
  OD_ATTR_STRING = 3,
  OD_ATTR_TENSOR = 4,
  OD_ATTR_GRAPH = 5,
  OD_ATTR_FLOATS = 6,
  OD_ATTR_INTS = 7,
  OD_ATTR_STRINGS = 8,
  OD_ATTR_TENSORS = 9,
  OD_ATTR_GRAPHS = 10,
  OD_ATTR_SPARSE_TENSOR = 11,
  OD_ATTR_SPARSE_TENSORS = 12,
  OD_ATTR_TYPE_PROTO = 13,
  OD_ATTR_TYPE_PROTOS = 14,
};

/* A host tensor owned by whoever holds it (attribute tensors, test data). */
struct od_host_tensor {
  int dtype;                    /* enum od_dtype code */
  int rank;
  int64_t dims[OD_MAX_DIMS];
  size_t nelem;
  size_t nbytes;
  void *data;                   /* nbytes, malloc'd; NULL when nbytes == 0 */
};

struct od_attr {
  char *name;
  enum od_attr_type type;
  float f;                      /* FLOAT */
  int64_t i;                    /* INT */
  char *s;                      /* STRING: NUL-terminated copy of the bytes */
  size_t s_len;                 /* STRING: length without the terminator (bytes may hold NULs) */
  size_t n;                     /* element count of FLOATS, INTS, STRINGS, TENSORS, GRAPHS */
  float *floats;                /* FLOATS */
  int64_t *ints;                /* INTS */
  char **strings;               /* STRINGS */
  struct od_host_tensor *tensors; /* TENSOR (n == 1) and TENSORS */
};

struct od_node {
  char *name;                   /* may be empty: exporters often leave node names out */
  char *op_type;
  char *domain;                 /* "" for the default ai.onnx domain */
  int64_t opset;                /* the model's opset version for this node's domain */
  int n_inputs;
  int *inputs;                  /* value ids; -1 for an omitted optional input ("") */
  int n_outputs;
  int *outputs;                 /* value ids; -1 for an omitted optional output */
  int n_attrs;
  struct od_attr *attrs;
  bool has_subgraph;            /* carries a GRAPH/GRAPHS attribute (If, Loop, Scan) */
  int proto_index;              /* position in GraphProto.node */
};

enum od_value_kind {
  OD_VALUE_ACTIVATION = 0,      /* produced by a node */
  OD_VALUE_INPUT,               /* a real graph input (not an initializer) */
  OD_VALUE_INITIALIZER,         /* GraphProto.initializer (possibly also listed as an input, old IR) */
  OD_VALUE_CONSTANT,            /* the output of a Constant node: a parameter too */
};

/* What a value's declared TypeProto is; the runtime computes only on tensors. */
enum od_type_kind {
  OD_TYPE_UNKNOWN = 0,          /* no declaration (activations without value_info) */
  OD_TYPE_TENSOR,
  OD_TYPE_SEQUENCE,
  OD_TYPE_MAP,
  OD_TYPE_OPTIONAL,
  OD_TYPE_SPARSE_TENSOR,
  OD_TYPE_OTHER,                /* a TypeProto variant newer than the ONNX 1.12 schema */
};

struct od_value {
  char *name;
  enum od_value_kind kind;
  enum od_type_kind type_kind;
  int dtype;                    /* enum od_dtype code; 0 when not declared anywhere */
  int rank;                     /* -1 when unknown */
  int64_t dims[OD_MAX_DIMS];    /* OD_DIM_UNKNOWN where unknown or symbolic */
  char *dim_params[OD_MAX_DIMS];/* the symbolic name of a dim (e.g. "batch"), else NULL */
  int producer;                 /* node id, or -1 */
  int n_consumers;              /* how many node inputs read it */
  bool is_graph_input;          /* listed in GraphProto.input (initializers too, in old IR) */
  bool is_graph_output;
  size_t data_offset;           /* INITIALIZER and CONSTANT: offset of the data in param_data */
  size_t nbytes;                /* INITIALIZER and CONSTANT: data size in bytes */
  int source_index;             /* INITIALIZER: index in GraphProto.initializer; CONSTANT: node id */
};

struct od_opset {
  char *domain;                 /* "" for ai.onnx */
  int64_t version;
};

struct od_graph {
  char *name;
  int64_t ir_version;
  char *producer_name;
  char *producer_version;
  int n_opsets;
  struct od_opset *opsets;
  int n_values;
  struct od_value *values;
  int n_nodes;
  struct od_node *nodes;        /* topological order */
  int n_inputs;
  int *inputs;                  /* value ids of the real inputs, in file order */
  int n_outputs;
  int *outputs;                 /* value ids of the graph outputs, in file order */
  uint8_t *param_data;          /* every INITIALIZER and CONSTANT value, each 64-byte aligned */
  size_t param_bytes;
  int *name_table;              /* open-addressing hash of value names -> value id (-1 empty) */
  size_t name_table_cap;
  int values_cap;               /* allocated entries of values */
};

/* Appends a value named name (which must not exist yet) of the given kind, with unknown shape;
 * *id gets its id. OD_ERR_OOM on allocation failure (the graph is unchanged then). */
enum od_status od_graph_add_value(struct od_graph *g, const char *name, enum od_value_kind kind, int *id);

/* Appends an INITIALIZER value named name holding a copy of value src's dtype, shape and data
 * (src: an INITIALIZER or CONSTANT). The parameter block is reallocated: data pointers taken
 * before are invalid afterwards. source_index is left -1 for the caller to set. */
enum od_status od_graph_add_param_copy(struct od_graph *g, const char *name, int src, int *id);

/* Frees the graph and everything it owns; NULL is a no-op. */
void od_graph_destroy(struct od_graph *g);

/* The id of the value named name, or -1. */
int od_graph_find_value(const struct od_graph *g, const char *name);

/* The model's opset version for a domain ("" and "ai.onnx" are the same), or 0 if not imported. */
int64_t od_graph_opset(const struct od_graph *g, const char *domain);

/* The data of an INITIALIZER or CONSTANT value, or NULL for other kinds. */
void *od_value_data(const struct od_graph *g, const struct od_value *v);

/* Element count of a value with a fully known shape, or -1. */
int64_t od_value_numel(const struct od_value *v);

/* Attribute lookup by name; NULL when absent. */
const struct od_attr *od_node_attr(const struct od_node *n, const char *name);

/* "node 'conv1' (Conv-11)" style description of a node, written into buf. */
const char *od_node_describe(const struct od_node *n, char *buf, size_t size);

/* Frees what a host tensor owns (not the struct itself); NULL is a no-op. */
void od_host_tensor_free(struct od_host_tensor *t);

#endif
