/* trainer/loop.c: the training loop (progress, JSON-lines log, checkpoints, stop on signal) and
 * the `--dry-run` report. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "trainer/evaluate.h"
#include "trainer/trainer_internal.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fmt_duration(double s, char *buf, size_t size) {
  if (!isfinite(s) || s < 0) s = 0;
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, size, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
  else snprintf(buf, size, "%lds", t);
}

static void log_step(struct od_trainer *t, FILE *log, double steps_per_s) {
  if (!log) return;
  fprintf(log, "{\"step\":%lld,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.6g,\"steps_per_s\":%.4g,\"terms\":{",
          (long long)t->step, t->last_loss, t->last_lr, t->last_grad_norm, steps_per_s);
  for (int i = 0; i < t->n_pairs; i++)
    fprintf(log, "%s\"pairs[%d].%s\":%.9g", i ? "," : "", i, od_loss_name(t->pairs[i].cfg->loss.kind),
            t->pairs[i].last_value);
  if (t->n_heads) fprintf(log, "%s\"task.yolov3\":%.9g", t->n_pairs ? "," : "", t->task_value);
  struct od_data_stats ds;
  od_data_stats(t->data, &ds);
  fprintf(log, "},\"skipped_files\":%lld%s}\n", (long long)ds.skipped,
          !t->dev_step ? "" : t->last_graph ? ",\"cuda_graph\":true" : ",\"cuda_graph\":false");
  fflush(log);
}

static void progress(struct od_trainer *t, const struct od_train_io *io, double steps_per_s, bool final) {
  if (!io->progress) return;
  int64_t total = t->m->train.steps;
  char eta[32];
  fmt_duration(steps_per_s > 0 ? (double)(total - t->step) / steps_per_s : 0, eta, sizeof eta);
  char terms[512] = "";
  size_t k = 0;
  for (int i = 0; i < t->n_pairs && k + 1 < sizeof terms; i++)
    k += (size_t)snprintf(terms + k, sizeof terms - k, " %s%d=%.4g", od_loss_name(t->pairs[i].cfg->loss.kind), i,
                          t->pairs[i].last_value);
  if (t->n_heads && k + 1 < sizeof terms) snprintf(terms + k, sizeof terms - k, " yolov3=%.4g", t->task_value);
  fprintf(io->progress, "%sstep %lld/%lld  loss %.5g%s  lr %.3g  %.2f steps/s  ETA %s%s",
          io->tty ? "\r\033[K" : "", (long long)t->step, (long long)total, t->last_loss, terms, t->last_lr,
          steps_per_s, eta, io->tty && !final ? "" : "\n");
  fflush(io->progress);
}

/* eval_every: the student's mAP on the val list now; the best so far keeps its own checkpoint
 * (out_dir/best). Needs a detection task (task_loss) and voc/synthetic data. */
static enum od_status periodic_eval(struct od_trainer *t, const struct od_train_io *io, FILE *log, struct od_err *err) {
  const struct od_manifest *m = t->m;
  OD_TRY(od_trainer_sync_graph(t, err));
  int heads[OD_TRAIN_MAX_HEADS];
  for (int i = 0; i < t->n_heads; i++) heads[i] = t->heads[i].value;
  struct od_eval_spec spec = {.g = t->student->graph, .input = t->s_input, .heads = heads, .tl = &m->task_loss,
                              .data = &m->data, .size = t->h, .batch = m->train.batch_size, .dev = t->dev,
                              .pool = t->pool};
  struct od_eval_result r;
  if (od_evaluate(&spec, &r, err) != OD_OK) {
    od_err_prefix(err, "eval at step %lld", (long long)t->step);
    return err->status;
  }
  bool best = r.map11 > t->best_map;
  if (best) t->best_map = r.map11;
  if (log) {
    fprintf(log, "{\"step\":%lld,\"eval\":{\"map11\":%.6g,\"map_all\":%.6g,\"images\":%lld,\"best\":%s}}\n",
            (long long)t->step, r.map11, r.map_all, (long long)r.images, best ? "true" : "false");
    fflush(log);
  }
  if (io->progress)
    fprintf(io->progress, "%seval at step %lld: mAP@0.5 %.2f (11-point), %.2f (all-point)%s\n", io->tty ? "\r\033[K" : "",
            (long long)t->step, 100 * r.map11, 100 * r.map_all, best ? "  best so far" : "");
  od_eval_result_free(&r);
  if (best) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/best", m->train.out_dir);
    OD_TRY(od_trainer_save(t, dir, err));
  }
  return OD_OK;
}

