/* loaders/manifest_json.c: the JSON side of the manifest parser (see manifest_internal.h): how a
 * value reads in a message, suggestions for unknown keys (edit distance, synonyms from other
 * tools, the section a key belongs in), syntax errors with line, column and a hint, and the
 * --set overrides, applied to the cJSON tree before the schema walk in loaders/manifest.c. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/manifest_internal.h"

#define PATH_MAX_LEN 256

static enum od_status oom(struct od_mf_ctx *c) { return od_err_set(c->err, OD_ERR_OOM, "%s: out of memory", c->name); }

__attribute__((format(printf, 2, 3))) static enum od_status fail_text(struct od_mf_ctx *c, const char *fmt, ...) {
  char msg[OD_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return od_err_set(c->err, OD_ERR_INVALID_ARG, "%s: %s", c->name, msg);
}

/* ---- suggestions ------------------------------------------------------------------------------- */

/* Names other tools use for our keys (PaddleDetection, PyTorch, mmengine). */
/* clang-format off */
static const char *const key_synonyms[][2] = {
    {"learning_rate", "lr"}, {"base_lr", "lr"}, {"epochs", "steps"}, {"max_iters", "steps"}, {"iters", "steps"},
    {"iterations", "steps"}, {"batch", "batch_size"}, {"bs", "batch_size"}, {"decay", "weight_decay"},
    {"wd", "weight_decay"}, {"loss_weight", "weight"}, {"tau", "temperature"}, {"T", "temperature"},
    {"scheduler", "schedule"}, {"lr_scheduler", "schedule"}, {"optim", "optimizer"}, {"num_workers", "workers"},
    {"dataset", "data"}, {"grad_clip", "clip_grad_norm"}, {"max_norm", "clip_grad_norm"}, {"path", "model"},
    {"warmup", "warmup_steps"}, {"warmup_iters", "warmup_steps"}, {"output", "export"},
};
/* clang-format on */

const struct od_mf_field *od_mf_find_field(const struct od_mf_schema *sc, const char *key) {
  for (const struct od_mf_field *f = sc->fields; f->key; f++)
    if (!strcmp(f->key, key)) return f;
  return NULL;
}

/* Optimal string alignment distance (edits, with adjacent transpositions), case-insensitive. */
static int edit_distance(const char *a, const char *b) {
  enum { N = 48 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= N || lb >= N) return 99;
  int d[N][N];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
      int v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb];
}

/* Close: within a third of the length (at least 1 edit), or one a prefix of the other (3+ characters). */
const char *od_mf_closest(const char *s, const char *const *names, int n) {
  const char *best = NULL;
  int best_d = 99;
  size_t ls = strlen(s);
  for (int i = 0; i < n; i++) {
    size_t ln = strlen(names[i]);
    int d = edit_distance(s, names[i]);
    int limit = (int)((ls < ln ? ls : ln) / 3);
    if (limit < 1) limit = 1;
    bool prefix = ls >= 3 && ln >= 3 && (!strncmp(s, names[i], ls < ln ? ls : ln));
    if ((d <= limit || prefix) && d < best_d) best = names[i], best_d = d;
  }
  return best;
}

void od_mf_list_names(char *out, size_t n, const char *const *names, int count) {
  size_t k = 0;
  out[0] = '\0';
  for (int i = 0; i < count && k < n; i++) k += (size_t)snprintf(out + k, n - k, "%s%s", i ? ", " : "", names[i]);
}

/* Appends the paths of the schemas under sc (sc included) that take key, other than skip. */
static size_t owners(const struct od_mf_schema *sc, const struct od_mf_schema *skip, const char *key, char *out,
                     size_t n, size_t k) {
  if (sc != skip && od_mf_find_field(sc, key) && k < n)
    k += (size_t)snprintf(out + k, n - k, "%s%s", k ? " or " : "", sc->where);
  for (const struct od_mf_field *f = sc->fields; f->key; f++)
    if (f->sub) k = owners(f->sub, skip, key, out, n, k);
  return k;
}

