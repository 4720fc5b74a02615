/* loaders/manifest.c: the pairing manifest (pairs.json) of `onnx-distill train` (see manifest.h;
 * every field, default and rule is in docs/manifest.md).
 *
 * Order of work: read the file; parse it with cJSON (a syntax error gets a line, a column and a
 * hint); apply the --set overrides to the JSON tree; then walk the schema below: every object's
 * keys are checked (an unknown key is an error with a suggestion), every value's type and range,
 * and the result goes into struct od_manifest on top of the defaults. Messages read
 * "<file>: <JSON path>: <what>", and a value set by --set names the override. The JSON side
 * (descriptions, suggestions, syntax errors, overrides) is in loaders/manifest_json.c. */
#include "loaders/manifest.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loaders/manifest_internal.h"

/* ---- the schema: the keys each object takes ------------------------------------------------- */

/* clang-format off */
#define K(key) {key, NULL}
#define END {NULL, NULL}
static const struct od_mf_field optimizer_fields[] = {
    K("type"), K("lr"), K("momentum"), K("nesterov"), K("beta1"), K("beta2"), K("eps"), K("weight_decay"),
    K("clip_grad_norm"), END};
static const struct od_mf_schema optimizer_schema = {"train.optimizer", optimizer_fields};
static const struct od_mf_field schedule_fields[] = {
    K("type"), K("warmup_steps"), K("warmup_factor"), K("milestones"), K("gamma"), K("total_steps"), K("min_lr"), END};
static const struct od_mf_schema schedule_schema = {"train.schedule", schedule_fields};
static const struct od_mf_field train_fields[] = {
    K("batch_size"), K("steps"), K("device"), K("precision"), K("seed"), {"optimizer", &optimizer_schema},
    {"schedule", &schedule_schema}, K("checkpoint_every"), K("eval_every"), K("log_every"), K("log"), K("out_dir"),
    K("freeze"), K("untie_shared"), K("threads"), END};
static const struct od_mf_schema train_schema = {"train", train_fields};
static const struct od_mf_field data_fields[] = {
    K("format"), K("root"), K("train"), K("val"), K("input"), K("size"), K("mean"), K("std"), K("classes"),
    K("workers"), K("images"), K("mixup_epochs"), END};
static const struct od_mf_schema data_schema = {"data", data_fields};
static const struct od_mf_field pair_fields[] = {
    K("teacher"), K("student"), K("teacher2"), K("student2"), K("loss"), K("weight"), K("temperature"),
    K("teacher_temperature"), K("axis"), K("beta"), K("adapter"), K("num_classes"), K("num_anchors"), K("fm_nms"),
    K("fm_nms_kernel"), END};
static const struct od_mf_schema pair_schema = {"pairs[i]", pair_fields};
static const struct od_mf_field task_fields[] = {
    K("type"), K("outputs"), K("anchors"), K("anchor_masks"), K("num_classes"), K("ignore_thresh"), K("label_smooth"),
    K("downsample"), K("weight"), END};
static const struct od_mf_schema task_schema = {"task_loss", task_fields};
static const struct od_mf_field teacher_fields[] = {K("model"), END};
static const struct od_mf_schema teacher_schema = {"teacher", teacher_fields};
static const struct od_mf_field student_fields[] = {K("model"), K("export"), END};
static const struct od_mf_schema student_schema = {"student", student_fields};
static const struct od_mf_field top_fields[] = {
    {"teacher", &teacher_schema}, {"student", &student_schema}, {"data", &data_schema},
    {"pairs", &pair_schema},      {"task_loss", &task_schema},  {"train", &train_schema}, END};
static const struct od_mf_schema top_schema = {"the top level", top_fields};
/* clang-format on */
#undef K
#undef END

/* ---- messages -------------------------------------------------------------------------------- */

static enum od_status vfail(struct od_mf_ctx *c, const char *path, bool show_path, const char *fmt, va_list ap) {
  char msg[OD_ERR_MSG_MAX];
  vsnprintf(msg, sizeof msg, fmt, ap);
  const char *from = NULL; /* the last override whose key is a prefix of path */
  for (int i = c->n_sets - 1; i >= 0 && path && !from; i--) {
    const char *eq = strchr(c->sets[i], '=');
    size_t k = eq ? (size_t)(eq - c->sets[i]) : 0;
    if (k && !strncmp(path, c->sets[i], k) && (path[k] == '\0' || path[k] == '.' || path[k] == '[')) from = c->sets[i];
  }
  return od_err_set(c->err, OD_ERR_INVALID_ARG, "%s: %s%s%s%s%s%s", c->name, show_path && path ? path : "",
                    show_path && path ? ": " : "", msg, from ? " (from --set " : "", from ? from : "", from ? ")" : "");
}

/* "<file>: <path>: <message>" */
__attribute__((format(printf, 3, 4))) static enum od_status fail(struct od_mf_ctx *c, const char *path, const char *fmt,
                                                                 ...) {
  va_list ap;
  va_start(ap, fmt);
  enum od_status st = vfail(c, path, true, fmt, ap);
  va_end(ap);
  return st;
}

/* "<file>: <message>" (the message names the place itself), tagged by path for --set. */
__attribute__((format(printf, 3, 4))) static enum od_status fail_in(struct od_mf_ctx *c, const char *path,
                                                                    const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  enum od_status st = vfail(c, path, false, fmt, ap);
  va_end(ap);
  return st;
}

static enum od_status oom(struct od_mf_ctx *c) { return od_err_set(c->err, OD_ERR_OOM, "%s: out of memory", c->name); }

static void idx_path(char *out, size_t n, const char *base, int i) {
  if (snprintf(out, n, "%s[%d]", base, i) >= (int)n) out[n - 1] = '\0';
}

/* ---- typed getters: each takes the value and its path; absent (NULL) keeps *out ---------------- */

#define PATH_MAX_LEN 256
#define GOT(v) od_mf_describe((v), got, sizeof got)

static bool is_integer(const cJSON *v) {
  return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) <= 9007199254740992.0;
}

/* what: "a positive integer" (lo 1), "a non-negative integer" (lo 0) */
static enum od_status as_int(struct od_mf_ctx *c, const cJSON *v, const char *path, int64_t lo, int64_t hi,
                             const char *what, int64_t *out) {
  char got[96];
  if (!v) return OD_OK;
  if (!is_integer(v)) return fail(c, path, "expected an integer, got %s", GOT(v));
  double d = v->valuedouble;
  if (d < (double)lo) return fail(c, path, "must be %s, got %s", what, GOT(v));
  if (d > (double)hi) return fail(c, path, "must be at most %lld, got %s", (long long)hi, GOT(v));
  *out = (int64_t)d;
  return OD_OK;
}

static enum od_status as_int32(struct od_mf_ctx *c, const cJSON *v, const char *path, int lo, int hi, const char *what,
                               int *out) {
  int64_t x = *out;
  OD_TRY(as_int(c, v, path, lo, hi, what, &x));
  *out = (int)x;
  return OD_OK;
}

enum range { R_ANY, R_POS, R_NONNEG, R_UNIT, R_UNIT_OPEN };

