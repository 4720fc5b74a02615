/* tests/test_manifest.c: loaders/manifest.c, the pairing manifest of `onnx-distill train`.
 *
 * DESIGN.md's example parses with every field as written; a minimal manifest gets every documented
 * default (docs/manifest.md); each kind of mistake fails with OD_ERR_INVALID_ARG, leaves *out
 * untouched and names the file and the JSON path (the exact message substring is asserted); --set
 * overrides edit, append, delete and create; paths resolve against the manifest's folder.
 * Fixture files live under OD_TEST_TMP/manifest (empty .onnx files: the parser only checks that
 * they exist). Test JSON is written with single quotes, turned into double quotes by J(). */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loaders/manifest.h"

#ifndef OD_TEST_TMP
#error "OD_TEST_TMP must be defined by tests/CMakeLists.txt"
#endif

#define BASE OD_TEST_TMP "/manifest"

static void touch(const char *rel) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/%s", BASE, rel);
  FILE *f = fopen(p, "w");
  ck_assert_msg(f != NULL, "cannot create %s", p);
  fclose(f);
}

static void fixtures(void) {
  mkdir(OD_TEST_TMP, 0755);
  mkdir(BASE, 0755);
  mkdir(BASE "/data", 0755);
  mkdir(BASE "/data/voc", 0755);
  mkdir(BASE "/imgs", 0755);
  mkdir(BASE "/models", 0755);
  touch("teacher.onnx");
  touch("student.onnx");
  touch("models/t.onnx");
  touch("data/voc/trainval.txt");
  touch("data/voc/test.txt");
}

/* single quotes -> double quotes (a static buffer per call site is enough for these tests) */
static char *J(const char *s) {
  char *d = strdup(s);
  for (char *p = d; *p; p++)
    if (*p == '\'') *p = '"';
  return d;
}

#define MODELS "'teacher': {'model': 'teacher.onnx'}, 'student': {'model': 'student.onnx'}"
#define MINIMAL "{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}]}"

static enum od_status parse(const char *json_sq, const char *const *sets, int n_sets, struct od_manifest **m,
                            struct od_err *err) {
  char *json = J(json_sq);
  enum od_status st = od_manifest_parse(json, "pairs.json", BASE, sets, n_sets, m, err);
  free(json);
  return st;
}

static struct od_manifest *parse_ok(const char *json_sq, const char *const *sets, int n_sets) {
  struct od_manifest *m = NULL;
  struct od_err err = {0};
  enum od_status st = parse(json_sq, sets, n_sets, &m, &err);
  ck_assert_msg(st == OD_OK, "parse failed: %s", err.msg);
  ck_assert_ptr_nonnull(m);
  return m;
}

/* Fails with OD_ERR_INVALID_ARG, *out untouched, and want in the message. */
static void expect_err_raw(const char *json, const char *const *sets, int n_sets, const char *want) {
  struct od_manifest sentinel, *m = &sentinel;
  struct od_err err = {0};
  enum od_status st = od_manifest_parse(json, "pairs.json", BASE, sets, n_sets, &m, &err);
  ck_assert_msg(st == OD_ERR_INVALID_ARG, "status %d for %s (message: %s)", st, json, err.msg);
  ck_assert_msg(m == &sentinel, "*out changed on failure");
  ck_assert_msg(strstr(err.msg, want) != NULL, "message\n  %s\nlacks\n  %s", err.msg, want);
  ck_assert_msg(!strncmp(err.msg, "pairs.json: ", 12), "message lacks the file name: %s", err.msg);
  ck_assert_int_eq(od_status_exit_code(st), 2);
}

static void expect_err(const char *json_sq, const char *const *sets, int n_sets, const char *want) {
  char *json = J(json_sq);
  expect_err_raw(json, sets, n_sets, want);
  free(json);
}

static void expect_err1(const char *json_sq, const char *set, const char *want) {
  const char *sets[1] = {set};
  expect_err(json_sq, sets, set ? 1 : 0, want);
}

