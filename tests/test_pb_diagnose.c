/* tests/test_pb_diagnose.c: od_pb_diagnose on corrupted ONNX protobuf.
 *
 * A small valid ModelProto (two nodes, attributes of type float, tensor and ints, an initializer
 * with raw_data, graph inputs and outputs) is packed with protobuf-c and then damaged: truncated,
 * a length byte raised, a tag's wire type changed, bytes appended. Each case checks that
 * protobuf-c's unpack rejects the bytes and that od_pb_diagnose names the field path and reason.
 * The sweeps at the end check that the two agree on every truncation, on single-byte corruptions
 * and on random bytes: whatever protobuf-c rejects gets a diagnosis, whatever it accepts gets none. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/pb_diagnose.h"
#include "onnx/onnx.pb-c.h"

/* The raw_data payloads: byte runs that occur nowhere else, so the tests can find them. */
#define MARK_W_LEN 24 /* initializer "w": 2x3 float32 */
#define MARK_T_LEN 8  /* attribute "t": 2 float32 */

struct buf {
  uint8_t *data;
  size_t len;
};

/* Packs the test model into a malloc'd buffer. */
static struct buf model_pack(void) {
  uint8_t mark_w[MARK_W_LEN], mark_t[MARK_T_LEN];
  for (int i = 0; i < MARK_W_LEN; i++) mark_w[i] = (uint8_t)(0xA0 + i);
  for (int i = 0; i < MARK_T_LEN; i++) mark_t[i] = (uint8_t)(0xC0 + i);

  Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
  int64_t t_dims[] = {2};
  t.n_dims = 1;
  t.dims = t_dims;
  t.has_data_type = 1;
  t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  t.has_raw_data = 1;
  t.raw_data = (ProtobufCBinaryData){.len = MARK_T_LEN, .data = mark_t};

  Onnx__AttributeProto a_alpha = ONNX__ATTRIBUTE_PROTO__INIT;
  a_alpha.name = "alpha";
  a_alpha.has_f = 1;
  a_alpha.f = 0.5f;
  a_alpha.has_type = 1;
  a_alpha.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  Onnx__AttributeProto a_t = ONNX__ATTRIBUTE_PROTO__INIT;
  a_t.name = "t";
  a_t.t = &t;
  a_t.has_type = 1;
  a_t.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
  Onnx__AttributeProto a_ints = ONNX__ATTRIBUTE_PROTO__INIT;
  int64_t ints[] = {1, 2, 3};
  a_ints.name = "ints";
  a_ints.n_ints = 3;
  a_ints.ints = ints;
  a_ints.has_type = 1;
  a_ints.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  Onnx__AttributeProto *attrs[] = {&a_alpha, &a_t, &a_ints};

  char *relu_in[] = {"x"}, *relu_out[] = {"h"}, *mul_in[] = {"h", "w"}, *mul_out[] = {"y"};
  Onnx__NodeProto relu = ONNX__NODE_PROTO__INIT;
  relu.name = "relu0";
  relu.op_type = "Relu";
  relu.n_input = 1;
  relu.input = relu_in;
  relu.n_output = 1;
  relu.output = relu_out;
  Onnx__NodeProto mul = ONNX__NODE_PROTO__INIT;
  mul.name = "mul0";
  mul.op_type = "Mul";
  mul.n_input = 2;
  mul.input = mul_in;
  mul.n_output = 1;
  mul.output = mul_out;
  mul.n_attribute = 3;
  mul.attribute = attrs;
  Onnx__NodeProto *nodes[] = {&relu, &mul};

  Onnx__TensorProto w = ONNX__TENSOR_PROTO__INIT;
  int64_t w_dims[] = {2, 3};
  w.name = "w";
  w.n_dims = 2;
  w.dims = w_dims;
  w.has_data_type = 1;
  w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  w.has_raw_data = 1;
  w.raw_data = (ProtobufCBinaryData){.len = MARK_W_LEN, .data = mark_w};
  Onnx__TensorProto *inits[] = {&w};

  Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
  tt.has_elem_type = 1;
  tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  Onnx__TypeProto ty = ONNX__TYPE_PROTO__INIT;
  ty.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  ty.tensor_type = &tt;
  Onnx__ValueInfoProto vx = ONNX__VALUE_INFO_PROTO__INIT, vy = ONNX__VALUE_INFO_PROTO__INIT;
  vx.name = "x";
  vx.type = &ty;
  vy.name = "y";
  vy.type = &ty;
  Onnx__ValueInfoProto *ins[] = {&vx}, *outs[] = {&vy};

  Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
  g.name = "g";
  g.n_node = 2;
  g.node = nodes;
  g.n_initializer = 1;
  g.initializer = inits;
  g.n_input = 1;
  g.input = ins;
  g.n_output = 1;
  g.output = outs;

  Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
  opset.domain = "";
  opset.has_version = 1;
  opset.version = 13;
  Onnx__OperatorSetIdProto *opsets[] = {&opset};

  Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
  m.has_ir_version = 1;
  m.ir_version = 8;
  m.producer_name = "od-test";
  m.graph = &g;
  m.n_opset_import = 1;
  m.opset_import = opsets;