enum od_status od_trainer_run(struct od_trainer *t, const struct od_train_io *io, struct od_err *err) {
  const struct od_manifest *m = t->m;
  FILE *log = NULL;
  OD_TRY(od_trainer_mkdirs(m->train.out_dir, err));
  if (m->train.log) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", m->train.log);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
      *slash = '\0';
      OD_TRY(od_trainer_mkdirs(dir, err));
    }
    log = fopen(m->train.log, t->step > 0 ? "a" : "w");
    if (!log) return od_err_set(err, OD_ERR_IO, "train.log: cannot write '%s'", m->train.log);
  }
  enum od_status st = OD_OK;
  double t0 = now_s(), last_t = t0;
  int64_t last_step = t->step;
  double rate = 0;
  while (t->step < m->train.steps) {
    if (io->stop && *io->stop) {
      if (io->progress) fprintf(io->progress, "%sstopping at step %lld: writing a checkpoint\n", io->tty ? "\n" : "",
                                (long long)t->step);
      break;
    }
    double loss;
    st = od_trainer_step(t, &loss, err);
    if (st != OD_OK) break;
    double now = now_s();
    bool log_now = m->train.log_every > 0 && (t->step % m->train.log_every == 0 || t->step == m->train.steps);
    if (log_now || io->tty) {
      if (now - last_t > 0 && t->step > last_step) rate = (double)(t->step - last_step) / (now - last_t);
      if (log_now) {
        log_step(t, log, rate);
        last_t = now;
        last_step = t->step;
      }
      if (log_now || (io->tty && now - last_t > 0.2)) progress(t, io, rate, false);
    }
    if (m->train.eval_every > 0 && t->n_heads && (t->step % m->train.eval_every == 0 || t->step == m->train.steps)) {
      st = periodic_eval(t, io, log, err);
      if (st != OD_OK) break;
    }
    if (m->train.checkpoint_every > 0 && t->step % m->train.checkpoint_every == 0) {
      st = od_trainer_save(t, m->train.out_dir, err);
      if (st != OD_OK) break;
    }
  }
  if (io->progress && io->tty) fputc('\n', io->progress);
  /* a stop or a failure keeps what was learnt since the last checkpoint when it can */
  if (t->step > 0 && (st == OD_OK || st != OD_ERR_IO)) {
    struct od_err e2 = {0};
    if (od_trainer_save(t, m->train.out_dir, &e2) != OD_OK && st == OD_OK) {
      *err = e2;
      st = e2.status;
    }
  }
  if (log) fclose(log);
  if (io->progress && st == OD_OK)
    fprintf(io->progress, "trained %lld steps in %.1fs\n", (long long)t->step, now_s() - t0);
  return st;
}

/* ---- dry run --------------------------------------------------------------------------------------- */

bool od_trainer_runnable(const struct od_trainer *t) {
  if (!t->n_progs) return false;
  int nodes[1];
  return od_program_missing_backward(t->progs[0].student, nodes, 1) == 0;
}

static void shape_str(const struct od_tensor *x, char *buf, size_t size) { od_shape_str(x->rank, x->dims, buf, size); }