static enum od_status as_num(struct od_mf_ctx *c, const cJSON *v, const char *path, enum range r, double *out) {
  char got[96];
  if (!v) return OD_OK;
  if (!cJSON_IsNumber(v)) return fail(c, path, "expected a number, got %s", GOT(v));
  double d = v->valuedouble;
  if (!isfinite(d)) return fail(c, path, "must be a finite number, got %s", GOT(v));
  static const char *const need[] = {"", "> 0", ">= 0", "in [0, 1]", "in [0, 1)"};
  bool ok = r == R_ANY || (r == R_POS && d > 0) || (r == R_NONNEG && d >= 0) || (r == R_UNIT && d >= 0 && d <= 1) ||
            (r == R_UNIT_OPEN && d >= 0 && d < 1);
  if (!ok) return fail(c, path, "must be %s, got %s", need[r], GOT(v));
  *out = d;
  return OD_OK;
}

static enum od_status as_bool(struct od_mf_ctx *c, const cJSON *v, const char *path, bool *out) {
  char got[96];
  if (!v) return OD_OK;
  if (!cJSON_IsBool(v)) return fail(c, path, "expected true or false, got %s", GOT(v));
  *out = cJSON_IsTrue(v);
  return OD_OK;
}

/* A non-empty string, borrowed from the tree. */
static enum od_status as_cstr(struct od_mf_ctx *c, const cJSON *v, const char *path, const char **out) {
  char got[96];
  if (!v) return OD_OK;
  if (!cJSON_IsString(v)) return fail(c, path, "expected a string, got %s", GOT(v));
  if (!v->valuestring[0]) return fail(c, path, "must not be empty");
  *out = v->valuestring;
  return OD_OK;
}

static enum od_status set_str(struct od_mf_ctx *c, char **dst, const char *s) {
  char *d = strdup(s);
  if (!d) return oom(c);
  free(*dst);
  *dst = d;
  return OD_OK;
}

static enum od_status as_str(struct od_mf_ctx *c, const cJSON *v, const char *path, char **out) {
  const char *s = NULL;
  OD_TRY(as_cstr(c, v, path, &s));
  return s ? set_str(c, out, s) : OD_OK;
}

/* One of names[0..n): *out = its index. noun names the kind in the message ("loss", "optimizer"). */
static enum od_status as_enum(struct od_mf_ctx *c, const cJSON *v, const char *path, const char *const *names, int n,
                              const char *noun, int *out) {
  const char *s = NULL;
  OD_TRY(as_cstr(c, v, path, &s));
  if (!s) return OD_OK;
  for (int i = 0; i < n; i++)
    if (!strcmp(s, names[i])) {
      *out = i;
      return OD_OK;
    }
  char list[512], hint[96] = "";
  od_mf_list_names(list, sizeof list, names, n);
  const char *best = od_mf_closest(s, names, n);
  if (best) snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
  return fail(c, path, "unknown %s '%s'; expected one of %s%s", noun, s, list, hint);
}

/* Joins dir and p (kept when absolute) and removes ".", ".." and repeated slashes. */
static char *resolve_path(const char *dir, const char *p) {
  size_t n = strlen(dir) + strlen(p) + 3;
  char *s = malloc(n), *out = malloc(n);
  if (!s || !out) {
    free(s);
    free(out);
    return NULL;
  }
  if (p[0] == '/')
    snprintf(s, n, "%s", p);
  else
    snprintf(s, n, "%s/%s", dir, p);
  size_t k = 0;                 /* out holds "/a/b" */
  size_t marks[512], depth = 0; /* where each kept component starts */
  for (char *q = s; *q;) {
    while (*q == '/') q++;
    char *e = q;
    while (*e && *e != '/') e++;
    size_t len = (size_t)(e - q);
    if (len == 0 || (len == 1 && q[0] == '.')) {
    } else if (len == 2 && q[0] == '.' && q[1] == '.') {
      if (depth) k = marks[--depth];
    } else {
      if (depth < sizeof marks / sizeof marks[0]) marks[depth++] = k;
      out[k++] = '/';
      memcpy(out + k, q, len);
      k += len;
    }
    q = e;
  }
  if (!k) out[k++] = '/';
  out[k] = '\0';
  free(s);
  return out;
}

static enum od_status as_path(struct od_mf_ctx *c, const cJSON *v, const char *path, char **out) {
  const char *s = NULL;
  OD_TRY(as_cstr(c, v, path, &s));
  if (!s) return OD_OK;
  char *r = resolve_path(c->dir, s);
  if (!r) return oom(c);
  free(*out);
  *out = r;
  return OD_OK;
}

/* written: as in the file (for the message); resolved: the absolute path. */
static enum od_status check_exists(struct od_mf_ctx *c, const char *path, const char *written, const char *resolved,
                                   bool want_dir) {
  struct stat sb;
  if (stat(resolved, &sb) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return fail(c, path, "no such %s '%s' (resolved to %s)", want_dir ? "folder" : "file", written, resolved);
    return fail(c, path, "cannot read '%s' (resolved to %s): %s", written, resolved, strerror(errno));
  }
  if (want_dir && !S_ISDIR(sb.st_mode))
    return fail(c, path, "'%s' is a file, not a folder (resolved to %s)", written, resolved);
  if (!want_dir && S_ISDIR(sb.st_mode))
    return fail(c, path, "'%s' is a folder, not a file (resolved to %s)", written, resolved);
  return OD_OK;
}

/* ---- objects: type and keys ------------------------------------------------------------------ */

/* A section (object value) with its path; obj NULL when absent. */
struct sec {
  const cJSON *obj;
  char path[PATH_MAX_LEN];
};

static const cJSON *get(const struct sec *s, const char *key) {
  return s->obj ? cJSON_GetObjectItemCaseSensitive(s->obj, key) : NULL;
}

static const char *kp(const struct sec *s, const char *key, char *buf) {
  od_mf_sub_path(buf, PATH_MAX_LEN, s->path, key);
  return buf;
}

/* Checks that obj is an object whose keys are all in sc (keys starting with '_' are comments). */
static enum od_status check_object(struct od_mf_ctx *c, const cJSON *obj, const char *path,
                                   const struct od_mf_schema *sc, const char *shape) {
  char got[96], p[PATH_MAX_LEN];
  if (!cJSON_IsObject(obj))
    return fail(c, path, "expected an object%s%s, got %s", shape ? " " : "", shape ? shape : "", GOT(obj));
  for (const cJSON *it = obj->child; it; it = it->next) {
    od_mf_sub_path(p, sizeof p, path, it->string);
    for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
      if (!strcmp(prev->string, it->string)) return fail(c, p, "duplicate key; remove one of the two");
    if (it->string[0] == '_' || od_mf_find_field(sc, it->string)) continue;
    char hint[600], where[PATH_MAX_LEN + 8];
    od_mf_key_hint(&top_schema, sc, it->string, hint, sizeof hint);
    if (*path)
      snprintf(where, sizeof where, "in %s", path);
    else
      snprintf(where, sizeof where, "at the top level");
    return fail_in(c, p, "unknown key '%s' %s%s", it->string, where, hint);
  }
  return OD_OK;
}