  struct buf b;
  b.len = onnx__model_proto__get_packed_size(&m);
  b.data = malloc(b.len + 64); /* room for appended bytes */
  ck_assert_ptr_nonnull(b.data);
  ck_assert_uint_eq(onnx__model_proto__pack(&m, b.data), b.len);
  return b;
}

/* Offset of the first occurrence of needle in b at or after from; fails the test when absent. */
static size_t find(struct buf b, size_t from, const void *needle, size_t n) {
  for (size_t i = from; i + n <= b.len; i++)
    if (memcmp(b.data + i, needle, n) == 0) return i;
  ck_abort_msg("byte pattern not found in the packed model");
  return 0;
}

static bool unpacks(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len) {
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
  if (m) protobuf_c_message_free_unpacked(m, NULL);
  return m != NULL;
}

/* Asserts that protobuf-c rejects data and that the diagnosis contains each of the strings. */
static void expect_diag(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                        const char *s1, const char *s2, const char *s3) {
  ck_assert_msg(!unpacks(desc, data, len), "protobuf-c accepted the corrupted bytes (%zu bytes)", len);
  struct od_err err = {0};
  enum od_status st = od_pb_diagnose(data, len, desc, &err);
  ck_assert_msg(st == OD_ERR_INVALID_MODEL, "od_pb_diagnose returned %d, message '%s'", (int)st, err.msg);
  ck_assert_int_eq(err.status, OD_ERR_INVALID_MODEL);
  const char *want[] = {s1, s2, s3};
  for (int i = 0; i < 3; i++)
    if (want[i]) ck_assert_msg(strstr(err.msg, want[i]), "diagnosis '%s' lacks '%s'", err.msg, want[i]);
}

static void expect_model_diag(struct buf b, const char *s1, const char *s2, const char *s3) {
  expect_diag(&onnx__model_proto__descriptor, b.data, b.len, s1, s2, s3);
}

START_TEST(test_intact) {
  struct buf b = model_pack();
  ck_assert(unpacks(&onnx__model_proto__descriptor, b.data, b.len));
  struct od_err err = {.status = OD_ERR_IO, .msg = "untouched"};
  ck_assert_int_eq(od_pb_diagnose(b.data, b.len, &onnx__model_proto__descriptor, &err), OD_OK);
  ck_assert_int_eq(err.status, OD_ERR_IO); /* err untouched on OD_OK */
  ck_assert_str_eq(err.msg, "untouched");
  ck_assert_int_eq(od_pb_diagnose(b.data, b.len, &onnx__model_proto__descriptor, NULL), OD_OK);
  free(b.data);
}
END_TEST

START_TEST(test_empty) {
  struct od_err err = {0};
  uint8_t none = 0;
  ck_assert_int_eq(od_pb_diagnose(&none, 0, &onnx__model_proto__descriptor, &err), OD_ERR_INVALID_MODEL);
  ck_assert_str_eq(err.msg, "file is empty");
  ck_assert_int_eq(od_pb_diagnose(&none, 0, &onnx__model_proto__descriptor, NULL), OD_ERR_INVALID_MODEL);
}
END_TEST

START_TEST(test_truncated_initializer_raw_data) {
  struct buf b = model_pack();
  uint8_t mark[] = {0xA0, 0xA1, 0xA2, 0xA3};
  size_t at = find(b, 0, mark, sizeof mark);
  b.len = at + 10;
  char where[64];
  snprintf(where, sizeof where, "(field 9) at byte %zu:", at - 2); /* tag 0x4a, length 24 */
  expect_model_diag(b, "graph.initializer[0].raw_data", where, "declares 24 bytes but only 10 remain");
  expect_model_diag(b, "truncated", NULL, NULL);
  free(b.data);
}
END_TEST

