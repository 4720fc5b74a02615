/* loaders/manifest_internal.h: what loaders/manifest.c (the schema walk) and
 * loaders/manifest_json.c (JSON diagnostics: value descriptions, key suggestions, syntax errors,
 * --set overrides) share. Not a public API. */
#ifndef OD_MANIFEST_INTERNAL_H
#define OD_MANIFEST_INTERNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "runtime/status.h"

/* The keys an object takes; sub is the schema of an object value (or of each object in an array). */
struct od_mf_schema;
struct od_mf_field {
  const char *key;
  const struct od_mf_schema *sub;
};
struct od_mf_schema {
  const char *where;                /* its JSON path, for "it belongs in ..." hints */
  const struct od_mf_field *fields; /* ends with {NULL, NULL} */
};

/* One parse: names for messages and the overrides. */
struct od_mf_ctx {
  const char *name;        /* the manifest, as the user named it */
  const char *dir;         /* absolute folder relative paths start from */
  const char *const *sets; /* the overrides, "key=value" */
  int n_sets;
  struct od_err *err;
};

const struct od_mf_field *od_mf_find_field(const struct od_mf_schema *sc, const char *key);

/* The closest of names[0..n) to s (edit distance within a third of the length, or a prefix), or NULL. */
const char *od_mf_closest(const char *s, const char *const *names, int n);

/* "a, b, c" into out. */
void od_mf_list_names(char *out, size_t n, const char *const *names, int count);

/* For an unknown key of sc: "; did you mean 'steps'?", "; it belongs in train.optimizer" (a key
 * of another schema under top) or "; expected one of ...". */
void od_mf_key_hint(const struct od_mf_schema *top, const struct od_mf_schema *sc, const char *key, char *out,
                    size_t n);

/* How a value reads after "got": string "100", 1.5, true, null, an array, an object. */
const char *od_mf_describe(const cJSON *v, char *buf, size_t n);

/* base.key (key alone when base is empty) into out. */
void od_mf_sub_path(char *out, size_t n, const char *base, const char *key);

/* The message for a cJSON parse failure at `at` in text[0..len): line, column, what is near, and
 * a hint (trailing comma, missing comma, comment, quotes, unclosed bracket). */
enum od_status od_mf_syntax_error(struct od_mf_ctx *c, const char *text, size_t len, const char *at);

/* Applies one "key=value" override to root (top: the schema of the top level). The value is JSON
 * when it parses, else a string; null deletes. Errors name the override. */
enum od_status od_mf_apply_set(struct od_mf_ctx *c, const struct od_mf_schema *top, cJSON *root, const char *set);

#endif