void od_mf_key_hint(const struct od_mf_schema *top, const struct od_mf_schema *sc, const char *key, char *out,
                    size_t n) {
  for (size_t i = 0; i < sizeof key_synonyms / sizeof key_synonyms[0]; i++)
    if (!strcmp(key, key_synonyms[i][0]) && od_mf_find_field(sc, key_synonyms[i][1])) {
      snprintf(out, n, "; did you mean '%s'?", key_synonyms[i][1]);
      return;
    }
  char where[256] = "";
  if (owners(top, sc, key, where, sizeof where, 0)) {
    snprintf(out, n, "; it belongs in %s", where);
    return;
  }
  const char *names[32] = {0};
  int count = 0;
  for (const struct od_mf_field *f = sc->fields; f->key && count < 32; f++) names[count++] = f->key;
  const char *best = od_mf_closest(key, names, count);
  if (best) {
    snprintf(out, n, "; did you mean '%s'?", best);
    return;
  }
  char list[512];
  od_mf_list_names(list, sizeof list, names, count);
  snprintf(out, n, "; expected one of %s", list);
}

static void fmt_num(double d, char *buf, size_t n) {
  if (d == floor(d) && fabs(d) < 1e15)
    snprintf(buf, n, "%.0f", d);
  else
    snprintf(buf, n, "%.15g", d);
}

/* How a value reads in "got ...": string "100", 1.5, true, null, an array, an object. */
const char *od_mf_describe(const cJSON *v, char *buf, size_t n) {
  if (cJSON_IsString(v)) {
    size_t len = strlen(v->valuestring);
    snprintf(buf, n, "string \"%.40s%s\"", v->valuestring, len > 40 ? "..." : "");
  } else if (cJSON_IsNumber(v))
    fmt_num(v->valuedouble, buf, n);
  else if (cJSON_IsTrue(v))
    snprintf(buf, n, "true");
  else if (cJSON_IsFalse(v))
    snprintf(buf, n, "false");
  else if (cJSON_IsNull(v))
    snprintf(buf, n, "null");
  else if (cJSON_IsArray(v))
    snprintf(buf, n, "an array");
  else
    snprintf(buf, n, "an object");
  return buf;
}

void od_mf_sub_path(char *out, size_t n, const char *base, const char *key) {
  if (snprintf(out, n, "%s%s%s", base, *base ? "." : "", key) >= (int)n) out[n - 1] = '\0';
}

/* ---- syntax errors ----------------------------------------------------------------------------- */

/* The bracket depth and string state after text[0..upto). */
struct scan {
  int depth;
  bool in_str;
  size_t str_start; /* where the open string began */
};

static void scan_to(const char *text, size_t upto, struct scan *sc) {
  *sc = (struct scan){0};
  for (size_t i = 0; i < upto; i++) {
    char ch = text[i];
    if (sc->in_str) {
      if (ch == '\\')
        i++;
      else if (ch == '"')
        sc->in_str = false;
    } else if (ch == '"')
      sc->in_str = true, sc->str_start = i;
    else if (ch == '{' || ch == '[')
      sc->depth++;
    else if (ch == '}' || ch == ']')
      sc->depth--;
  }
}

static size_t prev_nonspace(const char *text, size_t pos) {
  while (pos && isspace((unsigned char)text[pos - 1])) pos--;
  return pos; /* text[pos - 1] is it, or pos == 0 */
}