START_TEST(test_truncated_attribute_tensor) {
  struct buf b = model_pack();
  uint8_t mark[] = {0xC0, 0xC1, 0xC2};
  b.len = find(b, 0, mark, sizeof mark) + 3;
  expect_model_diag(b, "graph.node[1].attribute[1].t.raw_data (field 9)", "declares 8 bytes but only 3 remain",
                    NULL);
  free(b.data);
}
END_TEST

START_TEST(test_truncated_fixed32) {
  struct buf b = model_pack();
  uint8_t f_half[] = {0x15, 0x00, 0x00, 0x00, 0x3f}; /* attribute.f (field 2, 32-bit) = 0.5f */
  b.len = find(b, 0, f_half, sizeof f_half) + 3;
  expect_model_diag(b, "graph.node[1].attribute[0].f (field 2)", "truncated fixed32", "only 2 remain");
  free(b.data);
}
END_TEST

START_TEST(test_truncated_varint) {
  struct buf b = model_pack();
  ck_assert_uint_eq(b.data[0], 0x08); /* ir_version (field 1, varint) comes first */
  b.len = 1;
  expect_model_diag(b, "ir_version (field 1) at byte 0:", "truncated varint", "truncated?");
  /* a varint cut inside a nested message: graph.node[1].attribute[0].type (field 20) */
  struct buf c = model_pack();
  uint8_t alpha[] = {'a', 'l', 'p', 'h', 'a'};
  uint8_t type_tag[] = {0xa0, 0x01};
  c.len = find(c, find(c, 0, alpha, sizeof alpha), type_tag, sizeof type_tag) + 2;
  expect_diag(&onnx__model_proto__descriptor, c.data, c.len, "graph.node[1].attribute[0].type (field 20)",
              "truncated varint", NULL);
  free(b.data);
  free(c.data);
}
END_TEST

START_TEST(test_truncated_tag) {
  struct buf b = model_pack();
  uint8_t alpha[] = {'a', 'l', 'p', 'h', 'a'};
  uint8_t type_tag[] = {0xa0, 0x01}; /* field 20 takes a two-byte tag */
  b.len = find(b, find(b, 0, alpha, sizeof alpha), type_tag, sizeof type_tag) + 1;
  expect_model_diag(b, "graph.node[1].attribute[0] at byte", "field tag cut short", NULL);
  /* at the top level the path is the message type */
  uint8_t top[] = {0x08, 0x01, 0x80};
  expect_diag(&onnx__model_proto__descriptor, top, sizeof top, "ModelProto at byte 2:", "field tag cut short",
              NULL);
  free(b.data);
}
END_TEST

START_TEST(test_truncated_length_prefix) {
  struct buf b = model_pack();
  uint8_t producer[] = {'o', 'd', '-', 't', 'e', 's', 't', 0x3a};
  size_t tag = find(b, 0, producer, sizeof producer) + 7;
  ck_assert_uint_eq(b.data[tag + 1] & 0x80, 0x80); /* graph's length takes two bytes */
  b.len = tag + 2;
  char where[64];
  snprintf(where, sizeof where, "graph (field 7) at byte %zu:", tag);
  expect_model_diag(b, where, "truncated length prefix", NULL);
  free(b.data);
}
END_TEST

START_TEST(test_cut_at_field_boundary) {
  /* a file cut exactly between two nodes: the graph's declared length is what is wrong */
  struct buf b = model_pack();
  uint8_t mul_node[] = {0x0a, 0x01, 'h', 0x0a, 0x01, 'w'}; /* node[1] starts with input "h", "w" */
  size_t node1 = find(b, 0, mul_node, sizeof mul_node);
  b.len = node1 - 2; /* before node[1]'s tag and length */
  expect_model_diag(b, "graph (field 7)", "declares", "truncated?");
  free(b.data);
}
END_TEST

START_TEST(test_length_too_large) {
  struct buf b = model_pack();
  uint8_t mark[] = {0xA0, 0xA1, 0xA2, 0xA3};
  size_t at = find(b, 0, mark, sizeof mark);
  ck_assert_uint_eq(b.data[at - 1], MARK_W_LEN);
  b.data[at - 1] = 100;
  expect_model_diag(b, "graph.initializer[0].raw_data (field 9)", "declares 100 bytes but only 24 remain", NULL);
  struct od_err err = {0};
  od_pb_diagnose(b.data, b.len, &onnx__model_proto__descriptor, &err);
  ck_assert_msg(!strstr(err.msg, "truncated"), "a wrong length inside the file is not a truncation: %s", err.msg);
  free(b.data);
}
END_TEST