void od_trainer_report(struct od_trainer *t, FILE *f) {
  const struct od_manifest *m = t->m;
  const struct od_graph *sg = t->student->graph;
  struct size_prog *sp = &t->progs[0];
  if (m->teacher_model) fprintf(f, "teacher: %s (frozen, inference-mode BatchNormalization)\n", m->teacher_model);
  else fprintf(f, "teacher: none (the student trains on its task loss alone)\n");
  fprintf(f, "student: %s -> %s\n", m->student_model, m->export_path);
  fprintf(f, "input:   '%s' [%d, %d, %d, %d] from data.format %s\n", sg->values[t->s_input].name, m->train.batch_size,
          t->channels, t->h, t->w,
          m->data.format == OD_DATA_RANDOM ? "random" : m->data.format == OD_DATA_IMAGES ? "images"
                                                        : m->data.format == OD_DATA_VOC  ? "voc"
                                                                                         : "synthetic");
  fprintf(f, "pairs (%d):\n", t->n_pairs);
  for (int i = 0; i < t->n_pairs; i++) {
    const struct pair_rt *pr = &t->pairs[i];
    for (int k = 0; k < pr->arity; k++) {
      char ss[128], ts[128];
      shape_str(&pr->s_shape[k], ss, sizeof ss);
      shape_str(&pr->t_shape[k], ts, sizeof ts);
      fprintf(f, "  [%d] student %s %s\n      teacher %s %s\n", i, pr->sb[k].how, ss, pr->tb[k].how, ts);
      if (pr->ad[k].conv || pr->ad[k].resize)
        fprintf(f, "      adapter: %s%s%s\n", pr->ad[k].conv ? "1x1 conv (trainable, not exported)" : "",
                pr->ad[k].conv && pr->ad[k].resize ? " + " : "", pr->ad[k].resize ? "bilinear resize" : "");
    }
    fprintf(f, "      loss %s x %g\n", od_loss_name(pr->cfg->loss.kind), pr->cfg->weight);
  }
  for (int i = 0; i < t->n_heads; i++) {
    const struct od_tensor *X = od_program_value(sp->student, t->heads[i].value);
    char xs[128];
    shape_str(X, xs, sizeof xs);
    fprintf(f, "task_loss yolov3 x %g: output %d %s %s\n", m->task_loss.weight, i, t->heads[i].how, xs);
  }
  size_t n_params = 0, n_tensors = 0, n_adapter = 0, n_shared = 0;
  for (int i = 0; i < t->params.n; i++) {
    n_params += t->params.p[i].n;
    n_tensors++;
    n_adapter += t->params.p[i].value < 0 ? t->params.p[i].n : 0;
    n_shared += t->params.p[i].n_uses > 1;
  }
  fprintf(f, "trainable: %zu parameters in %zu tensors (%zu in adapters), %d frozen by pattern\n", n_params, n_tensors,
          n_adapter, t->params.n_frozen);
  if (t->n_untied)
    fprintf(f, "untied: %d shared parameter uses got their own copy (untie_shared); the export writes each as its own "
               "initializer\n", t->n_untied);
  if (n_shared)
    fprintf(f, "shared storage: %zu parameter tensors are read by several layers and stay tied (untie_shared is off)\n",
            n_shared);
  int missing[64];
  int nm = od_program_missing_backward(sp->student, missing, 64);
  if (nm == 0) {
    fprintf(f, "backward: every student op on the path to a loss has a backward\n");
  } else {
    fprintf(f, "backward: %d student node(s) on the path to a loss have no backward yet:\n", nm);
    for (int i = 0; i < nm && i < 64; i++) {
      char nd[256];
      fprintf(f, "  %s\n", od_node_describe(&sg->nodes[missing[i]], nd, sizeof nd));
    }
  }
  if (t->on_device) {
    /* where each node runs: the device, or the CPU through the host bridge (runtime/placement.c) */
    fprintf(f, "device: %s, precision %s; %s\n", t->dev->name, m->train.precision,
            t->dev_step ? "losses l2/l1/smooth_l1, the gradient norm and the optimizer run on the device"
                        : "losses, adapters and the optimizer run on the host (an adapter has parameters)");
    for (int side = 0; side < 2; side++) {
      const struct od_program *prog = side ? sp->teacher : sp->student;
      const struct od_graph *g = side ? (t->teacher ? t->teacher->graph : NULL) : sg;
      if (!prog || !g) continue;
      int running = 0, on_host = 0;
      for (int i = 0; i < g->n_nodes; i++) {
        if (!od_program_node_runs(prog, i)) continue;
        running++;
        on_host += od_program_node_on_host(prog, i, NULL);
      }
      fprintf(f, "%s: %d of %d running nodes on the device%s\n", side ? "teacher" : "student", running - on_host, running,
              on_host ? "; on the host:" : "");
      int shown = 0;
      for (int i = 0; i < g->n_nodes && shown < 20; i++) {
        const char *why = NULL;
        if (!od_program_node_runs(prog, i) || !od_program_node_on_host(prog, i, &why)) continue;
        char nd[256];
        fprintf(f, "  %s: %s\n", od_node_describe(&g->nodes[i], nd, sizeof nd), why ? why : "?");
        shown++;
      }
      if (on_host > shown) fprintf(f, "  ... and %d more\n", on_host - shown);
    }
  }
  size_t ps_bytes = t->params.total * sizeof(float) * (size_t)(2 + t->params.state_per_param);
  size_t s_arena = od_program_arena_bytes(sp->student), s_grad = od_program_grad_bytes(sp->student);
  size_t t_arena = od_program_arena_bytes(sp->teacher);
  double mib = 1024.0 * 1024.0;
  fprintf(f, "memory (batch %d at %dx%d): student activations %.1f MiB + gradients %.1f MiB, teacher %.1f MiB, "
             "parameters+gradients+optimizer %.1f MiB; total about %.1f MiB\n",
          m->train.batch_size, t->h, t->w, (double)s_arena / mib, (double)s_grad / mib, (double)t_arena / mib,
          (double)ps_bytes / mib, (double)(s_arena + s_grad + t_arena + ps_bytes) / mib);
  fprintf(f, "train: %lld steps, %s lr %g, checkpoints every %lld steps in %s\n", (long long)m->train.steps,
          m->train.optim.kind == OD_OPTIM_SGD        ? "sgd"
          : m->train.optim.kind == OD_OPTIM_MOMENTUM ? "momentum"
          : m->train.optim.kind == OD_OPTIM_ADAM     ? "adam"
                                                     : "adamw",
          m->train.optim.lr, (long long)m->train.checkpoint_every, m->train.out_dir);
}