enum od_status od_mf_syntax_error(struct od_mf_ctx *c, const char *text, size_t len, const char *at) {
  size_t pos = at && at >= text ? (size_t)(at - text) : 0;
  if (pos > len) pos = len;
  size_t end = prev_nonspace(text, len);
  if (end == 0) return fail_text(c, "the file is empty; expected a JSON object");
  const char *hint = "";
  struct scan sc, whole;
  scan_to(text, pos, &sc);
  scan_to(text, len, &whole);
  if (sc.in_str) { /* cJSON stops inside a string that is not closed, or at a bad escape */
    size_t q = sc.str_start + 1;
    while (q < len && text[q] != '\n' && text[q] != '"') q += text[q] == '\\' ? 2 : 1;
    if (q >= len || text[q] != '"') {
      pos = sc.str_start;
      hint = " (a string without its closing quote on this line)";
    } else {
      hint = " (an invalid escape sequence in a string)";
    }
  } else if (pos && !isspace((unsigned char)text[pos - 1]) && text[pos - 1] != '"') {
    /* a key that fails is reported one character past its start */
    size_t b = prev_nonspace(text, pos - 1);
    if (b && (text[b - 1] == '{' || text[b - 1] == ',')) pos--;
  }
  int line = 1, col = 1;
  bool at_end = !sc.in_str && whole.depth > 0 && pos + 1 >= end;
  for (size_t i = 0; i < (at_end ? end : pos); i++) {
    if (text[i] == '\n')
      line++, col = 1;
    else if ((text[i] & 0xC0) != 0x80)
      col++;
  }
  if (at_end)
    return fail_text(c, "line %d, column %d: invalid JSON: the file ends inside an object or array (a missing } or ])",
                     line, col);
  if (pos >= end) pos = end - 1;
  size_t b = prev_nonspace(text, pos);
  char prev = b ? text[b - 1] : '\0', cur = text[pos];
  char word[16] = "";
  for (size_t i = 0; i < sizeof word - 1 && pos + i < len && isalpha((unsigned char)text[pos + i]); i++) {
    word[i] = text[pos + i];
    word[i + 1] = '\0';
  }
  struct scan here;
  scan_to(text, pos, &here);
  if (*hint) {
  } else if (here.depth == 0 && b)
    hint = " (text after the end of the top-level object)";
  else if (prev == ',' && (cur == '}' || cur == ']'))
    hint = " (a trailing comma: JSON allows none before } or ])";
  else if (cur == '/' && pos + 1 < len && (text[pos + 1] == '/' || text[pos + 1] == '*'))
    hint = " (JSON has no comments; use a key starting with '_', e.g. \"_comment\": \"...\")";
  else if (cur == '\'')
    hint = " (JSON strings take double quotes)";
  else if (!strcmp(word, "True") || !strcmp(word, "False") || !strcmp(word, "None"))
    hint = " (JSON spells true, false and null in lower case)";
  else if (!strcmp(word, "NaN") || !strcmp(word, "Infinity"))
    hint = " (JSON has no NaN or Infinity)";
  else if ((isalpha((unsigned char)cur) || cur == '_') && (prev == '{' || prev == ','))
    hint = " (keys take double quotes)";
  else if (isalpha((unsigned char)cur))
    hint = " (strings take double quotes)";
  else if (cur == '"' &&
           (prev == '"' || prev == '}' || prev == ']' || prev == 'e' || prev == 'l' || isdigit((unsigned char)prev)))
    hint = " (a missing comma before this?)";
  else if (prev == '"')
    hint = " (a missing ':' or ',' before this?)";
  char near[32];
  size_t k = 0;
  for (size_t i = pos; i < len && text[i] != '\n' && text[i] != '\r' && k < 24; i++) near[k++] = text[i];
  near[k] = '\0';
  return fail_text(c, "line %d, column %d: invalid JSON near '%s'%s", line, col, near, hint);
}

/* ---- --set overrides --------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static enum od_status fail_set(struct od_mf_ctx *c, const char *set,
                                                                     const char *fmt, ...) {
  char msg[OD_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return od_err_set(c->err, OD_ERR_INVALID_ARG, "%s: --set %s: %s", c->name, set, msg);
}

/* Puts value (owned; NULL-valued JSON null deletes) under key of obj. */
static void put_key(cJSON *obj, const char *key, cJSON *value) {
  if (cJSON_IsNull(value)) {
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_Delete(value);
  } else if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
    cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value);
  } else {
    cJSON_AddItemToObject(obj, key, value);
  }
}