START_TEST(test_attribute_length_too_large) {
  /* attribute[2] ("ints") is the last field of node[1]: any larger length runs past the node */
  struct buf b = model_pack();
  uint8_t ints_attr[] = {0x0a, 0x04, 'i', 'n', 't', 's'}; /* its name comes first */
  size_t at = find(b, 0, ints_attr, sizeof ints_attr);
  ck_assert_uint_eq(b.data[at - 2], 0x2a); /* NodeProto.attribute tag */
  b.data[at - 1] += 5;
  char where[64];
  snprintf(where, sizeof where, "(field 5) at byte %zu:", at - 2);
  expect_model_diag(b, "graph.node[1].attribute[2]", where, "declares");
  free(b.data);
}
END_TEST

/* The tag of node[1].op_type ("Mul"), to rewrite its wire type. */
static size_t mul_op_type_tag(struct buf b) {
  uint8_t op[] = {0x22, 0x03, 'M', 'u', 'l'};
  return find(b, 0, op, sizeof op);
}

START_TEST(test_wrong_wire_type) {
  struct buf b = model_pack();
  size_t at = mul_op_type_tag(b);
  b.data[at] = 0x20; /* field 4 as a varint */
  char where[64];
  snprintf(where, sizeof where, "(field 4) at byte %zu:", at);
  expect_model_diag(b, "graph.node[1].op_type", where, "expected length-delimited, got varint");
  free(b.data);
  /* a repeated numeric field says it may also be packed */
  uint8_t dims_fixed[] = {0x0d, 1, 2, 3, 4}; /* TensorProto.dims (int64) as 32-bit */
  expect_diag(&onnx__tensor_proto__descriptor, dims_fixed, sizeof dims_fixed, "dims (field 1) at byte 0:",
              "expected varint (or a packed length-delimited run), got 32-bit", NULL);
}
END_TEST

START_TEST(test_invalid_wire_type) {
  struct buf b = model_pack();
  size_t at = mul_op_type_tag(b);
  b.data[at] = 0x27;
  expect_model_diag(b, "graph.node[1].op_type (field 4)", "invalid wire type 7", NULL);
  b.data[at] = 0x26;
  expect_model_diag(b, "graph.node[1].op_type (field 4)", "invalid wire type 6", NULL);
  free(b.data);
}
END_TEST

START_TEST(test_groups) {
  struct buf b = model_pack();
  size_t at = mul_op_type_tag(b);
  b.data[at] = 0x23;
  expect_model_diag(b, "graph.node[1].op_type (field 4)", "start-group", "groups are not used by ONNX");
  b.data[at] = 0x24;
  expect_model_diag(b, "graph.node[1].op_type (field 4)", "end-group", "groups are not used by ONNX");
  free(b.data);
}
END_TEST

START_TEST(test_field_zero) {
  struct buf b = model_pack();
  size_t at = mul_op_type_tag(b);
  b.data[at] = 0x02; /* field 0, length-delimited */
  char where[64];
  snprintf(where, sizeof where, "graph.node[1] at byte %zu:", at);
  expect_model_diag(b, where, "field number 0", NULL);
  free(b.data);
}
END_TEST

START_TEST(test_unknown_fields_skipped) {
  struct buf b = model_pack();
  /* field 127 as varint, 32-bit, 64-bit and length-delimited: legal, from a newer ONNX */
  static const uint8_t extra[] = {0xf8, 0x07, 0x96, 0x01, 0xfd, 0x07, 1, 2, 3, 4, 0xf9, 0x07, 1, 2, 3, 4, 5,
                                  6, 7, 8, 0xfa, 0x07, 0x02, 0xaa, 0xbb};
  memcpy(b.data + b.len, extra, sizeof extra);
  b.len += sizeof extra;
  ck_assert(unpacks(&onnx__model_proto__descriptor, b.data, b.len));
  ck_assert_int_eq(od_pb_diagnose(b.data, b.len, &onnx__model_proto__descriptor, NULL), OD_OK);
  free(b.data);
  /* inside a nested message too, and numeric repeated fields packed or not */
  static const uint8_t tensor[] = {0xf8, 0x07, 0x01, 0x22, 0x04, 0, 0, 0x80, 0x3f, 0x25, 0, 0, 0, 0x40,
                                   0x08, 0x02, 0x0a, 0x02, 0x03, 0x04};
  ck_assert(unpacks(&onnx__tensor_proto__descriptor, tensor, sizeof tensor));
  ck_assert_int_eq(od_pb_diagnose(tensor, sizeof tensor, &onnx__tensor_proto__descriptor, NULL), OD_OK);
}
END_TEST