#define CLOSE(a, b) \
  ck_assert_msg(fabs((double)(a) - (double)(b)) < 1e-6, "%s = %g, want %g", #a, (double)(a), (double)(b))

/* ---- DESIGN.md's example --------------------------------------------------------------------- */

static const char design_example[] =
    "{\n"
    "  'teacher': {'model': 'teacher.onnx'},\n"
    "  'student': {'model': 'student.onnx', 'export': 'out/student_distilled.onnx'},\n"
    "  'data': {'format': 'voc', 'root': 'data/voc', 'train': 'trainval.txt', 'val': 'test.txt',\n"
    "           'input': 'image', 'size': [320, 608, 32], 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, "
    "0.225]},\n"
    "  'pairs': [\n"
    "    {'teacher': 'conv2d_6.tmp_1',  'student': 'conv2d_20.tmp_1', 'loss': 'l2', 'weight': 100},\n"
    "    {'teacher': 'conv2d_14.tmp_1', 'student': 'conv2d_28.tmp_1', 'loss': 'l2', 'weight': 100},\n"
    "    {'teacher': 'conv2d_22.tmp_1', 'student': 'conv2d_36.tmp_1', 'loss': 'l2', 'weight': 100}\n"
    "  ],\n"
    "  'task_loss': {'type': 'yolov3', 'outputs': ['conv2d_20.tmp_1', 'conv2d_28.tmp_1', 'conv2d_36.tmp_1'],\n"
    "                'anchors': [[10,13],[16,30],[33,23],[30,61],[62,45],[59,119],[116,90],[156,198],[373,326]],\n"
    "                'anchor_masks': [[6,7,8],[3,4,5],[0,1,2]], 'num_classes': 20, 'ignore_thresh': 0.7},\n"
    "  'train': {'batch_size': 8, 'steps': 70000, 'device': 'cuda:0', 'precision': 'fp32', 'seed': 0,\n"
    "            'optimizer': {'type': 'momentum', 'lr': 0.001, 'momentum': 0.9, 'weight_decay': 0.0005},\n"
    "            'schedule': {'warmup_steps': 1000, 'milestones': [55000, 62000], 'gamma': 0.1},\n"
    "            'checkpoint_every': 2000, 'eval_every': 2000, 'log': 'out/train.jsonl'}\n"
    "}\n";

START_TEST(design_example_parses) {
  struct od_manifest *m = parse_ok(design_example, NULL, 0);
  ck_assert_str_eq(m->path, "pairs.json");
  ck_assert_str_eq(m->dir, BASE);
  ck_assert_str_eq(m->teacher_model, BASE "/teacher.onnx");
  ck_assert_str_eq(m->student_model, BASE "/student.onnx");
  ck_assert_str_eq(m->export_path, BASE "/out/student_distilled.onnx");

  const struct od_data_cfg *d = &m->data;
  ck_assert_int_eq(d->format, OD_DATA_VOC);
  ck_assert_str_eq(d->root, BASE "/data/voc");
  ck_assert_str_eq(d->train, "trainval.txt");
  ck_assert_str_eq(d->val, "test.txt");
  ck_assert_str_eq(d->input, "image");
  ck_assert_int_eq(d->size_min, 320);
  ck_assert_int_eq(d->size_max, 608);
  ck_assert_int_eq(d->size_step, 32);
  CLOSE(d->mean[0], 0.485), CLOSE(d->mean[1], 0.456), CLOSE(d->mean[2], 0.406);
  CLOSE(d->std[0], 0.229), CLOSE(d->std[1], 0.224), CLOSE(d->std[2], 0.225);
  ck_assert_int_eq(d->n_classes, 20);
  ck_assert_str_eq(d->classes[0], "aeroplane");
  ck_assert_str_eq(d->classes[19], "tvmonitor");
  ck_assert_int_eq(d->workers, 2);
  ck_assert_int_eq(d->images, 256);

  ck_assert_int_eq(m->n_pairs, 3);
  static const char *const tn[] = {"conv2d_6.tmp_1", "conv2d_14.tmp_1", "conv2d_22.tmp_1"};
  static const char *const sn[] = {"conv2d_20.tmp_1", "conv2d_28.tmp_1", "conv2d_36.tmp_1"};
  for (int i = 0; i < 3; i++) {
    const struct od_pair_cfg *p = &m->pairs[i];
    ck_assert_str_eq(p->teacher[0], tn[i]);
    ck_assert_str_eq(p->student[0], sn[i]);
    ck_assert_ptr_null(p->teacher[1]);
    ck_assert_ptr_null(p->student[1]);
    ck_assert_int_eq(p->loss.kind, OD_LOSS_L2);
    CLOSE(p->weight, 100);
    ck_assert_int_eq(p->adapter, OD_ADAPTER_AUTO);
  }

  const struct od_task_loss_cfg *t = &m->task_loss;
  ck_assert(t->enabled);
  ck_assert_str_eq(t->type, "yolov3");
  ck_assert_int_eq(t->n_outputs, 3);
  for (int i = 0; i < 3; i++) ck_assert_str_eq(t->outputs[i], sn[i]);
  static const float anchors[9][2] = {{10, 13},  {16, 30},  {33, 23},   {30, 61},  {62, 45},
                                      {59, 119}, {116, 90}, {156, 198}, {373, 326}};
  ck_assert_int_eq(t->n_anchors, 9);
  for (int i = 0; i < 9; i++) CLOSE(t->anchors[i][0], anchors[i][0]), CLOSE(t->anchors[i][1], anchors[i][1]);
  ck_assert_int_eq(t->n_masks, 3);
  static const int masks[3][3] = {{6, 7, 8}, {3, 4, 5}, {0, 1, 2}};
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(t->mask_len[i], 3);
    for (int k = 0; k < 3; k++) ck_assert_int_eq(t->anchor_masks[i][k], masks[i][k]);
  }
  ck_assert_int_eq(t->num_classes, 20);
  CLOSE(t->ignore_thresh, 0.7);
  ck_assert(!t->label_smooth);
  ck_assert_int_eq(t->downsample[0], 32);
  ck_assert_int_eq(t->downsample[1], 16);
  ck_assert_int_eq(t->downsample[2], 8);
  CLOSE(t->weight, 1);

  const struct od_train_cfg *tr = &m->train;
  ck_assert_int_eq(tr->batch_size, 8);
  ck_assert_int_eq(tr->steps, 70000);
  ck_assert_str_eq(tr->device, "cuda:0");
  ck_assert_str_eq(tr->precision, "fp32");
  ck_assert_uint_eq(tr->seed, 0);
  ck_assert_int_eq(tr->optim.kind, OD_OPTIM_MOMENTUM);
  CLOSE(tr->optim.lr, 0.001);
  CLOSE(tr->optim.momentum, 0.9);
  CLOSE(tr->optim.weight_decay, 0.0005);
  ck_assert(!tr->optim.nesterov);
  CLOSE(tr->optim.clip_norm, 0);
  ck_assert_int_eq(tr->schedule.kind, OD_SCHED_PIECEWISE); /* milestones without a type */
  ck_assert_int_eq(tr->schedule.warmup_steps, 1000);
  CLOSE(tr->schedule.warmup_factor, 0);
  ck_assert_int_eq(tr->schedule.n_milestones, 2);
  ck_assert_int_eq(tr->schedule.milestones[0], 55000);
  ck_assert_int_eq(tr->schedule.milestones[1], 62000);
  CLOSE(tr->schedule.gamma, 0.1);
  ck_assert_int_eq(tr->checkpoint_every, 2000);
  ck_assert_int_eq(tr->eval_every, 2000);
  ck_assert_int_eq(tr->log_every, 10);
  ck_assert_str_eq(tr->log, BASE "/out/train.jsonl");
  ck_assert_str_eq(tr->out_dir, BASE "/out");
  ck_assert_int_eq(tr->n_freeze, 0);
  ck_assert(tr->untie_shared);
  ck_assert_int_eq(tr->threads, 0);
  od_manifest_destroy(m);
}
END_TEST

/* ---- defaults ---------------------------------------------------------------------------------- */