/* Walks key (a.b[i].c) from root, creating what is missing, and stores value there. */
static enum od_status apply_path(struct od_mf_ctx *c, const struct od_mf_schema *top, const char *set, const char *key,
                                 cJSON *root, cJSON *value) {
  char got[96], path[PATH_MAX_LEN] = "";
  cJSON *cur = root;
  const struct od_mf_schema *sc = top;
  const char *q = key;
  for (;;) {
    char name[64];
    size_t n = 0;
    while (isalnum((unsigned char)q[n]) || q[n] == '_' || q[n] == '-') n++;
    if (n == 0 || n >= sizeof name)
      return fail_set(c, set, "expected a key name at '%s' (keys look like train.steps or pairs[0].weight)", q);
    memcpy(name, q, n);
    name[n] = '\0';
    q += n;
    const struct od_mf_field *f = NULL;
    if (sc && name[0] != '_' && !(f = od_mf_find_field(sc, name))) {
      char hint[600];
      od_mf_key_hint(top, sc, name, hint, sizeof hint);
      if (*path) return fail_set(c, set, "unknown key '%s' in %s%s", name, path, hint);
      return fail_set(c, set, "unknown key '%s' at the top level%s", name, hint);
    }
    char np[PATH_MAX_LEN];
    od_mf_sub_path(np, sizeof np, path, name);
    snprintf(path, sizeof path, "%s", np);
    long idx[8];
    int n_idx = 0;
    while (*q == '[') {
      char *e;
      long i = strtol(q + 1, &e, 10);
      if (e == q + 1 || *e != ']' || i < 0 || !isdigit((unsigned char)q[1]))
        return fail_set(c, set, "expected [index] with a non-negative integer after %s", path);
      if (n_idx == 8) return fail_set(c, set, "too many indices after %s", path);
      idx[n_idx++] = i;
      q = e + 1;
    }
    bool last = *q == '\0';
    if (!last && *q != '.') return fail_set(c, set, "unexpected '%c' after %s", *q, path);
    cJSON *child = cJSON_GetObjectItemCaseSensitive(cur, name);
    if (last && !n_idx) {
      put_key(cur, name, value);
      return OD_OK;
    }
    if (!n_idx) { /* descend into an object */
      if (f && !f->sub) return fail_set(c, set, "%s takes a value, not keys", path);
      if (!child) {
        if (!(child = cJSON_CreateObject())) return oom(c);
        cJSON_AddItemToObject(cur, name, child);
      } else if (!cJSON_IsObject(child)) {
        return fail_set(c, set, "%s is %s, not an object", path, od_mf_describe(child, got, sizeof got));
      }
    } else {
      if (!last && f && !f->sub) return fail_set(c, set, "the entries of %s take no keys", path);
      if (!child) {
        if (!(child = cJSON_CreateArray())) return oom(c);
        cJSON_AddItemToObject(cur, name, child);
      } else if (!cJSON_IsArray(child)) {
        return fail_set(c, set, "%s is %s, not an array", path, od_mf_describe(child, got, sizeof got));
      }
      for (int k = 0; k < n_idx; k++) {
        int size = cJSON_GetArraySize(child);
        bool final = last && k == n_idx - 1, more = k < n_idx - 1;
        if (idx[k] > size || (idx[k] == size && final && cJSON_IsNull(value)))
          return fail_set(c, set, "index %ld is out of range: %s has %d entr%s", idx[k], path, size,
                          size == 1 ? "y" : "ies");
        if (final) {
          if (idx[k] == size)
            cJSON_AddItemToArray(child, value);
          else if (cJSON_IsNull(value)) {
            cJSON_DeleteItemFromArray(child, (int)idx[k]);
            cJSON_Delete(value);
          } else
            cJSON_ReplaceItemInArray(child, (int)idx[k], value);
          return OD_OK;
        }
        cJSON *e = idx[k] < size ? cJSON_GetArrayItem(child, (int)idx[k]) : NULL;
        if (!e) {
          if (!(e = more ? cJSON_CreateArray() : cJSON_CreateObject())) return oom(c);
          cJSON_AddItemToArray(child, e);
        } else if (more ? !cJSON_IsArray(e) : !cJSON_IsObject(e)) {
          return fail_set(c, set, "%s[%ld] is %s, not an %s", path, idx[k], od_mf_describe(e, got, sizeof got),
                          more ? "array" : "object");
        }
        size_t len = strlen(path);
        snprintf(path + len, sizeof path - len, "[%ld]", idx[k]);
        child = e;
      }
    }
    cur = child;
    sc = f ? f->sub : NULL; /* below a '_' comment key anything goes */
    q++;
  }
}

enum od_status od_mf_apply_set(struct od_mf_ctx *c, const struct od_mf_schema *top, cJSON *root, const char *set) {
  const char *eq = strchr(set, '=');
  if (!eq || eq == set) return fail_set(c, set, "expected key=value, e.g. train.steps=100");
  char key[PATH_MAX_LEN];
  size_t klen = (size_t)(eq - set);
  if (klen >= sizeof key) return fail_set(c, set, "the key is too long");
  memcpy(key, set, klen);
  key[klen] = '\0';
  /* the value is JSON when it parses as JSON, else a bare string */
  cJSON *value = cJSON_ParseWithOpts(eq + 1, NULL, 1);
  if (!value && !(value = cJSON_CreateString(eq + 1))) return oom(c);
  enum od_status st = apply_path(c, top, set, key, root, value);
  if (st != OD_OK) cJSON_Delete(value); /* every failure happens before value is attached */
  return st;
}
