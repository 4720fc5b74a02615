/* trainer/trainer_internal.h: the trainer's state, shared by trainer.c, loop.c and checkpoint.c. */
#ifndef OD_TRAINER_INTERNAL_H
#define OD_TRAINER_INTERNAL_H

#include <stdio.h>

#include "loaders/onnx_import.h"
#include "runtime/device.h"
#include "runtime/exec.h"
#include "runtime/pool.h"
#include "trainer/adapter.h"
#include "trainer/data.h"
#include "trainer/params.h"
#include "trainer/resolve.h"
#include "trainer/trainer.h"

#define OD_TRAIN_MAX_INPUTS 64
#define OD_TRAIN_MAX_SEEDS 64
#define OD_TRAIN_MAX_SIZES 10 /* 320..608 step 32 */
#define OD_TRAIN_MAX_HEADS 16

/* The teacher and student programs compiled for one input size. */
struct size_prog {
  int h, w;
  struct od_program *teacher, *student;
  struct od_step_graph *graph; /* the device step captured at this size (trainer/step_device.c) */
};

/* One manifest pair, bound. */
struct pair_rt {
  const struct od_pair_cfg *cfg;
  int arity;                          /* tensors per side */
  struct od_ref_binding tb[2], sb[2]; /* teacher and student values */
  struct od_adapter_plan ad[2];
  struct od_tensor s_shape[2], t_shape[2]; /* shapes the adapters were planned for */
  int seed_index[2];                  /* the student value's gradient seed */
  float *dA[2];                       /* gradient of the adapted tensor (when an adapter exists) */
  size_t dA_bytes[2];
  double last_value;                  /* unweighted loss of the last step */
  bool dev_loss;                      /* device step: this pair's loss runs on the device */
};

struct od_trainer {
  const struct od_manifest *m;
  struct od_model *teacher, *student;
  struct od_device *dev;
  struct od_pool *pool;
  struct od_params params;
  uint8_t *trainable;                 /* student value flags */
  uint8_t *t_keep, *s_keep;           /* values the pairs read */
  int t_input, s_input;               /* the graph inputs the images feed */
  int channels, h, w;                 /* the largest training input */
  struct pair_rt *pairs;
  int n_pairs;
  int seeds[OD_TRAIN_MAX_SEEDS];      /* distinct student values that receive a loss gradient */
  void *seed_grads[OD_TRAIN_MAX_SEEDS];
  size_t seed_bytes[OD_TRAIN_MAX_SEEDS];
  int n_seeds;
  struct od_ref_binding heads[OD_TRAIN_MAX_HEADS]; /* task_loss.outputs */
  int head_seed[OD_TRAIN_MAX_HEADS];
  int n_heads;
  double task_value;                  /* task loss of the last step (unweighted) */
  struct size_prog progs[OD_TRAIN_MAX_SIZES];
  int n_progs;
  struct od_data *data;
  int64_t step;                       /* steps done */
  double last_loss, last_lr, last_grad_norm;
  int n_untied;                       /* parameters given their own copy (untie.h) */
  double best_map;                    /* best eval mAP (11-point) so far */
  /* On a CUDA device (trainer/trainer.c): programs run there; losses, adapters and the optimizer
   * run on the host over host copies (the parameter block stays the master copy). */
  bool on_device;
  void *s_mirror, *t_mirror;          /* device copies of the graphs' parameter blocks */
  float *dw, *dg;                     /* device copies of params.w and params.g */
  size_t d_total;                     /* floats in dw/dg */
  float *g_host;                      /* host scratch: the gradient block downloaded */
  float *dx;                          /* the input batch on the device */
  void *pinned[8];                    /* the data source's batch buffers, page-locked (dev->ops->pin) */
  size_t pinned_bytes[8];
  int n_pinned;
  size_t dx_bytes;
  /* The device step (trainer/step_device.c), when no adapter has parameters: supported losses,
   * the gradient norm and the optimizer run on the device; the host copies of the weights and
   * optimizer state are brought back only when needed (host_stale). */
  bool dev_step;
  bool host_stale;                    /* params.w / params.state are behind dw / dstate */
  float *dstate;                      /* optimizer state on the device */
  struct od_cuda_optim *dopt;
  void *dseed[OD_TRAIN_MAX_SEEDS];    /* gradient seeds on the device */
  size_t dseed_bytes[OD_TRAIN_MAX_SEEDS];
  bool seed_host_used[OD_TRAIN_MAX_SEEDS]; /* a host loss wrote into seed_grads[s] this step */
  struct od_cuda_step *dscal;         /* the step's scalars on the device (losses, norm, lr) */
  bool dev_only;                      /* every loss runs on the device: the step can be a CUDA graph */
  bool graphs;                        /* CUDA graphs allowed (OD_CUDA_GRAPHS != 0) */
  bool last_graph;                    /* the last step ran as a CUDA graph (logged) */
};

/* trainer/step_device.c */
bool od_trainer_device_step_possible(const struct od_trainer *t);
enum od_status od_trainer_device_setup(struct od_trainer *t, struct od_err *err);
/* Uploads batch x, runs the forward passes and the rest of the step (as a CUDA graph when it can). */
enum od_status od_trainer_device_step(struct od_trainer *t, struct size_prog *sp, const struct od_tensor *x,
                                      const struct od_batch *b, double *total, struct od_err *err);
enum od_status od_trainer_device_download(struct od_trainer *t, struct od_err *err);
void od_trainer_device_free(struct od_trainer *t);
void od_trainer_graph_free(struct od_step_graph *sg); /* NULL is a no-op */

/* trainer/trainer.c, for the device step: host-side losses of the pairs that do not run on the
 * device (dev_loss false) and the task loss, into the host seed buffers (zeroed first). */
enum od_status od_trainer_host_losses(struct od_trainer *t, struct size_prog *sp, const struct od_batch *b,
                                      double *total, struct od_err *err);

/* Brings the student graph's parameter block up to date from the trainer (trained values, and
 * BatchNormalization statistics kept on the device): before export, checkpoints and eval. */
enum od_status od_trainer_sync_graph(struct od_trainer *t, struct od_err *err);

/* After the host copies changed (resume): uploads them to the device again. */
enum od_status od_trainer_upload(struct od_trainer *t, struct od_err *err);

/* The programs for input size h x w (compiled on first use, cached). */
enum od_status od_trainer_program(struct od_trainer *t, int h, int w, struct size_prog **out, struct od_err *err);

#endif
