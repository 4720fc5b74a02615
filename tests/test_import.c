/* tests/test_import.c: importing every model of the ONNX backend node tests, checked against
 * INDEX.tsv (written from the models by the onnx Python package, an independent reader): op type,
 * opset and node count; and decoding every input/output TensorProto of their data sets, checked
 * against the element counts their shapes give. Plus library-level cases of hand-built models. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loaders/onnx_import.h"
#include "loaders/onnx_tensor.h"
#include "loaders/pb_alloc.h"

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

START_TEST(test_node_tests_match_index) {
  char path[4096];
  snprintf(path, sizeof path, "%s/INDEX.tsv", OD_NODE_TESTS_DIR);
  FILE *idx = fopen(path, "r");
  ck_assert_msg(idx != NULL, "cannot open %s", path);
  char line[4096];
  ck_assert(fgets(line, sizeof line, idx)); /* header */
  int count = 0;
  while (fgets(line, sizeof line, idx)) {
    char test[512], op[128], ins[1024], outs[1024];
    int opset, ir, nodes;
    if (sscanf(line, "%511s\t%127s\t%d\t%d\t%d\t%1023s\t%1023s", test, op, &opset, &ir, &nodes, ins, outs) < 5)
      continue;
    snprintf(path, sizeof path, "%s/%s/model.onnx", OD_NODE_TESTS_DIR, test);
    struct od_err err = {0};
    struct od_model *m = NULL;
    enum od_status st = od_model_load(path, &m, &err);
    ck_assert_msg(st == OD_OK, "%s: %s", test, err.msg);
    const struct od_graph *g = m->graph;
    ck_assert_msg(g->n_nodes == nodes, "%s: %d nodes, index says %d", test, g->n_nodes, nodes);
    ck_assert_msg(g->ir_version == ir, "%s: ir %lld, index says %d", test, (long long)g->ir_version, ir);
    ck_assert_msg(od_graph_opset(g, "") == opset, "%s: opset %lld, index says %d", test,
                  (long long)od_graph_opset(g, ""), opset);
    bool found = false;
    for (int i = 0; i < g->n_nodes; i++) found |= !strcmp(g->nodes[i].op_type, op);
    /* _expanded tests replace the op by its function body */
    ck_assert_msg(found || strstr(test, "_expanded"), "%s: no %s node", test, op);
    /* topological order holds */
    for (int i = 0; i < g->n_nodes; i++)
      for (int k = 0; k < g->nodes[i].n_inputs; k++) {
        int v = g->nodes[i].inputs[k];
        ck_assert_msg(v < 0 || g->values[v].producer < i, "%s: node %d reads a later value", test, i);
      }
    od_model_destroy(m);
    count++;
  }
  fclose(idx);
  ck_assert_int_ge(count, 600);
}
END_TEST

/* Decodes every test_data_set_0/ .pb TensorProto: numeric ones decode to nelem elements; string
 * ones are refused as unsupported with a message. */
START_TEST(test_node_test_tensors_decode) {
  DIR *d = opendir(OD_NODE_TESTS_DIR);
  ck_assert(d != NULL);
  struct dirent *e;
  int decoded = 0, refused = 0;
  ProtobufCAllocator alloc;
  od_pb_allocator_init(&alloc);
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "test_", 5)) continue;
    if (!strcmp(e->d_name, "test_identity_sequence") || !strcmp(e->d_name, "test_identity_opt")) continue;
    for (int io = 0; io < 2; io++)
      for (int k = 0;; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/%s_%d.pb", OD_NODE_TESTS_DIR, e->d_name,
                 io ? "output" : "input", k);
        size_t len;
        char *buf = read_all(path, &len);
        if (!buf) break;
        Onnx__TensorProto *t = onnx__tensor_proto__unpack(&alloc, len, (const uint8_t *)buf);
        ck_assert_msg(t != NULL, "%s does not unpack", path);
        struct od_host_tensor h;
        struct od_err err = {0};
        enum od_status st = od_tensor_proto_to_host(t, NULL, path, &h, &err);
        if (od_dtype_is_supported(t->data_type)) {
          ck_assert_msg(st == OD_OK, "%s: %s", path, err.msg);
          size_t ne = 1;
          for (size_t i = 0; i < t->n_dims; i++) ne *= (size_t)t->dims[i];
          ck_assert_uint_eq(h.nelem, ne);
          ck_assert_uint_eq(h.nbytes, ne * od_dtype_size(t->data_type));
          if (t->has_raw_data && t->raw_data.len) ck_assert_mem_eq(h.data, t->raw_data.data, h.nbytes);
          od_host_tensor_free(&h);
          decoded++;
        } else {
          ck_assert_int_eq(st, OD_ERR_UNSUPPORTED);
          ck_assert_msg(strstr(err.msg, "not supported"), "%s: %s", path, err.msg);
          refused++;
        }
        protobuf_c_message_free_unpacked(&t->base, &alloc);
        free(buf);
      }
  }
  closedir(d);
  ck_assert_int_gt(decoded, 1500);
  ck_assert_int_gt(refused, 0);
}
END_TEST

