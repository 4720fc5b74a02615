/* loaders/manifest.h: the pairing manifest (pairs.json) of `onnx-distill train`.
 *
 * Parsed with cJSON (Debian libcjson-dev). Every field is validated, with messages that carry the
 * JSON path ("pairs[2].loss: unknown loss 'l3'; expected one of l2, l1, ..."). Paths in the file
 * are relative to the manifest's folder and are stored resolved. `--set key=value` overrides
 * ("train.steps=100", "pairs[0].weight=10", "data.size=[320,608,32]": the value is JSON, or a bare
 * string) are applied to the JSON before validation. Defaults are documented in docs/manifest.md. */
#ifndef OD_MANIFEST_H
#define OD_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/status.h"
#include "trainer/loss.h"
#include "trainer/optim.h"

enum od_data_format { OD_DATA_RANDOM, OD_DATA_IMAGES, OD_DATA_VOC, OD_DATA_SYNTHETIC };

enum od_adapter { OD_ADAPTER_AUTO, OD_ADAPTER_NONE, OD_ADAPTER_CONV1X1 };

struct od_pair_cfg {
  char *teacher[2];             /* tensor references (see DESIGN.md); [1] only for two-tensor losses (fsp) */
  char *student[2];
  struct od_loss_params loss;   /* kind and its parameters */
  double weight;                /* default 1 */
  enum od_adapter adapter;      /* default auto */
};

#define OD_MAX_ANCHORS 16

struct od_task_loss_cfg {
  bool enabled;                 /* "task_loss" present */
  char *type;                   /* "yolov3" (NULL when disabled) */
  char **outputs;               /* student tensor references, one per scale */
  int n_outputs;
  float anchors[OD_MAX_ANCHORS][2];
  int n_anchors;
  int anchor_masks[OD_MAX_ANCHORS][OD_MAX_ANCHORS];
  int mask_len[OD_MAX_ANCHORS];
  int n_masks;                  /* == n_outputs */
  int num_classes;              /* default data.n_classes (20, VOC's) */
  double ignore_thresh;         /* default 0.7 */
  bool label_smooth;            /* default false */
  int downsample[OD_MAX_ANCHORS]; /* per output, default 32, 16, 8 */
  double weight;                /* default 1 */
};

struct od_data_cfg {
  enum od_data_format format;   /* default random */
  char *root;                   /* resolved folder (voc, images; optional for synthetic); NULL when absent */
  char *train, *val;            /* list files as written, relative to root (voc: trainval.txt, test.txt) */
  char *input;                  /* the graph input the images feed; default: the student's first input */
  int size_min, size_max, size_step; /* "size": N (step 32) or [min, max, step]; default 0: the model's H,W */
  float mean[3], std[3];        /* default ImageNet's */
  char **classes;               /* default the 20 VOC classes (always filled) */
  int n_classes;
  int workers;                  /* loader threads; default 2 */
  int images;                   /* synthetic: how many images to generate; default 256 */
  int mixup_epochs;             /* voc/synthetic: mixup while epoch < this; default 250 (the reference reader) */
};

struct od_train_cfg {
  int batch_size;               /* default 8 */
  int64_t steps;                /* default 1000 */
  char *device;                 /* default "cpu" */
  char *precision;              /* fp32 | tf32 | bf16; default fp32 */
  uint64_t seed;                /* default 0 */
  struct od_optim_cfg optim;
  struct od_schedule_cfg schedule;
  int64_t checkpoint_every;     /* default 500 */
  int64_t eval_every;           /* default 0 = off */
  int64_t log_every;            /* default 10 */
  char *log;                    /* JSON-lines log file; default <out_dir>/train.jsonl */
  char *out_dir;                /* default "out" next to the manifest */
  char **freeze;                /* glob patterns of parameter names kept fixed */
  int n_freeze;
  bool untie_shared;            /* default true */
  int threads;                  /* CPU threads; default 0 = all */
};

struct od_manifest {
  char *path;                   /* the manifest file */
  char *dir;                    /* its folder */
  char *teacher_model;          /* resolved path */
  char *student_model;
  char *export_path;            /* student.export, resolved; default <out_dir>/student_distilled.onnx */
  struct od_data_cfg data;
  struct od_pair_cfg *pairs;
  int n_pairs;
  struct od_task_loss_cfg task_loss;
  struct od_train_cfg train;
};

/* Reads, applies the overrides (each "key=value"), validates and resolves paths. */
enum od_status od_manifest_load(const char *path, const char *const *sets, int n_sets,
                                struct od_manifest **out, struct od_err *err);

/* Parses a manifest from a JSON string (dir: what relative paths are relative to). */
enum od_status od_manifest_parse(const char *json, const char *name, const char *dir, const char *const *sets,
                                 int n_sets, struct od_manifest **out, struct od_err *err);

void od_manifest_destroy(struct od_manifest *m);

#endif