START_TEST(minimal_gets_defaults) {
  struct od_manifest *m = parse_ok(MINIMAL, NULL, 0);
  ck_assert_str_eq(m->export_path, BASE "/out/student_distilled.onnx");
  const struct od_data_cfg *d = &m->data;
  ck_assert_int_eq(d->format, OD_DATA_RANDOM);
  ck_assert_ptr_null(d->root);
  ck_assert_ptr_null(d->train);
  ck_assert_ptr_null(d->val);
  ck_assert_ptr_null(d->input);
  ck_assert_int_eq(d->size_min, 0);
  ck_assert_int_eq(d->size_max, 0);
  CLOSE(d->mean[0], 0.485), CLOSE(d->mean[1], 0.456), CLOSE(d->mean[2], 0.406);
  CLOSE(d->std[0], 0.229), CLOSE(d->std[1], 0.224), CLOSE(d->std[2], 0.225);
  ck_assert_int_eq(d->n_classes, 20);
  ck_assert_str_eq(d->classes[14], "person");
  ck_assert_int_eq(d->workers, 2);
  ck_assert_int_eq(d->images, 256);

  ck_assert_int_eq(m->n_pairs, 1);
  const struct od_pair_cfg *p = &m->pairs[0];
  ck_assert_str_eq(p->teacher[0], "a");
  ck_assert_str_eq(p->student[0], "b");
  ck_assert_int_eq(p->loss.kind, OD_LOSS_L2);
  CLOSE(p->weight, 1);
  ck_assert_int_eq(p->adapter, OD_ADAPTER_AUTO);
  CLOSE(p->loss.temperature, 1);
  CLOSE(p->loss.teacher_temperature, 1);
  ck_assert_int_eq(p->loss.axis, -1);
  CLOSE(p->loss.beta, 1);
  ck_assert_int_eq(p->loss.num_anchors, 3);
  ck_assert(!p->loss.fm_nms);
  ck_assert_int_eq(p->loss.fm_nms_kernel, 3);

  ck_assert(!m->task_loss.enabled);
  ck_assert_ptr_null(m->task_loss.outputs);

  const struct od_train_cfg *t = &m->train;
  ck_assert_int_eq(t->batch_size, 8);
  ck_assert_int_eq(t->steps, 1000);
  ck_assert_str_eq(t->device, "cpu");
  ck_assert_str_eq(t->precision, "fp32");
  ck_assert_uint_eq(t->seed, 0);
  ck_assert_int_eq(t->optim.kind, OD_OPTIM_MOMENTUM);
  CLOSE(t->optim.lr, 0.001);
  CLOSE(t->optim.momentum, 0.9);
  CLOSE(t->optim.beta1, 0.9);
  CLOSE(t->optim.beta2, 0.999);
  CLOSE(t->optim.eps, 1e-8);
  CLOSE(t->optim.weight_decay, 0);
  CLOSE(t->optim.clip_norm, 0);
  ck_assert_int_eq(t->schedule.kind, OD_SCHED_CONSTANT);
  ck_assert_int_eq(t->schedule.warmup_steps, 0);
  CLOSE(t->schedule.gamma, 0.1);
  ck_assert_int_eq(t->checkpoint_every, 500);
  ck_assert_int_eq(t->eval_every, 0);
  ck_assert_int_eq(t->log_every, 10);
  ck_assert_str_eq(t->out_dir, BASE "/out");
  ck_assert_str_eq(t->log, BASE "/out/train.jsonl");
  ck_assert_int_eq(t->n_freeze, 0);
  ck_assert(t->untie_shared);
  ck_assert_int_eq(t->threads, 0);
  od_manifest_destroy(m);
}
END_TEST

START_TEST(out_dir_moves_log_and_export) {
  struct od_manifest *m =
      parse_ok("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'out_dir': 'runs/x'}}", NULL, 0);
  ck_assert_str_eq(m->train.out_dir, BASE "/runs/x");
  ck_assert_str_eq(m->train.log, BASE "/runs/x/train.jsonl");
  ck_assert_str_eq(m->export_path, BASE "/runs/x/student_distilled.onnx");
  od_manifest_destroy(m);
}
END_TEST

START_TEST(task_loss_only_and_defaults) {
  struct od_manifest *m = parse_ok("{" MODELS
                                   ", 'data': {'format': 'synthetic', 'images': 64, 'classes': ['a', 'b', 'c']},"
                                   " 'task_loss': {'outputs': ['o32', 'o16', 'o8']}}",
                                   NULL, 0);
  ck_assert_int_eq(m->n_pairs, 0);
  const struct od_task_loss_cfg *t = &m->task_loss;
  ck_assert(t->enabled);
  ck_assert_str_eq(t->type, "yolov3");
  ck_assert_int_eq(t->n_anchors, 9);
  CLOSE(t->anchors[8][0], 373), CLOSE(t->anchors[8][1], 326);
  ck_assert_int_eq(t->n_masks, 3);
  ck_assert_int_eq(t->anchor_masks[0][0], 6); /* largest anchors on the first (stride 32) output */
  ck_assert_int_eq(t->anchor_masks[2][2], 2);
  ck_assert_int_eq(t->num_classes, 3); /* from data.classes */
  CLOSE(t->ignore_thresh, 0.7);
  ck_assert_int_eq(t->downsample[0], 32);
  ck_assert_int_eq(t->downsample[2], 8);
  ck_assert_int_eq(m->data.format, OD_DATA_SYNTHETIC);
  ck_assert_ptr_null(m->data.root);
  ck_assert_int_eq(m->data.images, 64);
  ck_assert_int_eq(m->data.n_classes, 3);
  ck_assert_str_eq(m->data.classes[2], "c");
  od_manifest_destroy(m);
}
END_TEST

