/* tools/cmd_train.c: `onnx-distill train pairs.json [--set key=value]... [--resume DIR] [--dry-run]`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loaders/manifest.h"
#include "tools/commands.h"
#include "trainer/trainer.h"

/* The one place a signal handler needs a static: the flag the handler may touch. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static int usage(void) {
  fprintf(stderr, "usage: onnx-distill train pairs.json [--set key=value]... [--resume DIR] [--dry-run]\n");
  return 2;
}

int od_cmd_train(int argc, char **argv) {
  const char *manifest = NULL, *resume = NULL;
  bool dry_run = false;
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  int n_sets = 0;
  if (!sets) return 1;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
    else if (!strncmp(argv[i], "--set=", 6)) sets[n_sets++] = argv[i] + 6;
    else if (!strcmp(argv[i], "--resume") && i + 1 < argc) resume = argv[++i];
    else if (!strcmp(argv[i], "--dry-run")) dry_run = true;
    else if (argv[i][0] == '-' || manifest) {
      fprintf(stderr, "onnx-distill train: unexpected argument '%s'\n", argv[i]);
      free(sets);
      return usage();
    } else manifest = argv[i];
  }
  if (!manifest) {
    free(sets);
    return usage();
  }
  struct od_err err = {0};
  struct od_manifest *m = NULL;
  struct od_trainer *t = NULL;
  int rc = 0;
  if (od_manifest_load(manifest, sets, n_sets, &m, &err) != OD_OK) {
    rc = od_cmd_fail(&err);
    goto done;
  }
  if (od_trainer_create(m, resume, &t, &err) != OD_OK) {
    od_err_prefix(&err, "%s", manifest);
    rc = od_cmd_fail(&err);
    goto done;
  }
  if (dry_run) {
    od_trainer_report(t, stdout);
    goto done;
  }
  if (!od_trainer_runnable(t)) {
    od_trainer_report(t, stderr);
    fprintf(stderr, "onnx-distill: unsupported: some student ops on the path to a loss have no backward yet\n");
    rc = 2;
    goto done;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  struct od_train_io io = {.progress = stderr, .tty = isatty(fileno(stderr)) != 0, .stop = &stop_requested};
  if (resume) fprintf(stderr, "resuming from %s at step %lld\n", resume, (long long)od_trainer_step_count(t));
  if (od_trainer_run(t, &io, &err) != OD_OK) {
    rc = od_cmd_fail(&err);
    goto done;
  }
  if (stop_requested) {
    fprintf(stderr, "stopped at step %lld; continue with: onnx-distill train %s --resume %s\n",
            (long long)od_trainer_step_count(t), manifest, m->train.out_dir);
    rc = 130;
    goto done;
  }
  char export_dir[4096];
  snprintf(export_dir, sizeof export_dir, "%s", m->export_path);
  char *slash = strrchr(export_dir, '/');
  if (slash && slash != export_dir) *slash = '\0';
  if ((slash && slash != export_dir && od_trainer_mkdirs(export_dir, &err) != OD_OK) ||
      od_trainer_export(t, m->export_path, &err) != OD_OK) {
    rc = od_cmd_fail(&err);
    goto done;
  }
  fprintf(stderr, "wrote %s\n", m->export_path);
done:
  od_trainer_destroy(t);
  od_manifest_destroy(m);
  free(sets);
  return rc;
}