/* ---- hand-built models ---------------------------------------------------------------------- */

/* A tiny builder for ModelProto bytes: one graph, nodes with one op each. */
struct mb {
  Onnx__ModelProto m;
  Onnx__GraphProto g;
  Onnx__OperatorSetIdProto opset, *opsets[1];
  Onnx__NodeProto nodes[8], *node_ptrs[8];
  Onnx__ValueInfoProto ins[4], outs[4], *in_ptrs[4], *out_ptrs[4];
  Onnx__TensorProto inits[4], *init_ptrs[4];
};

static void mb_init(struct mb *b) {
  memset(b, 0, sizeof *b);
  onnx__model_proto__init(&b->m);
  onnx__graph_proto__init(&b->g);
  onnx__operator_set_id_proto__init(&b->opset);
  b->opset.has_version = 1;
  b->opset.version = 13;
  b->opset.domain = "";
  b->opsets[0] = &b->opset;
  b->m.n_opset_import = 1;
  b->m.opset_import = b->opsets;
  b->m.has_ir_version = 1;
  b->m.ir_version = 7;
  b->m.graph = &b->g;
  b->g.name = "g";
  b->g.node = b->node_ptrs;
  b->g.input = b->in_ptrs;
  b->g.output = b->out_ptrs;
  b->g.initializer = b->init_ptrs;
}

static void mb_node(struct mb *b, const char *name, const char *op, char **in, size_t nin, char **out, size_t nout) {
  Onnx__NodeProto *n = &b->nodes[b->g.n_node];
  onnx__node_proto__init(n);
  n->name = (char *)name;
  n->op_type = (char *)op;
  n->input = in;
  n->n_input = nin;
  n->output = out;
  n->n_output = nout;
  b->node_ptrs[b->g.n_node++] = n;
}

static void mb_io(struct mb *b, bool input, const char *name) {
  Onnx__ValueInfoProto *v = input ? &b->ins[b->g.n_input] : &b->outs[b->g.n_output];
  onnx__value_info_proto__init(v);
  v->name = (char *)name;
  if (input) b->in_ptrs[b->g.n_input++] = v;
  else b->out_ptrs[b->g.n_output++] = v;
}

static Onnx__TensorProto *mb_init_tensor(struct mb *b, const char *name, int dtype, int64_t *dims, size_t ndims) {
  Onnx__TensorProto *t = &b->inits[b->g.n_initializer];
  onnx__tensor_proto__init(t);
  t->name = (char *)name;
  t->has_data_type = 1;
  t->data_type = dtype;
  t->dims = dims;
  t->n_dims = ndims;
  b->init_ptrs[b->g.n_initializer++] = t;
  return t;
}

static enum od_status mb_load(struct mb *b, struct od_model **m, struct od_err *err) {
  size_t n = onnx__model_proto__get_packed_size(&b->m);
  uint8_t *buf = malloc(n);
  onnx__model_proto__pack(&b->m, buf);
  enum od_status st = od_model_load_buffer(buf, n, "t.onnx", OD_TEST_TMP, m, err);
  free(buf);
  return st;
}

static char *X[] = {"X"}, *Y[] = {"Y"}, *Z[] = {"Z"}, *XW[] = {"X", "W"}, *XQ[] = {"X", "Q"};

START_TEST(test_unsorted_file_is_sorted) {
  struct mb b;
  mb_init(&b);
  mb_io(&b, true, "X");
  mb_io(&b, false, "Z");
  mb_node(&b, "second", "Relu", Y, 1, Z, 1);
  mb_node(&b, "first", "Relu", X, 1, Y, 1);
  struct od_model *m = NULL;
  struct od_err err = {0};
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_OK);
  ck_assert_str_eq(m->graph->nodes[0].name, "first");
  ck_assert_int_eq(m->graph->nodes[0].proto_index, 1);
  ck_assert_str_eq(m->graph->nodes[1].name, "second");
  od_model_destroy(m);
}
END_TEST