static enum od_status open_sec(struct od_mf_ctx *c, const struct sec *parent, const char *key,
                               const struct od_mf_schema *sc, struct sec *out) {
  od_mf_sub_path(out->path, sizeof out->path, parent->path, key);
  out->obj = get(parent, key);
  return out->obj ? check_object(c, out->obj, out->path, sc, NULL) : OD_OK;
}

static enum od_status as_array(struct od_mf_ctx *c, const cJSON *v, const char *path, const char *of, int *n) {
  char got[96];
  if (!cJSON_IsArray(v)) return fail(c, path, "expected an array of %s, got %s", of, GOT(v));
  *n = cJSON_GetArraySize(v);
  return OD_OK;
}

/* An array of non-empty strings (or one string when one_ok), copied to *out. */
static enum od_status as_str_list(struct od_mf_ctx *c, const cJSON *v, const char *path, int max, bool one_ok,
                                  char ***out, int *n_out) {
  if (!v) return OD_OK;
  int n = 1;
  if (!(one_ok && cJSON_IsString(v))) OD_TRY(as_array(c, v, path, "strings", &n));
  if (n > max) return fail(c, path, "at most %d entries, got %d", max, n);
  char **list = calloc((size_t)n + 1, sizeof *list);
  if (!list) return oom(c);
  enum od_status st = OD_OK;
  for (int i = 0; i < n && st == OD_OK; i++) {
    char p[PATH_MAX_LEN];
    idx_path(p, sizeof p, path, i);
    st = cJSON_IsArray(v) ? as_str(c, cJSON_GetArrayItem(v, i), p, &list[i]) : as_str(c, v, path, &list[i]);
  }
  if (st != OD_OK) {
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
    return st;
  }
  for (int i = 0; i < *n_out; i++) free((*out)[i]);
  free(*out);
  *out = list;
  *n_out = n;
  return OD_OK;
}

/* ---- teacher, student ------------------------------------------------------------------------ */

static enum od_status parse_model(struct od_mf_ctx *c, const struct sec *root, const char *key,
                                  const struct od_mf_schema *sc, const char *who, char **model, struct sec *s) {
  char p[PATH_MAX_LEN];
  OD_TRY(open_sec(c, root, key, sc, s));
  const cJSON *v = get(s, "model");
  if (!v) return fail(c, kp(s, "model", p), "missing; give the %s's ONNX file", who);
  OD_TRY(as_path(c, v, kp(s, "model", p), model));
  return check_exists(c, p, v->valuestring, *model, false);
}

/* ---- train ------------------------------------------------------------------------------------- */

/* Names in the order of their enums (enum od_optim_kind, od_schedule_kind). */
static const char *const optim_names[] = {"sgd", "momentum", "adam", "adamw"};
static const char *const sched_names[] = {"constant", "piecewise", "cosine"};
static const char *const precision_names[] = {"fp32", "tf32", "bf16"};

/* A key present although the chosen kind does not use it. */
static enum od_status unused_key(struct od_mf_ctx *c, const struct sec *s, const char *key, bool used, const char *noun,
                                 const char *kind, const char *users) {
  char p[PATH_MAX_LEN];
  if (used || !get(s, key)) return OD_OK;
  return fail(c, kp(s, key, p), "not used by %s '%s' (only by %s)", noun, kind, users);
}

static enum od_status parse_optimizer(struct od_mf_ctx *c, const struct sec *train, struct od_optim_cfg *o) {
  struct sec s;
  char p[PATH_MAX_LEN];
  od_optim_cfg_default(o);
  OD_TRY(open_sec(c, train, "optimizer", &optimizer_schema, &s));
  int kind = (int)o->kind;
  OD_TRY(as_enum(c, get(&s, "type"), kp(&s, "type", p), optim_names, 4, "optimizer", &kind));
  o->kind = (enum od_optim_kind)kind;
  const char *kname = optim_names[kind];
  bool adam = o->kind == OD_OPTIM_ADAM || o->kind == OD_OPTIM_ADAMW;
  OD_TRY(unused_key(c, &s, "momentum", o->kind == OD_OPTIM_MOMENTUM, "optimizer", kname, "momentum"));
  OD_TRY(unused_key(c, &s, "nesterov", o->kind == OD_OPTIM_MOMENTUM, "optimizer", kname, "momentum"));
  OD_TRY(unused_key(c, &s, "beta1", adam, "optimizer", kname, "adam, adamw"));
  OD_TRY(unused_key(c, &s, "beta2", adam, "optimizer", kname, "adam, adamw"));
  OD_TRY(unused_key(c, &s, "eps", adam, "optimizer", kname, "adam, adamw"));
  OD_TRY(as_num(c, get(&s, "lr"), kp(&s, "lr", p), R_POS, &o->lr));
  OD_TRY(as_num(c, get(&s, "momentum"), kp(&s, "momentum", p), R_UNIT_OPEN, &o->momentum));
  OD_TRY(as_bool(c, get(&s, "nesterov"), kp(&s, "nesterov", p), &o->nesterov));
  OD_TRY(as_num(c, get(&s, "beta1"), kp(&s, "beta1", p), R_UNIT_OPEN, &o->beta1));
  OD_TRY(as_num(c, get(&s, "beta2"), kp(&s, "beta2", p), R_UNIT_OPEN, &o->beta2));
  OD_TRY(as_num(c, get(&s, "eps"), kp(&s, "eps", p), R_POS, &o->eps));
  OD_TRY(as_num(c, get(&s, "weight_decay"), kp(&s, "weight_decay", p), R_NONNEG, &o->weight_decay));
  return as_num(c, get(&s, "clip_grad_norm"), kp(&s, "clip_grad_norm", p), R_NONNEG, &o->clip_norm);
}