START_TEST(every_pair_and_train_field) {
  struct od_manifest *m = parse_ok(
      "{" MODELS
      ", 'data': {'format': 'images', 'root': 'imgs', 'size': 416, 'workers': 4, 'input': 'x'},"
      " 'pairs': ["
      "  {'teacher': 't', 'student': 's', 'loss': 'kd', 'temperature': 4, 'axis': 1, 'adapter': 'none', 'weight': 0.5},"
      "  {'teacher': ['t1', 't2'], 'student': ['s1', 's2'], 'loss': 'fsp'},"
      "  {'teacher': 't1', 'teacher2': 't2', 'student': 's1', 'student2': 's2', 'loss': 'fsp', 'adapter': 'conv1x1'},"
      "  {'teacher': 't', 'student': 's', 'loss': 'soft_label', 'temperature': 2, 'teacher_temperature': 3},"
      "  {'teacher': 't', 'student': 's', 'loss': 'smooth_l1', 'beta': 0.5},"
      "  {'teacher': 'node:conv1:out:0', 'student': 's', 'loss': 'yolo_split', 'num_anchors': 3, 'fm_nms': true,"
      "   'fm_nms_kernel': 5},"
      "  {'teacher': 't', 'student': 's', 'loss': 'yolo_split', 'num_classes': 80}],"
      " 'train': {'batch_size': 2, 'steps': 50, 'device': 'cuda', 'precision': 'bf16', 'seed': 7,"
      "   'optimizer': {'type': 'adamw', 'lr': 0.0002, 'beta1': 0.8, 'beta2': 0.99, 'eps': 1e-6, 'weight_decay': 0.05,"
      "                 'clip_grad_norm': 10},"
      "   'schedule': {'type': 'cosine', 'warmup_steps': 5, 'warmup_factor': 0.1, 'min_lr': 1e-5},"
      "   'checkpoint_every': 0, 'eval_every': 0, 'log_every': 1, 'log': '/tmp/x.jsonl', 'out_dir': '/tmp/od_out',"
      "   'freeze': ['backbone.*', 'conv1.weight'], 'untie_shared': false, 'threads': 3},"
      " '_comment': 'ignored'}",
      NULL, 0);
  ck_assert_int_eq(m->data.format, OD_DATA_IMAGES);
  ck_assert_str_eq(m->data.root, BASE "/imgs");
  ck_assert_int_eq(m->data.size_min, 416);
  ck_assert_int_eq(m->data.size_max, 416);
  ck_assert_int_eq(m->data.workers, 4);
  ck_assert_str_eq(m->data.input, "x");
  ck_assert_int_eq(m->n_pairs, 7);
  const struct od_pair_cfg *p = m->pairs;
  ck_assert_int_eq(p[0].loss.kind, OD_LOSS_KD);
  CLOSE(p[0].loss.temperature, 4);
  ck_assert_int_eq(p[0].loss.axis, 1);
  ck_assert_int_eq(p[0].adapter, OD_ADAPTER_NONE);
  CLOSE(p[0].weight, 0.5);
  for (int i = 1; i <= 2; i++) {
    ck_assert_int_eq(p[i].loss.kind, OD_LOSS_FSP);
    ck_assert_str_eq(p[i].teacher[0], "t1");
    ck_assert_str_eq(p[i].teacher[1], "t2");
    ck_assert_str_eq(p[i].student[0], "s1");
    ck_assert_str_eq(p[i].student[1], "s2");
  }
  ck_assert_int_eq(p[2].adapter, OD_ADAPTER_CONV1X1);
  CLOSE(p[3].loss.temperature, 2);
  CLOSE(p[3].loss.teacher_temperature, 3);
  CLOSE(p[4].loss.beta, 0.5);
  ck_assert_str_eq(p[5].teacher[0], "node:conv1:out:0");
  ck_assert(p[5].loss.fm_nms);
  ck_assert_int_eq(p[5].loss.fm_nms_kernel, 5);
  ck_assert_int_eq(p[5].loss.num_classes, 20); /* no task_loss: data.classes (VOC's 20) */
  ck_assert_int_eq(p[6].loss.num_classes, 80);
  const struct od_train_cfg *t = &m->train;
  ck_assert_int_eq(t->batch_size, 2);
  ck_assert_int_eq(t->steps, 50);
  ck_assert_str_eq(t->device, "cuda");
  ck_assert_str_eq(t->precision, "bf16");
  ck_assert_uint_eq(t->seed, 7);
  ck_assert_int_eq(t->optim.kind, OD_OPTIM_ADAMW);
  CLOSE(t->optim.lr, 0.0002);
  CLOSE(t->optim.beta1, 0.8);
  CLOSE(t->optim.beta2, 0.99);
  CLOSE(t->optim.eps, 1e-6);
  CLOSE(t->optim.weight_decay, 0.05);
  CLOSE(t->optim.clip_norm, 10);
  ck_assert_int_eq(t->schedule.kind, OD_SCHED_COSINE);
  ck_assert_int_eq(t->schedule.warmup_steps, 5);
  CLOSE(t->schedule.warmup_factor, 0.1);
  ck_assert_int_eq(t->schedule.total_steps, 50); /* defaults to train.steps */
  CLOSE(t->schedule.min_lr, 1e-5);
  ck_assert_int_eq(t->checkpoint_every, 0);
  ck_assert_int_eq(t->log_every, 1);
  ck_assert_str_eq(t->log, "/tmp/x.jsonl");
  ck_assert_str_eq(t->out_dir, "/tmp/od_out");
  ck_assert_str_eq(m->export_path, "/tmp/od_out/student_distilled.onnx");
  ck_assert_int_eq(t->n_freeze, 2);
  ck_assert_str_eq(t->freeze[0], "backbone.*");
  ck_assert_str_eq(t->freeze[1], "conv1.weight");
  ck_assert(!t->untie_shared);
  ck_assert_int_eq(t->threads, 3);
  od_manifest_destroy(m);
}
END_TEST