START_TEST(test_cycle) {
  struct mb b;
  mb_init(&b);
  mb_io(&b, true, "X");
  mb_io(&b, false, "Z");
  static char *YQ[] = {"Y", "Q"}, *ZQ[] = {"Z", "Q2"}, *Zin[] = {"Z"}, *Qout[] = {"Q"};
  (void)ZQ;
  mb_node(&b, "a", "Add", YQ, 2, Z, 1);
  mb_node(&b, "b", "Relu", Zin, 1, Qout, 1);
  mb_node(&b, "c", "Relu", X, 1, Y, 1);
  struct od_model *m = NULL;
  struct od_err err = {0};
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "cycle through node 'a' (Add-13)"), "%s", err.msg);
  ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_dangling_and_duplicate) {
  struct mb b;
  mb_init(&b);
  mb_io(&b, true, "X");
  mb_io(&b, false, "Y");
  mb_node(&b, "a", "Add", XQ, 2, Y, 1);
  struct od_model *m = NULL;
  struct od_err err = {0};
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "node 'a' (Add-13) input 1 'Q' is not a graph input"), "%s", err.msg);
  mb_init(&b);
  mb_io(&b, true, "X");
  mb_io(&b, false, "Y");
  mb_node(&b, "a", "Relu", X, 1, Y, 1);
  mb_node(&b, "b", "Relu", X, 1, Y, 1);
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "node 'b' (Relu-13) output 0 'Y' is already produced by node 'a' (Relu-13)"), "%s",
                err.msg);
}
END_TEST

START_TEST(test_initializer_checks) {
  struct mb b;
  struct od_model *m = NULL;
  struct od_err err = {0};
  int64_t dims[2] = {2, 3};
  float six[6] = {1, 2, 3, 4, 5, 6};
  /* good: float_data */
  mb_init(&b);
  mb_io(&b, true, "X");
  mb_io(&b, false, "Y");
  mb_node(&b, "mul", "Mul", XW, 2, Y, 1);
  Onnx__TensorProto *t = mb_init_tensor(&b, "W", OD_DTYPE_FLOAT, dims, 2);
  t->float_data = six;
  t->n_float_data = 6;
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_OK);
  int w = od_graph_find_value(m->graph, "W");
  ck_assert_int_eq(m->graph->values[w].kind, OD_VALUE_INITIALIZER);
  ck_assert_mem_eq(od_value_data(m->graph, &m->graph->values[w]), six, sizeof six);
  ck_assert_int_eq(m->graph->n_inputs, 1);
  od_model_destroy(m);
  /* count mismatch */
  t->n_float_data = 5;
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "initializer 'W': float_data has 5 values but the shape has 6 elements"), "%s", err.msg);
  /* raw_data length mismatch */
  t->n_float_data = 0;
  t->has_raw_data = 1;
  t->raw_data.data = (uint8_t *)six;
  t->raw_data.len = 20;
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "raw_data has 20 bytes but float shape with 6 elements needs 24"), "%s", err.msg);
  /* negative dim */
  t->raw_data.len = 24;
  dims[1] = -3;
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "dims[1] is negative (-3)"), "%s", err.msg);
  /* overflowing dims */
  dims[0] = INT64_C(1) << 40;
  dims[1] = INT64_C(1) << 40;
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "element count overflows"), "%s", err.msg);
  /* string tensor */
  dims[0] = 2;
  dims[1] = 3;
  t->data_type = OD_DTYPE_STRING;
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_UNSUPPORTED);
  ck_assert_msg(strstr(err.msg, "initializer 'W': string tensors are not supported"), "%s", err.msg);
  /* old IR: an initializer also listed as a graph input is not a real input */
  t->data_type = OD_DTYPE_FLOAT;
  mb_io(&b, true, "W");
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_OK);
  ck_assert_int_eq(m->graph->n_inputs, 1);
  ck_assert_str_eq(m->graph->values[m->graph->inputs[0]].name, "X");
  od_model_destroy(m);
}
END_TEST