static enum od_status parse_schedule(struct od_mf_ctx *c, const struct sec *train, const struct od_train_cfg *t,
                                     struct od_schedule_cfg *sc) {
  struct sec s;
  char p[PATH_MAX_LEN], got[96];
  od_schedule_cfg_default(sc);
  OD_TRY(open_sec(c, train, "schedule", &schedule_schema, &s));
  int kind = (int)sc->kind;
  if (get(&s, "type")) {
    OD_TRY(as_enum(c, get(&s, "type"), kp(&s, "type", p), sched_names, 3, "schedule", &kind));
  } else { /* inferred from the keys given */
    bool piecewise = get(&s, "milestones") || get(&s, "gamma"), cosine = get(&s, "total_steps") || get(&s, "min_lr");
    if (piecewise && cosine)
      return fail(c, s.path, "milestones/gamma (piecewise) and total_steps/min_lr (cosine) both given; set \"type\"");
    kind = piecewise ? OD_SCHED_PIECEWISE : cosine ? OD_SCHED_COSINE : OD_SCHED_CONSTANT;
  }
  sc->kind = (enum od_schedule_kind)kind;
  const char *kname = sched_names[kind];
  OD_TRY(unused_key(c, &s, "milestones", kind == OD_SCHED_PIECEWISE, "schedule", kname, "piecewise"));
  OD_TRY(unused_key(c, &s, "gamma", kind == OD_SCHED_PIECEWISE, "schedule", kname, "piecewise"));
  OD_TRY(unused_key(c, &s, "total_steps", kind == OD_SCHED_COSINE, "schedule", kname, "cosine"));
  OD_TRY(unused_key(c, &s, "min_lr", kind == OD_SCHED_COSINE, "schedule", kname, "cosine"));
  OD_TRY(as_int(c, get(&s, "warmup_steps"), kp(&s, "warmup_steps", p), 0, INT64_MAX, "a non-negative integer",
                &sc->warmup_steps));
  OD_TRY(as_num(c, get(&s, "warmup_factor"), kp(&s, "warmup_factor", p), R_UNIT, &sc->warmup_factor));
  OD_TRY(as_num(c, get(&s, "gamma"), kp(&s, "gamma", p), R_POS, &sc->gamma));
  OD_TRY(as_num(c, get(&s, "min_lr"), kp(&s, "min_lr", p), R_NONNEG, &sc->min_lr));
  if (sc->min_lr > t->optim.lr)
    return fail(c, kp(&s, "min_lr", p), "%g is above train.optimizer.lr (%g)", sc->min_lr, t->optim.lr);
  const cJSON *ms = get(&s, "milestones");
  if (kind == OD_SCHED_PIECEWISE && !ms)
    return fail(c, kp(&s, "milestones", p), "missing; piecewise needs the steps at which lr is multiplied by gamma");
  if (ms) {
    int n = 0;
    OD_TRY(as_array(c, ms, kp(&s, "milestones", p), "step numbers", &n));
    if (n < 1 || n > OD_MAX_MILESTONES) return fail(c, p, "expected 1 to %d steps, got %d", OD_MAX_MILESTONES, n);
    for (int i = 0; i < n; i++) {
      char q[PATH_MAX_LEN];
      idx_path(q, sizeof q, p, i);
      OD_TRY(as_int(c, cJSON_GetArrayItem(ms, i), q, 1, INT64_MAX, "a positive integer", &sc->milestones[i]));
      if (i && sc->milestones[i] <= sc->milestones[i - 1])
        return fail(c, q, "milestones must increase, got %s after %lld", GOT(cJSON_GetArrayItem(ms, i)),
                    (long long)sc->milestones[i - 1]);
    }
    sc->n_milestones = n;
  }
  if (kind == OD_SCHED_COSINE) {
    sc->total_steps = t->steps;
    OD_TRY(as_int(c, get(&s, "total_steps"), kp(&s, "total_steps", p), 1, INT64_MAX, "a positive integer",
                  &sc->total_steps));
    if (sc->total_steps <= sc->warmup_steps)
      return fail(c, kp(&s, "total_steps", p), "%lld must be greater than warmup_steps (%lld)",
                  (long long)sc->total_steps, (long long)sc->warmup_steps);
  }
  return OD_OK;
}

/* "cpu", "cuda" or "cuda:N" */
static bool valid_device(const char *d) {
  if (!strcmp(d, "cpu") || !strcmp(d, "cuda")) return true;
  if (strncmp(d, "cuda:", 5) || !d[5]) return false;
  for (const char *q = d + 5; *q; q++)
    if (!isdigit((unsigned char)*q)) return false;
  return true;
}

static enum od_status parse_train(struct od_mf_ctx *c, const struct sec *root, struct od_manifest *m) {
  struct od_train_cfg *t = &m->train;
  struct sec s;
  char p[PATH_MAX_LEN];
  t->batch_size = 8;
  t->steps = 1000;
  t->checkpoint_every = 500;
  t->eval_every = 0;
  t->log_every = 10;
  t->untie_shared = true;
  t->threads = 0;
  t->seed = 0;
  OD_TRY(set_str(c, &t->device, "cpu"));
  OD_TRY(set_str(c, &t->precision, "fp32"));
  OD_TRY(open_sec(c, root, "train", &train_schema, &s));
  OD_TRY(as_int32(c, get(&s, "batch_size"), kp(&s, "batch_size", p), 1, 1 << 20, "a positive integer", &t->batch_size));
  OD_TRY(as_int(c, get(&s, "steps"), kp(&s, "steps", p), 1, INT64_MAX, "a positive integer", &t->steps));
  OD_TRY(as_str(c, get(&s, "device"), kp(&s, "device", p), &t->device));
  if (!valid_device(t->device)) return fail(c, p, "expected \"cpu\", \"cuda\" or \"cuda:N\", got '%s'", t->device);
  int prec = 0;
  OD_TRY(as_enum(c, get(&s, "precision"), kp(&s, "precision", p), precision_names, 3, "precision", &prec));
  OD_TRY(set_str(c, &t->precision, precision_names[prec]));
  int64_t seed = 0;
  OD_TRY(as_int(c, get(&s, "seed"), kp(&s, "seed", p), 0, INT64_MAX, "a non-negative integer", &seed));
  t->seed = (uint64_t)seed;
  OD_TRY(parse_optimizer(c, &s, &t->optim));
  OD_TRY(parse_schedule(c, &s, t, &t->schedule));
  OD_TRY(as_int(c, get(&s, "checkpoint_every"), kp(&s, "checkpoint_every", p), 0, INT64_MAX,
                "a non-negative integer (0 = only at the end)", &t->checkpoint_every));
  OD_TRY(as_int(c, get(&s, "eval_every"), kp(&s, "eval_every", p), 0, INT64_MAX, "a non-negative integer (0 = off)",
                &t->eval_every));
  OD_TRY(as_int(c, get(&s, "log_every"), kp(&s, "log_every", p), 1, INT64_MAX, "a positive integer", &t->log_every));
  OD_TRY(as_int32(c, get(&s, "threads"), kp(&s, "threads", p), 0, 4096, "a non-negative integer (0 = all cores)",
                  &t->threads));
  OD_TRY(as_bool(c, get(&s, "untie_shared"), kp(&s, "untie_shared", p), &t->untie_shared));
  OD_TRY(as_str_list(c, get(&s, "freeze"), kp(&s, "freeze", p), 1 << 16, true, &t->freeze, &t->n_freeze));
  OD_TRY(set_str(c, &t->out_dir, "out"));
  char *rel = t->out_dir;
  t->out_dir = resolve_path(c->dir, rel);
  free(rel);
  if (!t->out_dir) return oom(c);
  OD_TRY(as_path(c, get(&s, "out_dir"), kp(&s, "out_dir", p), &t->out_dir));
  t->log = resolve_path(t->out_dir, "train.jsonl");
  if (!t->log) return oom(c);
  return as_path(c, get(&s, "log"), kp(&s, "log", p), &t->log);
}

/* ---- data -------------------------------------------------------------------------------------- */