START_TEST(more_forms) {
  /* nesterov momentum; a schedule with total_steps and no type is cosine; freeze as one string;
   * a yolo_split pair takes task_loss.num_classes */
  struct od_manifest *m =
      parse_ok("{" MODELS
               ", 'data': {'format': 'voc', 'root': 'data/voc', 'classes': ['x', 'y']},"
               " 'pairs': [{'teacher': 't', 'student': 's', 'loss': 'yolo_split'}],"
               " 'task_loss': {'outputs': ['a', 'b'], 'anchors': [[1,2],[3,4],[5,6],[7,8]], 'downsample': [16, 8],"
               "               'label_smooth': true, 'weight': 2, 'num_classes': 2},"
               " 'train': {'optimizer': {'type': 'momentum', 'nesterov': true, 'momentum': 0.5},"
               "           'schedule': {'total_steps': 300}, 'freeze': 'conv*', 'steps': 400}}",
               NULL, 0);
  ck_assert(m->train.optim.nesterov);
  CLOSE(m->train.optim.momentum, 0.5);
  ck_assert_int_eq(m->train.schedule.kind, OD_SCHED_COSINE);
  ck_assert_int_eq(m->train.schedule.total_steps, 300);
  ck_assert_int_eq(m->train.n_freeze, 1);
  ck_assert_str_eq(m->train.freeze[0], "conv*");
  ck_assert_int_eq(m->pairs[0].loss.num_classes, 2);
  const struct od_task_loss_cfg *t = &m->task_loss;
  ck_assert_int_eq(t->n_anchors, 4);
  ck_assert_int_eq(t->n_masks, 2); /* 4 anchors split evenly: [2,3] then [0,1] */
  ck_assert_int_eq(t->anchor_masks[0][0], 2);
  ck_assert_int_eq(t->anchor_masks[0][1], 3);
  ck_assert_int_eq(t->anchor_masks[1][0], 0);
  ck_assert_int_eq(t->downsample[0], 16);
  ck_assert_int_eq(t->downsample[1], 8);
  ck_assert(t->label_smooth);
  CLOSE(t->weight, 2);
  ck_assert_str_eq(m->data.train, "trainval.txt"); /* voc defaults, relative to root */
  ck_assert_str_eq(m->data.val, "test.txt");
  od_manifest_destroy(m);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------------- */

START_TEST(error_messages) {
  expect_err("{" MODELS
             ", 'pairs': [{'teacher': 'a', 'student': 'b'}, {'teacher': 'a', 'student': 'b'},"
             " {'teacher': 'a', 'student': 'b', 'loss': 'l3'}]}",
             NULL, 0,
             "pairs.json: pairs[2].loss: unknown loss 'l3'; expected one of l2, l1, smooth_l1, kd, soft_label, cosine, "
             "cwd, pkd, at, fsp, yolo_split");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'loss': 'cosin'}]}", NULL, 0,
             "pairs[0].loss: unknown loss 'cosin'; expected one of l2,");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'loss': 'cosin'}]}", NULL, 0,
             "yolo_split; did you mean 'cosine'?");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'batch_size': -3}}", NULL, 0,
             "pairs.json: train.batch_size: must be a positive integer, got -3");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'steps': '100'}}", NULL, 0,
             "pairs.json: train.steps: expected an integer, got string \"100\"");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'steps': 1.5}}", NULL, 0,
             "train.steps: expected an integer, got 1.5");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'optimizer': {'type': 'adamm'}}}",
             NULL, 0,
             "pairs.json: train.optimizer.type: unknown optimizer 'adamm'; expected one of sgd, momentum, adam, adamw; "
             "did you mean 'adam'?");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'optimizer': {'type': 1}}}", NULL, 0,
             "train.optimizer.type: expected a string, got 1");
  static const char *const bad_sizes[] = {"[608, 320, 32]", "[320, 608, 0]",   "[320, 608]", "0",
                                          "'big'",          "[320, 608.5, 32]"};
  for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
    char json[512];
    snprintf(json, sizeof json, "{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'size': %s}}",
             bad_sizes[i]);
    expect_err(json, NULL, 0,
               "pairs.json: data.size: expected N or [min, max, step] with min <= max and step > 0, multiples of 32 "
               "recommended");
  }
  /* missing required fields */
  expect_err("{'student': {'model': 'student.onnx'}, 'pairs': [{'teacher': 'a', 'student': 'b'}]}", NULL, 0,
             "pairs.json: teacher.model: missing; give the teacher's ONNX file");
  expect_err("{'teacher': {}, 'student': {'model': 'student.onnx'}, 'pairs': []}", NULL, 0, "teacher.model: missing");
  expect_err("{'teacher': {'model': 'teacher.onnx'}, 'pairs': [{'teacher': 'a', 'student': 'b'}]}", NULL, 0,
             "pairs.json: student.model: missing; give the student's ONNX file");
  expect_err("{" MODELS "}", NULL, 0, "pairs.json: pairs: missing; give at least one");
  expect_err("{" MODELS ", 'pairs': []}", NULL, 0, "pairs.json: pairs: empty; give at least one pair");
  expect_err("{" MODELS ", 'pairs': [{'student': 'b'}]}", NULL, 0,
             "pairs[0].teacher: missing; name the teacher tensor");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a'}]}", NULL, 0,
             "pairs[0].student: missing; name the student tensor");
  expect_err("{" MODELS ", 'pairs': [{'teacher': '', 'student': 'b'}]}", NULL, 0,
             "pairs[0].teacher: must not be empty");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 3, 'student': 'b'}]}", NULL, 0,
             "pairs[0].teacher: expected a tensor name (string), got 3");
  expect_err(
      "{" MODELS ", 'pairs': ['a']}", NULL, 0,
      "pairs.json: pairs[0]: expected an object {\"teacher\": ..., \"student\": ..., \"loss\": ...}, got string \"a\"");
  expect_err("{" MODELS ", 'pairs': {'teacher': 'a'}}", NULL, 0, "pairs: expected an array of");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': 5}", NULL, 0,
             "pairs.json: train: expected an object, got 5");
  /* unknown keys */
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'stepz': 100}}", NULL, 0,
             "pairs.json: unknown key 'stepz' in train; did you mean 'steps'?");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'lr': 0.1}}", NULL, 0,
             "unknown key 'lr' in train; it belongs in train.optimizer");
  expect_err("{" MODELS
             ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'optimizer': {'learning_rate': 0.1}}}",
             NULL, 0, "unknown key 'learning_rate' in train.optimizer; did you mean 'lr'?");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'teachr': {}}", NULL, 0,
             "pairs.json: unknown key 'teachr' at the top level; did you mean 'teacher'?");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'wieght': 2}]}", NULL, 0,
             "unknown key 'wieght' in pairs[0]; did you mean 'weight'?");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'zzz': 1}}", NULL, 0,
             "unknown key 'zzz' in data; expected one of format, root, train, val, input, size, mean, std, classes, "
             "workers, images");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'steps': 1, 'steps': 2}}", NULL, 0,
             "train.steps: duplicate key");
  /* files */
  expect_err("{'teacher': {'model': 'x.onnx'}, 'student': {'model': 'student.onnx'}, 'pairs': []}", NULL, 0,
             "pairs.json: teacher.model: no such file 'x.onnx' (resolved to " BASE "/x.onnx)");
  expect_err("{'teacher': {'model': 'teacher.onnx'}, 'student': {'model': 'models'}, 'pairs': []}", NULL, 0,
             "student.model: 'models' is a folder, not a file (resolved to " BASE "/models)");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'format': 'voc'}}", NULL, 0,
             "data.root: missing; data format 'voc' needs the dataset folder");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'format': 'images', 'root': 'nope'}}",
             NULL, 0, "data.root: no such folder 'nope' (resolved to " BASE "/nope)");
  expect_err("{" MODELS
             ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'format': 'voc', 'root': 'data/voc', "
             "'train': 'missing.txt'}}",
             NULL, 0, "data.train: no such file 'missing.txt' (resolved to " BASE "/data/voc/missing.txt)");
  expect_err("{" MODELS
             ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'format': 'voc', 'root': 'data/voc', "
             "'val': 'v.txt'}, 'train': {'eval_every': 10}}",
             NULL, 0, "data.val: no such file 'v.txt'");
  expect_err(
      "{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'format': 'vox'}}", NULL, 0,
      "data.format: unknown data format 'vox'; expected one of random, images, voc, synthetic; did you mean 'voc'?");
  expect_err("{" MODELS ", 'student': {'model': 'student.onnx', 'export': 'student.onnx'}, 'pairs': []}", NULL, 0,
             "duplicate key");
  expect_err(
      "{'teacher': {'model': 'teacher.onnx'}, 'student': {'model': 'student.onnx', 'export': 'student.onnx'}, "
      "'pairs': [{'teacher': 'a', 'student': 'b'}]}",
      NULL, 0, "student.export: '" BASE "/student.onnx' is the student model itself");
  /* task_loss */
  static const char task_head[] =
      "{" MODELS ", 'data': {'format': 'synthetic'}, 'task_loss': {'outputs': ['a', 'b', 'c'], ";
  char json[1024];
  snprintf(json, sizeof json, "%s'anchor_masks': [[6,7,9],[3,4,5],[0,1,2]]}}", task_head);
  expect_err(
      json, NULL, 0,
      "pairs.json: task_loss.anchor_masks[0][2]: anchor index 9 out of range; task_loss.anchors has 9 entries (0..8)");
  snprintf(json, sizeof json, "%s'anchor_masks': [[6,7,-1],[3,4,5],[0,1,2]]}}", task_head);
  expect_err(json, NULL, 0, "task_loss.anchor_masks[0][2]: anchor index -1 out of range");
  snprintf(json, sizeof json, "%s'anchor_masks': [[6,7,8],[3,4,5]]}}", task_head);
  expect_err(json, NULL, 0,
             "task_loss.anchor_masks: 2 masks for 3 outputs (task_loss.outputs); give one mask per output");
  snprintf(json, sizeof json, "%s'anchor_masks': [[6,7,8],[],[0]]}}", task_head);
  expect_err(json, NULL, 0, "task_loss.anchor_masks[1]: expected 1 to 16 anchor indices, got 0");
  snprintf(json, sizeof json, "%s'downsample': [32, 16]}}", task_head);
  expect_err(json, NULL, 0, "task_loss.downsample: 2 strides for 3 outputs");
  snprintf(json, sizeof json, "%s'anchors': [[10, 13], [16]]}}", task_head);
  expect_err(json, NULL, 0, "task_loss.anchors[1]: expected [w, h] in pixels, got an array");
  snprintf(json, sizeof json, "%s'anchors': [[10, 13], [16, 0], [1, 1]]}}", task_head);
  expect_err(json, NULL, 0, "task_loss.anchors[1][1]: must be > 0, got 0");
  snprintf(json, sizeof json, "%s'anchors': [[10, 13], [16, 1]]}}", task_head);
  expect_err(json, NULL, 0, "task_loss.anchor_masks: missing, and 2 anchors do not split evenly over 3 outputs");
  snprintf(json, sizeof json, "%s'ignore_thresh': 1.5}}", task_head);
  expect_err(json, NULL, 0, "task_loss.ignore_thresh: must be in [0, 1], got 1.5");
  snprintf(json, sizeof json, "%s'type': 'yolov5'}}", task_head);
  expect_err(json, NULL, 0, "task_loss.type: unknown task loss 'yolov5'; expected one of yolov3");
  expect_err("{" MODELS ", 'data': {'format': 'synthetic'}, 'task_loss': {}}", NULL, 0,
             "task_loss.outputs: missing; list the student's detection head outputs");
  expect_err("{" MODELS ", 'task_loss': {'outputs': ['a']}}", NULL, 0,
             "pairs.json: task_loss: needs labelled data: data.format is 'random'");
  expect_err("{" MODELS
             ", 'data': {'format': 'synthetic', 'classes': ['a', 'b']}, 'task_loss': {'outputs': ['a'], "
             "'num_classes': 3}}",
             NULL, 0, "task_loss.num_classes: 3, but data.classes names 2 classes");
  /* pairs: arity and parameters */
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'loss': 'fsp'}]}", NULL, 0,
             "pairs[0].teacher2: missing; loss 'fsp' takes two tensors per side (teacher and teacher2, or \"teacher\": "
             "[a, b])");
  expect_err("{" MODELS ", 'pairs': [{'teacher': ['a', 'c'], 'student': 'b', 'loss': 'l2'}]}", NULL, 0,
             "pairs[0].teacher: loss 'l2' takes 1 tensor per side, got an array of 2");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'teacher2': 'c', 'student': 'b'}]}", NULL, 0,
             "pairs[0].teacher2: loss 'l2' takes one tensor per side (only fsp takes two)");
  expect_err("{" MODELS ", 'pairs': [{'teacher': ['a', 'c'], 'teacher2': 'c', 'student': ['b', 'd'], 'loss': 'fsp'}]}",
             NULL, 0, "pairs[0].teacher2: not allowed when pairs[0].teacher is an array");
  expect_err("{" MODELS ", 'pairs': [{'teacher': ['a', 5], 'student': ['b', 'd'], 'loss': 'fsp'}]}", NULL, 0,
             "pairs[0].teacher[1]: expected a string, got 5");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'temperature': 4}]}", NULL, 0,
             "pairs[0].temperature: not used by loss 'l2' (only by kd, soft_label, cwd)");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'loss': 'kd', 'temperature': 0}]}", NULL, 0,
             "pairs[0].temperature: must be > 0, got 0");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'weight': -1}]}", NULL, 0,
             "pairs[0].weight: must be >= 0, got -1");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'adapter': 'linear'}]}", NULL, 0,
             "pairs[0].adapter: unknown adapter 'linear'; expected one of auto, none, conv1x1");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'loss': 'yolo_split', 'fm_nms': 'yes'}]}", NULL,
             0, "pairs[0].fm_nms: expected true or false, got string \"yes\"");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b', 'loss': 'yolo_split', 'fm_nms_kernel': 4}]}",
             NULL, 0, "pairs[0].fm_nms_kernel: must be an odd positive integer, got 4");
  /* train */
  expect_err("{" MODELS
             ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'optimizer': {'type': 'adam', "
             "'momentum': 0.9}}}",
             NULL, 0, "train.optimizer.momentum: not used by optimizer 'adam' (only by momentum)");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'optimizer': {'lr': 0}}}", NULL, 0,
             "train.optimizer.lr: must be > 0, got 0");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'optimizer': {'momentum': 1}}}", NULL,
             0, "train.optimizer.momentum: must be in [0, 1), got 1");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'precision': 'fp16'}}", NULL, 0,
             "train.precision: unknown precision 'fp16'; expected one of fp32, tf32, bf16");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'device': 'gpu'}}", NULL, 0,
             "train.device: expected \"cpu\", \"cuda\" or \"cuda:N\", got 'gpu'");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'schedule': {'milestones': [5, 3]}}}",
             NULL, 0, "train.schedule.milestones[1]: milestones must increase, got 3 after 5");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'schedule': {'type': 'piecewise'}}}",
             NULL, 0, "train.schedule.milestones: missing; piecewise needs the steps");
  expect_err("{" MODELS
             ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'schedule': {'type': 'constant', "
             "'gamma': 0.5}}}",
             NULL, 0, "train.schedule.gamma: not used by schedule 'constant' (only by piecewise)");
  expect_err("{" MODELS
             ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'schedule': {'milestones': [5], "
             "'total_steps': 10}}}",
             NULL, 0, "train.schedule: milestones/gamma (piecewise) and total_steps/min_lr (cosine) both given");
  expect_err("{" MODELS
             ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'schedule': {'type': 'cosine', "
             "'warmup_steps': 2000}}}",
             NULL, 0, "train.schedule.total_steps: 1000 must be greater than warmup_steps (2000)");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'freeze': [1]}}", NULL, 0,
             "train.freeze[0]: expected a string, got 1");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'untie_shared': 1}}", NULL, 0,
             "train.untie_shared: expected true or false, got 1");
  /* data */
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'mean': [0.5, 0.5]}}", NULL, 0,
             "data.mean: expected 3 numbers (R, G, B), got 2");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'std': [0.5, 0, 0.5]}}", NULL, 0,
             "data.std[1]: must be > 0, got 0");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'classes': ['a', 'b', 'a']}}", NULL, 0,
             "data.classes: class 'a' appears twice (entries 0 and 2)");
  expect_err("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'data': {'workers': 0}}", NULL, 0,
             "data.workers: must be a positive integer, got 0");
  /* the top level */
  expect_err("[1, 2]", NULL, 0, "pairs.json: expected a JSON object at the top level");
}
END_TEST