START_TEST(test_unknown_field_problems) {
  struct buf b = model_pack();
  size_t len = b.len;
  static const uint8_t wire6[] = {0xfe, 0x07};
  memcpy(b.data + len, wire6, sizeof wire6);
  b.len = len + sizeof wire6;
  expect_model_diag(b, "<unknown> (field 127)", "invalid wire type 6", NULL);
  static const uint8_t fixed64[] = {0xf9, 0x07, 1, 2, 3};
  memcpy(b.data + len, fixed64, sizeof fixed64);
  b.len = len + sizeof fixed64;
  expect_model_diag(b, "<unknown> (field 127)", "truncated fixed64: needs 8 bytes but only 3 remain", NULL);
  static const uint8_t long_varint[] = {0xf8, 0x07, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  memcpy(b.data + len, long_varint, sizeof long_varint);
  b.len = len + sizeof long_varint;
  expect_model_diag(b, "<unknown> (field 127)", "varint longer than 10 bytes", NULL);
  free(b.data);
}
END_TEST

START_TEST(test_packed) {
  static const uint8_t floats3[] = {0x22, 0x03, 1, 2, 3}; /* float_data, 3 bytes */
  expect_diag(&onnx__tensor_proto__descriptor, floats3, sizeof floats3, "float_data (field 4) at byte 0:",
              "not a multiple of 4", NULL);
  static const uint8_t doubles[] = {0x52, 0x04, 1, 2, 3, 4}; /* double_data, 4 bytes */
  expect_diag(&onnx__tensor_proto__descriptor, doubles, sizeof doubles, "double_data (field 10)",
              "not a multiple of 8", NULL);
  static const uint8_t int64s[] = {0x3a, 0x02, 0x01, 0x80}; /* int64_data: second value unfinished */
  expect_diag(&onnx__tensor_proto__descriptor, int64s, sizeof int64s, "int64_data (field 7)",
              "packed value 1 at byte 3", "runs past the end of the packed run");
}
END_TEST

/* A ModelProto whose graph.input[0].type nests sequence_type/elem_type pairs levels times. */
static struct buf deep_model(int pairs) {
  size_t cap = 16 + (size_t)pairs * 16;
  uint8_t *tmp = malloc(cap), *out = malloc(cap);
  ck_assert(tmp && out);
  /* innermost TypeProto: tensor_type { elem_type: 1 } */
  size_t n = 0;
  static const uint8_t inner[] = {0x0a, 0x02, 0x08, 0x01};
  memcpy(out, inner, sizeof inner);
  n = sizeof inner;
  /* wraps out in `tag length` */
  for (int level = 0; level < 2 * pairs + 3; level++) {
    uint8_t tag;
    if (level < 2 * pairs) tag = level % 2 == 0 ? 0x0a /* Sequence.elem_type */ : 0x22 /* TypeProto.sequence_type */;
    else if (level == 2 * pairs) tag = 0x12; /* ValueInfoProto.type */
    else if (level == 2 * pairs + 1) tag = 0x5a; /* GraphProto.input */
    else tag = 0x3a;                             /* ModelProto.graph */
    size_t k = 0;
    tmp[k++] = tag;
    for (size_t v = n; ; v >>= 7) {
      tmp[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
      if (v < 0x80) break;
    }
    memcpy(tmp + k, out, n);
    n += k;
    memcpy(out, tmp, n);
  }
  free(tmp);
  return (struct buf){.data = out, .len = n};
}

START_TEST(test_too_deep) {
  struct buf ok = deep_model(40); /* 85 messages deep */
  ck_assert(unpacks(&onnx__model_proto__descriptor, ok.data, ok.len));
  ck_assert_int_eq(od_pb_diagnose(ok.data, ok.len, &onnx__model_proto__descriptor, NULL), OD_OK);
  free(ok.data);
  /* protobuf-c unpacks any depth (recursively: deep enough, it overflows the stack), so only the
   * diagnosis is checked here */
  struct buf deep = deep_model(1000);
  struct od_err err = {0};
  ck_assert_int_eq(od_pb_diagnose(deep.data, deep.len, &onnx__model_proto__descriptor, &err),
                   OD_ERR_INVALID_MODEL);
  /* the path keeps its first and last levels: graph.input[0].type.sequence_type.<91 more>.elem_type... */
  ck_assert_msg(strstr(err.msg, "graph.input[0].type.sequence_type.<91 more>.sequence_type.elem_type"), "%s",
                err.msg);
  ck_assert_msg(strstr(err.msg, "nested more than 100 deep"), "%s", err.msg);
  free(deep.data);
}
END_TEST

/* Checks that od_pb_diagnose agrees with protobuf-c on data: an error with a located message for
 * what protobuf-c rejects, OD_OK for what it accepts (bar the two things it rejects on purpose). */
static void check_agrees(const uint8_t *data, size_t len, const char *what) {
  bool ok = unpacks(&onnx__model_proto__descriptor, data, len);
  struct od_err err = {0};
  enum od_status st = od_pb_diagnose(data, len, &onnx__model_proto__descriptor, &err);
  if (!ok) {
    ck_assert_msg(st == OD_ERR_INVALID_MODEL, "%s: protobuf-c rejects it, od_pb_diagnose finds nothing", what);
    ck_assert_msg(strstr(err.msg, " at byte "), "%s: diagnosis without a place: '%s'", what, err.msg);
  } else if (st != OD_OK) {
    ck_assert_msg(len == 0 || strstr(err.msg, "field number 0") || strstr(err.msg, "nested more than"),
                  "%s: protobuf-c accepts it, od_pb_diagnose says '%s'", what, err.msg);
  }
}

START_TEST(test_every_truncation) {
  struct buf b = model_pack();
  char what[64];
  for (size_t n = 0; n < b.len; n++) {
    snprintf(what, sizeof what, "cut to %zu of %zu bytes", n, b.len);
    check_agrees(b.data, n, what);
  }
  free(b.data);
}
END_TEST

START_TEST(test_every_byte_corrupted) {
  struct buf b = model_pack();
  static const uint8_t flips[] = {0x01, 0x02, 0x04, 0x07, 0x08, 0x40, 0x80, 0xff};
  char what[64];
  for (size_t i = 0; i < b.len; i++) {
    for (size_t k = 0; k < sizeof flips; k++) {
      b.data[i] ^= flips[k];
      snprintf(what, sizeof what, "byte %zu ^ 0x%02x", i, flips[k]);
      check_agrees(b.data, b.len, what);
      b.data[i] ^= flips[k];
    }
  }
  free(b.data);
}
END_TEST

START_TEST(test_random_bytes) {
  uint8_t data[512];
  uint64_t s = 0x9e3779b97f4a7c15u; /* a fixed seed: the same bytes every run */
  char what[64];
  for (int round = 0; round < 20000; round++) {
    size_t len = 0;
    s = s * 6364136223846793005u + 1442695040888963407u;
    len = (size_t)(s >> 33) % sizeof data;
    for (size_t i = 0; i < len; i++) {
      s = s * 6364136223846793005u + 1442695040888963407u;
      data[i] = (uint8_t)(s >> 56);
    }
    snprintf(what, sizeof what, "random round %d (%zu bytes)", round, len);
    check_agrees(data, len, what);
  }
}
END_TEST

static Suite *pb_diagnose_suite(void) {
  Suite *s = suite_create("pb_diagnose");
  struct {
    const char *name;
    const TTest *test;
  } cases[] = {
      {"intact", test_intact},
      {"empty", test_empty},
      {"truncated_initializer_raw_data", test_truncated_initializer_raw_data},
      {"truncated_attribute_tensor", test_truncated_attribute_tensor},
      {"truncated_fixed32", test_truncated_fixed32},
      {"truncated_varint", test_truncated_varint},
      {"truncated_tag", test_truncated_tag},
      {"truncated_length_prefix", test_truncated_length_prefix},
      {"cut_at_field_boundary", test_cut_at_field_boundary},
      {"length_too_large", test_length_too_large},
      {"attribute_length_too_large", test_attribute_length_too_large},
      {"wrong_wire_type", test_wrong_wire_type},
      {"invalid_wire_type", test_invalid_wire_type},
      {"groups", test_groups},
      {"field_zero", test_field_zero},
      {"unknown_fields_skipped", test_unknown_fields_skipped},
      {"unknown_field_problems", test_unknown_field_problems},
      {"packed", test_packed},
      {"too_deep", test_too_deep},
      {"every_truncation", test_every_truncation},
      {"every_byte_corrupted", test_every_byte_corrupted},
      {"random_bytes", test_random_bytes},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_test(tc, cases[i].test);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(pb_diagnose_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
