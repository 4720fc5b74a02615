/* trainer/trainer.h: the distillation trainer behind `onnx-distill train pairs.json`.
 *
 * One training program per input size: the teacher compiled for inference and sliced to the
 * tensors the pairs read (frozen, inference-mode BatchNormalization, no gradients), the student
 * compiled for training (training-mode BatchNormalization updating its running statistics,
 * gradients for the parameter block) and sliced to the paired tensors and task-loss outputs, so
 * post-processing (NMS) never enters training. Both read the same input batch. Each step:
 * teacher forward, student forward, for each pair adapter + loss (gradient into the student
 * tensor), student backward seeded with those gradients, optimizer update. */
#ifndef OD_TRAINER_H
#define OD_TRAINER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "loaders/manifest.h"
#include "runtime/status.h"

struct od_trainer;

/* How the run reports and stops. */
struct od_train_io {
  FILE *progress;                    /* stderr or stdout */
  bool tty;                          /* rewrite one progress line in place; plain lines otherwise */
  volatile sig_atomic_t *stop;       /* set by SIGINT/SIGTERM: checkpoint and return */
};

/* Loads the models of the manifest, binds the pairs, builds the parameter block, adapters and the
 * first training program. resume_dir: continue from its latest checkpoint (NULL: fresh start). */
enum od_status od_trainer_create(const struct od_manifest *m, const char *resume_dir, struct od_trainer **out,
                                 struct od_err *err);

/* `--dry-run`: resolved pairs with shapes, adapters and losses, which student ops on the path to a
 * loss lack a backward, trainable parameter count and a memory estimate. */
void od_trainer_report(struct od_trainer *t, FILE *f);

/* True when every op on every gradient path has a backward (training can run). */
bool od_trainer_runnable(const struct od_trainer *t);

/* Trains until train.steps (or until *io->stop), writing checkpoints every checkpoint_every steps
 * and on stop, the JSON-lines log, and progress. */
enum od_status od_trainer_run(struct od_trainer *t, const struct od_train_io *io, struct od_err *err);

/* One training step at the current step counter; *loss gets the total. For tests. */
enum od_status od_trainer_step(struct od_trainer *t, double *loss, struct od_err *err);

/* Writes the student with the trained values (and running statistics) to path. */
enum od_status od_trainer_export(struct od_trainer *t, const char *path, struct od_err *err);

/* Checkpoints: atomic (temp file, fsync, rename) into dir; load restores parameters, optimizer
 * state, running statistics and the step, so a resumed run continues exactly. */
enum od_status od_trainer_save(struct od_trainer *t, const char *dir, struct od_err *err);
enum od_status od_trainer_load(struct od_trainer *t, const char *dir, struct od_err *err);

/* Reads from the checkpoint in dir the student model's path and its parameter block (trained
 * values and running statistics) for `onnx-distill export DIR`. Both outputs are malloc'd. */
enum od_status od_checkpoint_read_student(const char *dir, char **student_path, uint8_t **graph_data,
                                          size_t *graph_bytes, struct od_err *err);

/* mkdir -p (folders for checkpoints, logs and the export). */
enum od_status od_trainer_mkdirs(const char *dir, struct od_err *err);

int64_t od_trainer_step_count(const struct od_trainer *t);

void od_trainer_destroy(struct od_trainer *t);

#endif