START_TEST(test_external_paths) {
  struct mb b;
  struct od_model *m = NULL;
  struct od_err err = {0};
  int64_t dims[1] = {4};
  float four[4] = {1.5f, -2, 3, 4};
  char path[4096];
  snprintf(path, sizeof path, "%s/w.bin", OD_TEST_TMP);
  FILE *f = fopen(path, "wb");
  fwrite("pad!", 1, 4, f);
  fwrite(four, sizeof four, 1, f);
  fclose(f);
  Onnx__StringStringEntryProto loc = ONNX__STRING_STRING_ENTRY_PROTO__INIT, off = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
  Onnx__StringStringEntryProto *ext[2] = {&loc, &off};
  loc.key = "location";
  loc.value = "w.bin";
  off.key = "offset";
  off.value = "4";
  mb_init(&b);
  mb_io(&b, true, "X");
  mb_io(&b, false, "Y");
  mb_node(&b, "mul", "Mul", XW, 2, Y, 1);
  Onnx__TensorProto *t = mb_init_tensor(&b, "W", OD_DTYPE_FLOAT, dims, 1);
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  t->external_data = ext;
  t->n_external_data = 2;
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_OK);
  ck_assert_mem_eq(od_value_data(m->graph, &m->graph->values[od_graph_find_value(m->graph, "W")]), four, 16);
  od_model_destroy(m);
  off.value = "8"; /* past the end */
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "needs bytes 8..24 but the file has 20 bytes"), "%s", err.msg);
  off.value = "4";
  loc.value = "../w.bin";
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "initializer 'W': external data location '../w.bin' leaves the model's folder"), "%s",
                err.msg);
  loc.value = "/etc/passwd";
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "is an absolute path"), "%s", err.msg);
}
END_TEST

START_TEST(test_constant_is_parameter) {
  struct mb b;
  struct od_model *m = NULL;
  struct od_err err = {0};
  int64_t dims[1] = {3};
  float three[3] = {7, 8, 9};
  static char *Wout[] = {"W"};
  mb_init(&b);
  mb_io(&b, true, "X");
  mb_io(&b, false, "Y");
  mb_node(&b, "w", "Constant", NULL, 0, Wout, 1);
  mb_node(&b, "mul", "Mul", XW, 2, Y, 1);
  Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
  t.has_data_type = 1;
  t.data_type = OD_DTYPE_FLOAT;
  t.dims = dims;
  t.n_dims = 1;
  t.float_data = three;
  t.n_float_data = 3;
  Onnx__AttributeProto a = ONNX__ATTRIBUTE_PROTO__INIT, *ap[1] = {&a};
  a.name = "value";
  a.has_type = 1;
  a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
  a.t = &t;
  b.nodes[0].attribute = ap;
  b.nodes[0].n_attribute = 1;
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_OK);
  const struct od_value *v = &m->graph->values[od_graph_find_value(m->graph, "W")];
  ck_assert_int_eq(v->kind, OD_VALUE_CONSTANT);
  ck_assert_int_eq(v->rank, 1);
  ck_assert_int_eq(v->dims[0], 3);
  ck_assert_mem_eq(od_value_data(m->graph, v), three, sizeof three);
  od_model_destroy(m);
}
END_TEST

START_TEST(test_unknown_domain_and_empty) {
  struct mb b;
  struct od_model *m = NULL;
  struct od_err err = {0};
  mb_init(&b);
  mb_io(&b, true, "X");
  mb_io(&b, false, "Y");
  mb_node(&b, "n", "Foo", X, 1, Y, 1);
  b.nodes[0].domain = "com.example";
  ck_assert_int_eq(mb_load(&b, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_msg(strstr(err.msg, "uses domain 'com.example', which opset_import does not list"), "%s", err.msg);
  ck_assert_int_eq(od_model_load_buffer((const uint8_t *)"", 0, "e.onnx", NULL, &m, &err), OD_ERR_INVALID_MODEL);
  ck_assert_str_eq(err.msg, "e.onnx: file is empty");
  ck_assert_int_eq(od_model_load("/nonexistent/x.onnx", &m, &err), OD_ERR_IO);
  ck_assert_msg(strstr(err.msg, "/nonexistent/x.onnx: cannot open"), "%s", err.msg);
}
END_TEST

int main(void) {
  Suite *s = suite_create("import");
  TCase *tc = tcase_create("node_tests");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_node_tests_match_index);
  tcase_add_test(tc, test_node_test_tensors_decode);
  suite_add_tcase(s, tc);
  TCase *hb = tcase_create("hand_built");
  tcase_add_test(hb, test_unsorted_file_is_sorted);
  tcase_add_test(hb, test_cycle);
  tcase_add_test(hb, test_dangling_and_duplicate);
  tcase_add_test(hb, test_initializer_checks);
  tcase_add_test(hb, test_external_paths);
  tcase_add_test(hb, test_constant_is_parameter);
  tcase_add_test(hb, test_unknown_domain_and_empty);
  suite_add_tcase(s, hb);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