static const char *const format_names[] = {"random", "images", "voc", "synthetic"}; /* enum od_data_format */
static const char *const voc_classes[] = {
    "aeroplane",   "bicycle", "bird",  "boat",      "bottle", "bus",         "car",   "cat",  "chair", "cow",
    "diningtable", "dog",     "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};

static enum od_status parse_size(struct od_mf_ctx *c, const cJSON *v, const char *path, struct od_data_cfg *d) {
  if (!v) return OD_OK;
  char got[96];
  const char *expect = "expected N or [min, max, step] with min <= max and step > 0, multiples of 32 recommended";
  if (is_integer(v)) {
    if (v->valuedouble < 1 || v->valuedouble > 65536) return fail(c, path, "%s; got %s", expect, GOT(v));
    d->size_min = d->size_max = (int)v->valuedouble;
    d->size_step = 32;
    return OD_OK;
  }
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3) return fail(c, path, "%s; got %s", expect, GOT(v));
  int x[3];
  for (int i = 0; i < 3; i++) {
    const cJSON *e = cJSON_GetArrayItem(v, i);
    if (!is_integer(e) || e->valuedouble < 1 || e->valuedouble > 65536)
      return fail(c, path, "%s; got %s at index %d", expect, GOT(e), i);
    x[i] = (int)e->valuedouble;
  }
  if (x[0] > x[1]) return fail(c, path, "%s; got min %d > max %d", expect, x[0], x[1]);
  d->size_min = x[0];
  d->size_max = x[1];
  d->size_step = x[2];
  return OD_OK;
}

static enum od_status parse_vec3(struct od_mf_ctx *c, const cJSON *v, const char *path, enum range r, float out[3]) {
  if (!v) return OD_OK;
  int n = 0;
  OD_TRY(as_array(c, v, path, "3 numbers (R, G, B)", &n));
  if (n != 3) return fail(c, path, "expected 3 numbers (R, G, B), got %d", n);
  for (int i = 0; i < 3; i++) {
    char p[PATH_MAX_LEN];
    double x = 0;
    idx_path(p, sizeof p, path, i);
    OD_TRY(as_num(c, cJSON_GetArrayItem(v, i), p, r, &x));
    out[i] = (float)x;
  }
  return OD_OK;
}

static enum od_status parse_data(struct od_mf_ctx *c, const struct sec *root, struct od_manifest *m,
                                 bool *classes_given) {
  struct od_data_cfg *d = &m->data;
  struct sec s;
  char p[PATH_MAX_LEN];
  static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  memcpy(d->mean, mean, sizeof mean);
  memcpy(d->std, std, sizeof std);
  d->format = OD_DATA_RANDOM;
  d->workers = 2;
  d->mixup_epochs = 250; /* the reference reader: TrainReader.mixup_epoch */
  d->images = 256;
  OD_TRY(open_sec(c, root, "data", &data_schema, &s));
  int fmt = OD_DATA_RANDOM;
  OD_TRY(as_enum(c, get(&s, "format"), kp(&s, "format", p), format_names, 4, "data format", &fmt));
  d->format = (enum od_data_format)fmt;
  const cJSON *rv = get(&s, "root");
  OD_TRY(as_path(c, rv, kp(&s, "root", p), &d->root));
  if ((d->format == OD_DATA_VOC || d->format == OD_DATA_IMAGES) && !d->root)
    return fail(c, p, "missing; data format '%s' needs the dataset folder", format_names[fmt]);
  if (d->root && d->format != OD_DATA_SYNTHETIC) OD_TRY(check_exists(c, p, rv->valuestring, d->root, true));
  if (d->format == OD_DATA_VOC) {
    OD_TRY(set_str(c, &d->train, "trainval.txt"));
    OD_TRY(set_str(c, &d->val, "test.txt"));
  }
  OD_TRY(as_str(c, get(&s, "train"), kp(&s, "train", p), &d->train));
  OD_TRY(as_str(c, get(&s, "val"), kp(&s, "val", p), &d->val));
  if (d->format == OD_DATA_VOC) { /* the lists, relative to root */
    for (int k = 0; k < 2; k++) {
      if (k == 1 && m->train.eval_every == 0) break; /* val is only read for evaluation */
      const char *list = k ? d->val : d->train;
      char *full = resolve_path(d->root, list);
      if (!full) return oom(c);
      char written[PATH_MAX_LEN + 64];
      snprintf(written, sizeof written, "%s", list);
      enum od_status st = check_exists(c, kp(&s, k ? "val" : "train", p), written, full, false);
      free(full);
      if (st != OD_OK) return st;
    }
  }
  OD_TRY(as_str(c, get(&s, "input"), kp(&s, "input", p), &d->input));
  OD_TRY(parse_size(c, get(&s, "size"), kp(&s, "size", p), d));
  OD_TRY(parse_vec3(c, get(&s, "mean"), kp(&s, "mean", p), R_ANY, d->mean));
  OD_TRY(parse_vec3(c, get(&s, "std"), kp(&s, "std", p), R_POS, d->std));
  OD_TRY(as_int32(c, get(&s, "workers"), kp(&s, "workers", p), 1, 256, "a positive integer", &d->workers));
  OD_TRY(as_int32(c, get(&s, "images"), kp(&s, "images", p), 1, 1 << 30, "a positive integer", &d->images));
  OD_TRY(as_int32(c, get(&s, "mixup_epochs"), kp(&s, "mixup_epochs", p), 0, 1 << 30, "a non-negative integer",
                  &d->mixup_epochs));
  const cJSON *cl = get(&s, "classes");
  *classes_given = cl != NULL;
  if (cl) {
    OD_TRY(as_str_list(c, cl, kp(&s, "classes", p), 1 << 16, false, &d->classes, &d->n_classes));
    if (d->n_classes == 0) return fail(c, p, "must name at least one class");
    for (int i = 1; i < d->n_classes; i++)
      for (int j = 0; j < i; j++)
        if (!strcmp(d->classes[i], d->classes[j]))
          return fail(c, p, "class '%s' appears twice (entries %d and %d)", d->classes[i], j, i);
    return OD_OK;
  }
  d->classes = calloc(20, sizeof *d->classes);
  if (!d->classes) return oom(c);
  for (int i = 0; i < 20; i++) {
    if (!(d->classes[i] = strdup(voc_classes[i]))) return oom(c);
    d->n_classes = i + 1;
  }
  return OD_OK;
}

/* ---- task_loss --------------------------------------------------------------------------------- */

static const char *const task_names[] = {"yolov3"};

static enum od_status parse_anchors(struct od_mf_ctx *c, const struct sec *s, struct od_task_loss_cfg *t) {
  static const float def[9][2] = {{10, 13},  {16, 30},  {33, 23},   {30, 61},  {62, 45},
                                  {59, 119}, {116, 90}, {156, 198}, {373, 326}};
  char p[PATH_MAX_LEN];
  const cJSON *v = get(s, "anchors");
  if (!v) {
    memcpy(t->anchors, def, sizeof def);
    t->n_anchors = 9;
    return OD_OK;
  }
  int n = 0;
  OD_TRY(as_array(c, v, kp(s, "anchors", p), "[w, h] pairs", &n));
  if (n < 1 || n > OD_MAX_ANCHORS) return fail(c, p, "expected 1 to %d [w, h] pairs, got %d", OD_MAX_ANCHORS, n);
  for (int i = 0; i < n; i++) {
    char q[PATH_MAX_LEN], got[96];
    const cJSON *a = cJSON_GetArrayItem(v, i);
    idx_path(q, sizeof q, p, i);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2) return fail(c, q, "expected [w, h] in pixels, got %s", GOT(a));
    for (int k = 0; k < 2; k++) {
      char r[PATH_MAX_LEN];
      double x = 0;
      idx_path(r, sizeof r, q, k);
      OD_TRY(as_num(c, cJSON_GetArrayItem(a, k), r, R_POS, &x));
      t->anchors[i][k] = (float)x;
    }
  }
  t->n_anchors = n;
  return OD_OK;
}