START_TEST(syntax_errors) {
  expect_err_raw(
      "{\n  \"teacher\": {\"model\": \"t.onnx\"},\n}\n", NULL, 0,
      "pairs.json: line 3, column 1: invalid JSON near '}' (a trailing comma: JSON allows none before } or ])");
  expect_err_raw("{\n  \"a\": [1, 2,]\n}", NULL, 0, "line 2, column 14: invalid JSON near ']' (a trailing comma");
  expect_err_raw("{\"a\": 1\n \"b\": 2}", NULL, 0,
                 "line 2, column 2: invalid JSON near '\"b\": 2}' (a missing comma before this?)");
  expect_err_raw("{\n  // a comment\n  \"a\": 1}", NULL, 0,
                 "line 2, column 3: invalid JSON near '// a comment' (JSON has no comments");
  expect_err_raw("{\"a\": {\"b\": 1}\n", NULL, 0,
                 "invalid JSON: the file ends inside an object or array (a missing } or ])");
  expect_err_raw("{\"a\": True}", NULL, 0,
                 "line 1, column 7: invalid JSON near 'True}' (JSON spells true, false and null in lower case)");
  expect_err_raw("{'a': 1}", NULL, 0,
                 "line 1, column 2: invalid JSON near ''a': 1}' (JSON strings take double quotes)");
  expect_err_raw("{a: 1}", NULL, 0, "(keys take double quotes)");
  expect_err_raw("{\"a\": l2}", NULL, 0, "near 'l2}' (strings take double quotes)");
  expect_err_raw("  \n ", NULL, 0, "pairs.json: the file is empty; expected a JSON object");
  expect_err_raw("{\"a\": 1} x", NULL, 0,
                 "line 1, column 10: invalid JSON near 'x' (text after the end of the top-level object)");
  expect_err_raw("{\"a\": \"x}", NULL, 0,
                 "line 1, column 7: invalid JSON near '\"x}' (a string without its closing quote on this line)");
  expect_err_raw("{\"a\" 1}", NULL, 0, "line 1, column 6: invalid JSON near '1}' (a missing ':' or ',' before this?)");
  /* columns count characters, not bytes */
  expect_err_raw("{\"é\": 1,}", NULL, 0, "line 1, column 9:");
}
END_TEST