static enum od_status parse_masks(struct od_mf_ctx *c, const struct sec *s, struct od_task_loss_cfg *t) {
  char p[PATH_MAX_LEN];
  const cJSON *v = get(s, "anchor_masks");
  kp(s, "anchor_masks", p);
  if (!v) { /* split the anchors evenly, the largest to the first (coarsest) output */
    if (t->n_anchors % t->n_outputs)
      return fail(c, p, "missing, and %d anchors do not split evenly over %d outputs; give one mask per output",
                  t->n_anchors, t->n_outputs);
    int per = t->n_anchors / t->n_outputs;
    for (int i = 0; i < t->n_outputs; i++) {
      for (int k = 0; k < per; k++) t->anchor_masks[i][k] = (t->n_outputs - 1 - i) * per + k;
      t->mask_len[i] = per;
    }
    t->n_masks = t->n_outputs;
    return OD_OK;
  }
  int n = 0;
  OD_TRY(as_array(c, v, p, "anchor index lists", &n));
  if (n != t->n_outputs)
    return fail(c, p, "%d masks for %d outputs (task_loss.outputs); give one mask per output", n, t->n_outputs);
  for (int i = 0; i < n; i++) {
    char q[PATH_MAX_LEN], got[96];
    const cJSON *a = cJSON_GetArrayItem(v, i);
    idx_path(q, sizeof q, p, i);
    int len;
    if (!cJSON_IsArray(a)) return fail(c, q, "expected an array of anchor indices, got %s", GOT(a));
    len = cJSON_GetArraySize(a);
    if (len < 1 || len > OD_MAX_ANCHORS)
      return fail(c, q, "expected 1 to %d anchor indices, got %d", OD_MAX_ANCHORS, len);
    for (int k = 0; k < len; k++) {
      char r[PATH_MAX_LEN];
      idx_path(r, sizeof r, q, k);
      const cJSON *e = cJSON_GetArrayItem(a, k);
      if (!is_integer(e)) return fail(c, r, "expected an anchor index, got %s", GOT(e));
      if (e->valuedouble < 0 || e->valuedouble >= t->n_anchors)
        return fail(c, r, "anchor index %s out of range; task_loss.anchors has %d entries (0..%d)", GOT(e),
                    t->n_anchors, t->n_anchors - 1);
      t->anchor_masks[i][k] = (int)e->valuedouble;
    }
    t->mask_len[i] = len;
  }
  t->n_masks = n;
  return OD_OK;
}

static enum od_status parse_task(struct od_mf_ctx *c, const struct sec *root, struct od_manifest *m,
                                 bool classes_given) {
  struct od_task_loss_cfg *t = &m->task_loss;
  struct sec s;
  char p[PATH_MAX_LEN];
  OD_TRY(open_sec(c, root, "task_loss", &task_schema, &s));
  t->num_classes = m->data.n_classes;
  t->ignore_thresh = 0.7;
  t->weight = 1;
  if (!s.obj) return OD_OK;
  t->enabled = true;
  int type = 0;
  OD_TRY(as_enum(c, get(&s, "type"), kp(&s, "type", p), task_names, 1, "task loss", &type));
  OD_TRY(set_str(c, &t->type, task_names[type]));
  if (m->data.format != OD_DATA_VOC && m->data.format != OD_DATA_SYNTHETIC)
    return fail(c, s.path, "needs labelled data: data.format is '%s'; use voc or synthetic, or drop task_loss",
                format_names[m->data.format]);
  const cJSON *o = get(&s, "outputs");
  if (!o) return fail(c, kp(&s, "outputs", p), "missing; list the student's detection head outputs, one per scale");
  OD_TRY(as_str_list(c, o, kp(&s, "outputs", p), OD_MAX_ANCHORS, false, &t->outputs, &t->n_outputs));
  if (!t->n_outputs) return fail(c, p, "must list at least one output");
  OD_TRY(parse_anchors(c, &s, t));
  OD_TRY(parse_masks(c, &s, t));
  const cJSON *nc = get(&s, "num_classes");
  OD_TRY(as_int32(c, nc, kp(&s, "num_classes", p), 1, 1 << 20, "a positive integer", &t->num_classes));
  if (nc && classes_given && t->num_classes != m->data.n_classes)
    return fail(c, p, "%d, but data.classes names %d classes", t->num_classes, m->data.n_classes);
  OD_TRY(as_num(c, get(&s, "ignore_thresh"), kp(&s, "ignore_thresh", p), R_UNIT, &t->ignore_thresh));
  OD_TRY(as_bool(c, get(&s, "label_smooth"), kp(&s, "label_smooth", p), &t->label_smooth));
  OD_TRY(as_num(c, get(&s, "weight"), kp(&s, "weight", p), R_NONNEG, &t->weight));
  for (int i = 0; i < t->n_outputs; i++) t->downsample[i] = (32 >> i) > 0 ? 32 >> i : 1;
  const cJSON *ds = get(&s, "downsample");
  if (ds) {
    int n = 0;
    OD_TRY(as_array(c, ds, kp(&s, "downsample", p), "strides", &n));
    if (n != t->n_outputs)
      return fail(c, p, "%d strides for %d outputs (task_loss.outputs); give one per output", n, t->n_outputs);
    for (int i = 0; i < n; i++) {
      char q[PATH_MAX_LEN];
      idx_path(q, sizeof q, p, i);
      OD_TRY(as_int32(c, cJSON_GetArrayItem(ds, i), q, 1, 1024, "a positive integer", &t->downsample[i]));
    }
  }
  return OD_OK;
}

/* ---- pairs ------------------------------------------------------------------------------------- */

static const char *const adapter_names[] = {"auto", "none", "conv1x1"}; /* enum od_adapter */

#define LB(k) (1u << (k))
/* Loss parameters and the losses that read them (trainer/loss.h). */
static const struct {
  const char *key;
  unsigned kinds;
} loss_param_use[] = {
    {"temperature", LB(OD_LOSS_KD) | LB(OD_LOSS_SOFT_LABEL) | LB(OD_LOSS_CWD)},
    {"teacher_temperature", LB(OD_LOSS_SOFT_LABEL)},
    {"axis", LB(OD_LOSS_KD) | LB(OD_LOSS_SOFT_LABEL)},
    {"beta", LB(OD_LOSS_SMOOTH_L1)},
    {"num_classes", LB(OD_LOSS_YOLO_SPLIT)},
    {"num_anchors", LB(OD_LOSS_YOLO_SPLIT)},
    {"fm_nms", LB(OD_LOSS_YOLO_SPLIT)},
    {"fm_nms_kernel", LB(OD_LOSS_YOLO_SPLIT)},
};

static enum od_status parse_loss_name(struct od_mf_ctx *c, const cJSON *v, const char *path, enum od_loss_kind *kind) {
  const char *s = NULL;
  OD_TRY(as_cstr(c, v, path, &s));
  if (!s) return OD_OK;
  struct od_err e;
  if (od_loss_parse(s, kind, &e) == OD_OK) return OD_OK;
  /* our own message, so that it carries the path and a suggestion */
  const char *names[OD_LOSS_COUNT];
  for (int k = 0; k < OD_LOSS_COUNT; k++) names[k] = od_loss_name((enum od_loss_kind)k);
  char list[512], hint[96] = "";
  od_mf_list_names(list, sizeof list, names, OD_LOSS_COUNT);
  const char *best = od_mf_closest(s, names, OD_LOSS_COUNT);
  if (best) snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
  return fail(c, path, "unknown loss '%s'; expected one of %s%s", s, list, hint);
}

/* teacher / student (and teacher2 / student2): one reference per tensor the loss takes. */
static enum od_status parse_refs(struct od_mf_ctx *c, const struct sec *s, const char *side, int arity,
                                 const char *lname, char *refs[2]) {
  char p[PATH_MAX_LEN], p2[PATH_MAX_LEN], key2[16], got[96];
  snprintf(key2, sizeof key2, "%s2", side);
  const cJSON *v = get(s, side), *v2 = get(s, key2);
  kp(s, side, p);
  kp(s, key2, p2);
  if (!v) return fail(c, p, "missing; name the %s tensor (a value name, or node:NAME:out:K / node:NAME:in:K)", side);
  if (cJSON_IsArray(v)) {
    int n = cJSON_GetArraySize(v);
    if (n != arity)
      return fail(c, p, "loss '%s' takes %d tensor%s per side, got an array of %d", lname, arity, arity > 1 ? "s" : "",
                  n);
    if (v2) return fail(c, p2, "not allowed when %s is an array", p);
    for (int i = 0; i < n; i++) {
      char q[PATH_MAX_LEN];
      idx_path(q, sizeof q, p, i);
      OD_TRY(as_str(c, cJSON_GetArrayItem(v, i), q, &refs[i]));
    }
    return OD_OK;
  }
  if (!cJSON_IsString(v)) return fail(c, p, "expected a tensor name (string), got %s", GOT(v));
  OD_TRY(as_str(c, v, p, &refs[0]));
  if (arity == 1 && v2) return fail(c, p2, "loss '%s' takes one tensor per side (only fsp takes two)", lname);
  if (arity == 2 && !v2)
    return fail(c, p2, "missing; loss '%s' takes two tensors per side (%s and %s, or \"%s\": [a, b])", lname, side,
                key2, side);
  return v2 ? as_str(c, v2, p2, &refs[1]) : OD_OK;
}

static enum od_status parse_pair(struct od_mf_ctx *c, const cJSON *o, const char *path, const struct od_manifest *m,
                                 struct od_pair_cfg *pc) {
  struct sec s = {.obj = o};
  char p[PATH_MAX_LEN];
  snprintf(s.path, sizeof s.path, "%s", path);
  OD_TRY(check_object(c, o, path, &pair_schema, "{\"teacher\": ..., \"student\": ..., \"loss\": ...}"));
  enum od_loss_kind kind = OD_LOSS_L2;
  OD_TRY(parse_loss_name(c, get(&s, "loss"), kp(&s, "loss", p), &kind));
  const char *lname = od_loss_name(kind);
  for (size_t i = 0; i < sizeof loss_param_use / sizeof loss_param_use[0]; i++) {
    if (!get(&s, loss_param_use[i].key) || (loss_param_use[i].kinds & LB(kind))) continue;
    const char *users[OD_LOSS_COUNT];
    int n = 0;
    for (int k = 0; k < OD_LOSS_COUNT; k++)
      if (loss_param_use[i].kinds & LB(k)) users[n++] = od_loss_name((enum od_loss_kind)k);
    char list[256];
    od_mf_list_names(list, sizeof list, users, n);
    return fail(c, kp(&s, loss_param_use[i].key, p), "not used by loss '%s' (only by %s)", lname, list);
  }
  int arity = od_loss_arity(kind);
  OD_TRY(parse_refs(c, &s, "teacher", arity, lname, pc->teacher));
  OD_TRY(parse_refs(c, &s, "student", arity, lname, pc->student));
  pc->weight = 1;
  OD_TRY(as_num(c, get(&s, "weight"), kp(&s, "weight", p), R_NONNEG, &pc->weight));
  int ad = OD_ADAPTER_AUTO;
  OD_TRY(as_enum(c, get(&s, "adapter"), kp(&s, "adapter", p), adapter_names, 3, "adapter", &ad));
  pc->adapter = (enum od_adapter)ad;
  struct od_loss_params *lp = &pc->loss;
  od_loss_params_default(kind, lp);
  lp->kind = kind;
  OD_TRY(as_num(c, get(&s, "temperature"), kp(&s, "temperature", p), R_POS, &lp->temperature));
  if (get(&s, "temperature")) lp->teacher_temperature = lp->temperature;
  OD_TRY(as_num(c, get(&s, "teacher_temperature"), kp(&s, "teacher_temperature", p), R_POS, &lp->teacher_temperature));
  if (lp->teacher_temperature <= 0) lp->teacher_temperature = lp->temperature; /* "same as temperature" */
  OD_TRY(as_int32(c, get(&s, "axis"), kp(&s, "axis", p), -8, 7, "an axis in [-8, 7]", &lp->axis));
  OD_TRY(as_num(c, get(&s, "beta"), kp(&s, "beta", p), R_POS, &lp->beta));
  if (kind == OD_LOSS_YOLO_SPLIT) /* the dataset's classes unless given */
    lp->num_classes = m->task_loss.enabled ? m->task_loss.num_classes : m->data.n_classes;
  OD_TRY(as_int32(c, get(&s, "num_classes"), kp(&s, "num_classes", p), 1, 1 << 20, "a positive integer",
                  &lp->num_classes));
  OD_TRY(as_int32(c, get(&s, "num_anchors"), kp(&s, "num_anchors", p), 1, OD_MAX_ANCHORS, "a positive integer",
                  &lp->num_anchors));
  OD_TRY(as_bool(c, get(&s, "fm_nms"), kp(&s, "fm_nms", p), &lp->fm_nms));
  OD_TRY(as_int32(c, get(&s, "fm_nms_kernel"), kp(&s, "fm_nms_kernel", p), 1, 99, "an odd positive integer",
                  &lp->fm_nms_kernel));
  if (get(&s, "fm_nms_kernel") && lp->fm_nms_kernel % 2 == 0)
    return fail(c, p, "must be an odd positive integer, got %d", lp->fm_nms_kernel);
  return OD_OK;
}