/* ---- overrides --------------------------------------------------------------------------------- */

START_TEST(overrides_apply) {
  const char *sets[] = {"train.steps=100",
                        "pairs[0].weight=10",
                        "train.optimizer.lr=0.01",
                        "data.size=[320,608,32]",
                        "train.device=cuda:1",
                        "pairs[1]={\"teacher\": \"t2\", \"student\": \"s2\", \"loss\": \"kd\"}",
                        "pairs[1].temperature=3",
                        "train.schedule.milestones=[50, 80]",
                        "student.export=exported/s.onnx",
                        "train.freeze=[\"a.*\"]",
                        "data.input=\"1\"",
                        "_note.anything.goes=1",
                        "train.steps=200"};
  struct od_manifest *m = parse_ok(MINIMAL, sets, sizeof sets / sizeof sets[0]);
  ck_assert_int_eq(m->train.steps, 200); /* the last override wins */
  CLOSE(m->pairs[0].weight, 10);
  CLOSE(m->train.optim.lr, 0.01);
  ck_assert_int_eq(m->data.size_min, 320);
  ck_assert_int_eq(m->data.size_max, 608);
  ck_assert_int_eq(m->data.size_step, 32);
  ck_assert_str_eq(m->train.device, "cuda:1"); /* not JSON: a bare string */
  ck_assert_int_eq(m->n_pairs, 2);             /* appended at index == size */
  ck_assert_str_eq(m->pairs[1].teacher[0], "t2");
  ck_assert_int_eq(m->pairs[1].loss.kind, OD_LOSS_KD);
  CLOSE(m->pairs[1].loss.temperature, 3);
  ck_assert_int_eq(m->train.schedule.kind, OD_SCHED_PIECEWISE); /* created train.schedule */
  ck_assert_int_eq(m->train.schedule.n_milestones, 2);
  ck_assert_str_eq(m->export_path, BASE "/exported/s.onnx");
  ck_assert_str_eq(m->train.freeze[0], "a.*");
  ck_assert_str_eq(m->data.input, "1"); /* a JSON string stays a string */
  od_manifest_destroy(m);

  /* null deletes: a key (back to its default) or an array entry */
  const char *dels[] = {"pairs[0]=null", "train.steps=null", "data.size[2]=64", "data.size[0]=64"};
  m = parse_ok("{" MODELS
               ", 'pairs': [{'teacher': 'a', 'student': 'b'}, {'teacher': 'c', 'student': 'd'}],"
               " 'train': {'steps': 5}, 'data': {'size': [320, 640, 32]}}",
               dels, 4);
  ck_assert_int_eq(m->n_pairs, 1);
  ck_assert_str_eq(m->pairs[0].teacher[0], "c");
  ck_assert_int_eq(m->train.steps, 1000);
  ck_assert_int_eq(m->data.size_min, 64);
  ck_assert_int_eq(m->data.size_step, 64);
  od_manifest_destroy(m);

  /* a whole section, and removing task_loss */
  const char *sec[] = {"task_loss=null", "train={\"steps\": 7, \"batch_size\": 1}"};
  m = parse_ok("{" MODELS
               ", 'data': {'format': 'synthetic'}, 'pairs': [{'teacher': 'a', 'student': 'b'}],"
               " 'task_loss': {'outputs': ['x']}}",
               sec, 2);
  ck_assert(!m->task_loss.enabled);
  ck_assert_int_eq(m->train.steps, 7);
  ck_assert_int_eq(m->train.batch_size, 1);
  od_manifest_destroy(m);
  /* nested indices create arrays: anchor_masks[0][1] on a missing key needs [0][0] first */
  const char *nest[] = {"task_loss.anchor_masks[0][0]=5", "task_loss.anchor_masks[0][1]=2"};
  m = parse_ok("{" MODELS ", 'data': {'format': 'synthetic'}, 'task_loss': {'outputs': ['x']}}", nest, 2);
  ck_assert_int_eq(m->task_loss.n_masks, 1);
  ck_assert_int_eq(m->task_loss.mask_len[0], 2);
  ck_assert_int_eq(m->task_loss.anchor_masks[0][0], 5);
  ck_assert_int_eq(m->task_loss.anchor_masks[0][1], 2);
  od_manifest_destroy(m);
}
END_TEST

START_TEST(override_errors) {
  expect_err1(MINIMAL, "train.stepz=100",
              "pairs.json: --set train.stepz=100: unknown key 'stepz' in train; did you mean 'steps'?");
  expect_err1(MINIMAL, "trian.steps=100",
              "--set trian.steps=100: unknown key 'trian' at the top level; did you mean 'train'?");
  expect_err1(MINIMAL, "pairs[0].wieght=3",
              "--set pairs[0].wieght=3: unknown key 'wieght' in pairs[0]; did you mean 'weight'?");
  expect_err1(MINIMAL, "train.lr=0.1", "--set train.lr=0.1: unknown key 'lr' in train; it belongs in train.optimizer");
  expect_err1(MINIMAL, "train.batch_size=-3",
              "pairs.json: train.batch_size: must be a positive integer, got -3 (from --set train.batch_size=-3)");
  expect_err1(MINIMAL, "pairs[0].loss=l3", "pairs[0].loss: unknown loss 'l3'; expected one of l2, l1,");
  expect_err1(MINIMAL, "pairs[0].loss=l3", "(from --set pairs[0].loss=l3)");
  expect_err1(MINIMAL, "data.size=[608,320,32]",
              "data.size: expected N or [min, max, step] with min <= max and step > 0");
  expect_err1(MINIMAL, "pairs[3].weight=1", "--set pairs[3].weight=1: index 3 is out of range: pairs has 1 entry");
  expect_err1(MINIMAL, "pairs[1]=null", "--set pairs[1]=null: index 1 is out of range");
  expect_err1(MINIMAL, "train.steps.x=1", "--set train.steps.x=1: train.steps takes a value, not keys");
  expect_err1("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': {'steps': 5}}", "train.steps[0]=1",
              "--set train.steps[0]=1: train.steps is 5, not an array");
  expect_err1("{" MODELS ", 'pairs': [{'teacher': 'a', 'student': 'b'}], 'train': 3}", "train.steps=1",
              "--set train.steps=1: train is 3, not an object");
  expect_err1(MINIMAL, "train.steps", "--set train.steps: expected key=value, e.g. train.steps=100");
  expect_err1(MINIMAL, "=5", "--set =5: expected key=value");
  expect_err1(MINIMAL, "pairs[x].weight=1",
              "--set pairs[x].weight=1: expected [index] with a non-negative integer after pairs");
  expect_err1(MINIMAL, "train..steps=1", "--set train..steps=1: expected a key name at '.steps'");
  expect_err1(MINIMAL, "data.size[0].x=1", "--set data.size[0].x=1: the entries of data.size take no keys");
  expect_err1(MINIMAL, "train.steps=\"100\"",
              "train.steps: expected an integer, got string \"100\" (from --set train.steps=\"100\")");
}
END_TEST

/* ---- paths -------------------------------------------------------------------------------------- */

START_TEST(paths_resolve) {
  /* absolute paths are kept; relative ones start from the manifest's folder, normalised */
  struct od_manifest *m = parse_ok("{'teacher': {'model': '" BASE
                                   "/models/t.onnx'}, 'student': {'model': "
                                   "'./models/../student.onnx'}, 'pairs': [{'teacher': 'a', 'student': 'b'}],"
                                   " 'train': {'out_dir': '../elsewhere//o/', 'log': 'logs/l.jsonl'}}",
                                   NULL, 0);
  ck_assert_str_eq(m->teacher_model, BASE "/models/t.onnx");
  ck_assert_str_eq(m->student_model, BASE "/student.onnx");
  ck_assert_str_eq(m->train.out_dir, OD_TEST_TMP "/elsewhere/o");
  ck_assert_str_eq(m->train.log, BASE "/logs/l.jsonl"); /* relative to the manifest, not to out_dir */
  od_manifest_destroy(m);

  /* od_manifest_load: from the file's folder, whatever the working directory */
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/models/pairs.json", BASE);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(
      "{\"teacher\": {\"model\": \"t.onnx\"}, \"student\": {\"model\": \"../student.onnx\"},\n"
      " \"pairs\": [{\"teacher\": \"a\", \"student\": \"b\"}]}\n",
      f);
  fclose(f);
  char cwd[PATH_MAX];
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  ck_assert_int_eq(chdir(OD_TEST_TMP), 0); /* restored below (CK_FORK=no runs share the process) */
  struct od_err err = {0};
  m = NULL;
  const char *sets[] = {"train.steps=3"};
  ck_assert_msg(od_manifest_load("manifest/models/pairs.json", sets, 1, &m, &err) == OD_OK, "%s", err.msg);
  ck_assert_str_eq(m->path, BASE "/models/pairs.json");
  ck_assert_str_eq(m->dir, BASE "/models");
  ck_assert_str_eq(m->teacher_model, BASE "/models/t.onnx");
  ck_assert_str_eq(m->student_model, BASE "/student.onnx");
  ck_assert_str_eq(m->train.out_dir, BASE "/models/out");
  ck_assert_int_eq(m->train.steps, 3);
  od_manifest_destroy(m);

  /* load errors carry the name as given */
  struct od_manifest sentinel, *ms = &sentinel;
  ck_assert_int_eq(od_manifest_load("manifest/nope.json", NULL, 0, &ms, &err), OD_ERR_INVALID_ARG);
  ck_assert_ptr_eq(ms, &sentinel);
  ck_assert_msg(strstr(err.msg, "manifest/nope.json: cannot open the manifest") != NULL, "%s", err.msg);
  f = fopen(path, "w");
  fputs("{\"teacher\": {\"model\": \"t.onnx\"}, \"student\": {\"model\": \"nope.onnx\"}, \"pairs\": []}", f);
  fclose(f);
  ck_assert_int_eq(od_manifest_load("manifest/models/pairs.json", NULL, 0, &ms, &err), OD_ERR_INVALID_ARG);
  ck_assert_msg(strstr(err.msg, "manifest/models/pairs.json: student.model: no such file 'nope.onnx' (resolved to " BASE
                                "/models/nope.onnx)") != NULL,
                "%s", err.msg);
  ck_assert_ptr_eq(ms, &sentinel);
  od_manifest_destroy(NULL);
  ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

static Suite *manifest_suite(void) {
  Suite *s = suite_create("manifest");
  TCase *tc = tcase_create("parse");
  tcase_add_checked_fixture(tc, fixtures, NULL);
  tcase_add_test(tc, design_example_parses);
  tcase_add_test(tc, minimal_gets_defaults);
  tcase_add_test(tc, out_dir_moves_log_and_export);
  tcase_add_test(tc, task_loss_only_and_defaults);
  tcase_add_test(tc, every_pair_and_train_field);
  tcase_add_test(tc, more_forms);
  tcase_add_test(tc, error_messages);
  tcase_add_test(tc, syntax_errors);
  tcase_add_test(tc, overrides_apply);
  tcase_add_test(tc, override_errors);
  tcase_add_test(tc, paths_resolve);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(manifest_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