static enum od_status parse_pairs(struct od_mf_ctx *c, const struct sec *root, struct od_manifest *m) {
  const cJSON *v = get(root, "pairs");
  if (!v) {
    if (m->task_loss.enabled) return OD_OK;
    return fail(c, "pairs",
                "missing; give at least one {\"teacher\": ..., \"student\": ..., \"loss\": ...} pair "
                "(or a task_loss to train without distillation)");
  }
  int n = 0;
  OD_TRY(as_array(c, v, "pairs", "{\"teacher\", \"student\", \"loss\"} objects", &n));
  if (n == 0 && !m->task_loss.enabled)
    return fail(c, "pairs", "empty; give at least one pair (or a task_loss to train without distillation)");
  m->pairs = calloc((size_t)n + 1, sizeof *m->pairs);
  if (!m->pairs) return oom(c);
  for (int i = 0; i < n; i++) {
    char p[PATH_MAX_LEN];
    snprintf(p, sizeof p, "pairs[%d]", i);
    m->n_pairs = i + 1; /* so that destroy frees what a failed pair allocated */
    OD_TRY(parse_pair(c, cJSON_GetArrayItem(v, i), p, m, &m->pairs[i]));
  }
  return OD_OK;
}

/* ---- entry points ------------------------------------------------------------------------------ */

void od_manifest_destroy(struct od_manifest *m) {
  if (!m) return;
  free(m->path);
  free(m->dir);
  free(m->teacher_model);
  free(m->student_model);
  free(m->export_path);
  free(m->data.root);
  free(m->data.train);
  free(m->data.val);
  free(m->data.input);
  for (int i = 0; i < m->data.n_classes; i++) free(m->data.classes[i]);
  free(m->data.classes);
  for (int i = 0; i < m->n_pairs; i++)
    for (int k = 0; k < 2; k++) {
      free(m->pairs[i].teacher[k]);
      free(m->pairs[i].student[k]);
    }
  free(m->pairs);
  free(m->task_loss.type);
  for (int i = 0; i < m->task_loss.n_outputs; i++) free(m->task_loss.outputs[i]);
  free(m->task_loss.outputs);
  free(m->train.device);
  free(m->train.precision);
  free(m->train.log);
  free(m->train.out_dir);
  for (int i = 0; i < m->train.n_freeze; i++) free(m->train.freeze[i]);
  free(m->train.freeze);
  free(m);
}

/* Validates the tree into m (sections in dependency order: train before data and student's export,
 * data before task_loss, task_loss before pairs). */
static enum od_status build(struct od_mf_ctx *c, const cJSON *json, struct od_manifest *m) {
  char got[96];
  if (!cJSON_IsObject(json))
    return fail_in(c, NULL,
                   "expected a JSON object at the top level ({\"teacher\": ..., \"student\": ..., \"pairs\": "
                   "[...]}), got %s",
                   od_mf_describe(json, got, sizeof got));
  struct sec root = {.obj = json}, ts, ss;
  bool classes_given = false;
  OD_TRY(check_object(c, json, "", &top_schema, NULL));
  /* no teacher: training the student alone on its task loss (the "student trained alone" baseline,
   * or a teacher trained by onnx-distill itself); pairs then cannot be given */
  const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(json, "pairs");
  bool no_teacher = !cJSON_GetObjectItemCaseSensitive(json, "teacher") && cJSON_GetObjectItemCaseSensitive(json, "task_loss") &&
                    (!pairs || (cJSON_IsArray(pairs) && cJSON_GetArraySize(pairs) == 0));
  if (!no_teacher) OD_TRY(parse_model(c, &root, "teacher", &teacher_schema, "teacher", &m->teacher_model, &ts));
  OD_TRY(parse_model(c, &root, "student", &student_schema, "student", &m->student_model, &ss));
  OD_TRY(parse_train(c, &root, m));
  if (!(m->export_path = resolve_path(m->train.out_dir, "student_distilled.onnx"))) return oom(c);
  char p[PATH_MAX_LEN];
  OD_TRY(as_path(c, get(&ss, "export"), kp(&ss, "export", p), &m->export_path));
  if (!strcmp(m->export_path, m->student_model))
    return fail(c, p, "'%s' is the student model itself; export to another file", m->export_path);
  OD_TRY(parse_data(c, &root, m, &classes_given));
  OD_TRY(parse_task(c, &root, m, classes_given));
  return parse_pairs(c, &root, m);
}

/* An absolute folder for dir (NULL: the working directory). */
static char *absolute_dir(const char *dir) {
  char cwd[4096];
  if (dir && dir[0] == '/') return resolve_path("/", dir);
  if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
  return resolve_path(cwd, dir && *dir ? dir : ".");
}

enum od_status od_manifest_parse(const char *json, const char *name, const char *dir, const char *const *sets,
                                 int n_sets, struct od_manifest **out, struct od_err *err) {
  struct od_mf_ctx c = {.name = name ? name : "manifest", .sets = sets, .n_sets = n_sets, .err = err};
  if (!json || !out) return fail_in(&c, NULL, "no manifest text");
  size_t len = strlen(json);
  const char *text = json;
  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3, len -= 3; /* UTF-8 byte-order mark */
  const char *end = NULL;
  cJSON *tree = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1); /* + 1: the terminator */
  if (!tree) return od_mf_syntax_error(&c, text, len, end);
  struct od_manifest *m = calloc(1, sizeof *m);
  enum od_status st = m ? OD_OK : oom(&c);
  if (st == OD_OK && (!(m->path = strdup(c.name)) || !(m->dir = absolute_dir(dir)))) st = oom(&c);
  c.dir = m ? m->dir : NULL;
  for (int i = 0; i < n_sets && st == OD_OK; i++) st = od_mf_apply_set(&c, &top_schema, tree, sets[i]);
  if (st == OD_OK) st = build(&c, tree, m);
  cJSON_Delete(tree);
  if (st != OD_OK) {
    od_manifest_destroy(m);
    return st;
  }
  *out = m;
  return OD_OK;
}

enum od_status od_manifest_load(const char *path, const char *const *sets, int n_sets, struct od_manifest **out,
                                struct od_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    return od_err_set(err, e == ENOENT ? OD_ERR_INVALID_ARG : OD_ERR_IO, "%s: cannot open the manifest: %s", path,
                      strerror(e));
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  enum od_status st = OD_OK;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 65536;
      char *t = realloc(text, cap);
      if (!t) {
        st = od_err_set(err, OD_ERR_OOM, "%s: out of memory", path);
        break;
      }
      text = t;
    }
    size_t got = fread(text + len, 1, cap - len - 1, f);
    len += got;
    if (got == 0) {
      if (ferror(f)) st = od_err_set(err, OD_ERR_IO, "%s: read error (is it a folder?)", path);
      break;
    }
  }
  fclose(f);
  if (st == OD_OK && memchr(text, '\0', len))
    st = od_err_set(err, OD_ERR_INVALID_ARG, "%s: contains a NUL byte; expected a JSON text file", path);
  if (st != OD_OK) {
    free(text);
    return st;
  }
  text[len] = '\0';
  /* relative paths start from the manifest's folder */
  char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  struct od_manifest *m = NULL;
  if (!dir)
    st = od_err_set(err, OD_ERR_OOM, "%s: out of memory", path);
  else
    st = od_manifest_parse(text, path, dir, sets, n_sets, &m, err);
  free(text);
  free(dir);
  if (st != OD_OK) return st;
  char *abs = absolute_dir(path); /* the file's absolute path */
  if (abs) {
    free(m->path);
    m->path = abs;
  }
  *out = m;
  return OD_OK;
}
