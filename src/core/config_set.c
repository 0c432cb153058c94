/* config_set.c: --set key=value, typed by the key's value. */
#include "configimpl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates key (and its parent groups) with the given type, replacing an
 * existing setting of another type. */
PetscErrorCode RnConfig_CreateSetting(RnConfig cfg, const char *key, int type, config_setting_t **out)
{
  char path[RN_KEY_LEN], *name;
  config_setting_t *parent = config_root_setting(&cfg->lc), *s;

  PetscFunctionBeginUser;
  /* "train = 5;" where train.lr is asked for: say so, do not replace it */
  PetscCall(RnConfig_CheckParents(cfg, key));
  PetscCall(PetscStrncpy(path, key, sizeof path));
  name = path;
  for (char *dot = strchr(name, '.'); dot; dot = strchr(name, '.')) {
    config_setting_t *child;
    *dot = 0;
    if (name[0] == '[') {
      int index = atoi(name + 1);
      child = config_setting_get_elem(parent, (unsigned)index);
    } else {
      child = config_setting_get_member(parent, name);
      if (!child) child = config_setting_add(parent, name, CONFIG_TYPE_GROUP);
    }
    RnInputCheck(child, cfg->comm, "%s: cannot create '%s' here (is a parent a list or a value?)", key, name);
    parent = child;
    name = dot + 1;
  }
  s = config_setting_get_member(parent, name);
  /* a new value replaces an old one: aggregates are not merged */
  if (s && (config_setting_type(s) != type || config_setting_is_aggregate(s))) {
    config_setting_remove(parent, name);
    s = NULL;
  }
  if (!s) s = config_setting_add(parent, name, type);
  RnInputCheck(s, cfg->comm, "%s: cannot create the setting", key);
  *out = s;
  PetscFunctionReturn(0);
}

/* Where a setting came from, " (FILE:LINE)", or "" for a --set. */
static void SourceOf(const config_setting_t *s, char *buf, size_t len)
{
  const char *file = config_setting_source_file(s);
  if (file) snprintf(buf, len, " (%s:%d)", file, config_setting_source_line(s));
  else snprintf(buf, len, " (from a --set)");
}

/* The setting a --set of key writes: the path's existing groups are walked
 * (a value on the way, or an element [i] that is not there or not of the
 * value's kind, is the --set's error, not the file's), the rest created. */
static PetscErrorCode SetTarget(RnConfig cfg, const char *key, int type, const char *echo, config_setting_t **out)
{
  char path[RN_KEY_LEN], *name, from[PETSC_MAX_PATH_LEN + 32];
  config_setting_t *parent = config_root_setting(&cfg->lc);

  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(path, key, sizeof path));
  name = path;
  for (char *dot = strchr(name, '.'); dot && parent; dot = strchr(name, '.')) {
    config_setting_t *child;
    *dot = 0;
    child = name[0] == '[' ? config_setting_get_elem(parent, (unsigned)atoi(name + 1)) : config_setting_get_member(parent, name);
    if (!child && name[0] == '[') {
      SourceOf(parent, from, sizeof from);
      RnInputError(cfg->comm, "--set %s: %.*s has %d element%s%s: %s is not one of them", echo, (int)(name - path - 1), key, config_setting_length(parent), config_setting_length(parent) == 1 ? "" : "s", from, name);
    }
    if (child && !config_setting_is_group(child) && !(config_setting_is_aggregate(child) && dot[1] == '[')) {
      SourceOf(child, from, sizeof from);
      RnInputError(cfg->comm, "--set %s: %.*s is %s%s, not a group { ... }: no key %s inside it", echo, (int)(dot - path), key, RnConfig_TypeName(config_setting_type(child)), from, key);
    }
    parent = child;
    name = dot + 1;
  }
  if (!parent && strchr(key, '['))
    RnInputError(cfg->comm, "--set %s: %.*s is not in the config (it takes its default), so it has no elements to set: give it whole, e.g. --set '%.*s=[...]'", echo,
                 (int)(strchr(key, '[') - key - 1), key, (int)(strchr(key, '[') - key - 1), key);
  if (parent && name[0] == '[') {
    /* an element of an array or list: that element, replaced in place */
    const int index = atoi(name + 1), n = config_setting_length(parent);
    config_setting_t *elem = index >= 0 && index < n ? config_setting_get_elem(parent, (unsigned)index) : NULL;
    SourceOf(parent, from, sizeof from);
    if (!elem) RnInputError(cfg->comm, "--set %s: %.*s has %d element%s%s: [%d] is not one of them", echo, (int)(name - path - 1), key, n, n == 1 ? "" : "s", from, index);
    if (config_setting_type(elem) != type && !(config_setting_is_number(elem) && (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64 || type == CONFIG_TYPE_FLOAT)))
      RnInputError(cfg->comm, "--set %s: %s is %s%s, and the --set gives %s", echo, key, RnConfig_TypeName(config_setting_type(elem)), from, RnConfig_TypeName(type));
    *out = elem;
    PetscFunctionReturn(0);
  }
  PetscCall(RnConfig_CreateSetting(cfg, key, type, out));
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfig_CheckParents(RnConfig cfg, const char *key)
{
  char prefix[RN_KEY_LEN];

  PetscFunctionBeginUser;
  for (const char *dot = strchr(key, '.'); dot; dot = strchr(dot + 1, '.')) {
    config_setting_t *p;
    snprintf(prefix, sizeof prefix, "%.*s", (int)(dot - key), key);
    p = config_lookup(&cfg->lc, prefix);
    if (p && !config_setting_is_group(p) && !(config_setting_is_aggregate(p) && dot[1] == '['))
      PetscCall(RnConfigError(cfg, prefix, "expected a group { ... } holding %s, got %s", dot + 1, RnConfig_TypeName(config_setting_type(p))));
  }
  PetscFunctionReturn(0);
}

/* A value written without quotes that can only mean a string: letters,
 * digits and _ . / + - : (a solver name, a path), not starting like a number. */
static int BareWord(const char *v)
{
  if (!*v || isdigit((unsigned char)v[0]) || ((v[0] == '-' || v[0] == '+' || v[0] == '.') && isdigit((unsigned char)v[1]))) return 0;
  if (!strcmp(v, "true") || !strcmp(v, "false")) return 0;
  for (const char *c = v; *c; c++)
    if (!(isalnum((unsigned char)*c) || strchr("_./+-:", *c))) return 0;
  return 1;
}

void RnConfig_Shorten(const char *text, char *out, size_t len)
{
  const size_t n = strlen(text);
  if (n <= RN_SET_ECHO_MAX) snprintf(out, len, "%s", text);
  else snprintf(out, len, "%.*s... (%zu characters)", RN_SET_ECHO_MAX - 40, text, n);
}

/* the keys set from the command line, for messages that name the --set */
static void RememberSet(RnConfig cfg, const char *key, const char *assignment)
{
  if (cfg->nset >= RN_MAX_KEYS) return;
  snprintf(cfg->set_keys[cfg->nset], RN_KEY_LEN, "%s", key);
  snprintf(cfg->set_args[cfg->nset], RN_KEY_LEN * 2, "%s", assignment);
  cfg->nset++;
}

PetscErrorCode RnConfigSet(RnConfig cfg, const char *assignment)
{
  const char *eq = strchr(assignment, '=');
  char key[RN_KEY_LEN];
  config_t tmp;
  config_setting_t *value, *target, *parent;
  int type;
  char echo[RN_SET_ECHO_MAX + 64], value_echo[RN_SET_ECHO_MAX + 64];

  PetscFunctionBeginUser;
  /* a long --set is echoed shortened, so that the reason still fits the message */
  RnConfig_Shorten(assignment, echo, sizeof echo);
  RnConfig_Shorten(eq ? eq + 1 : "", value_echo, sizeof value_echo);
  RnInputCheck(eq && eq != assignment && eq[1], cfg->comm, "--set %s: expected key=value, e.g. --set train.lr=0.001", echo);
  RnInputCheck((size_t)(eq - assignment) < sizeof key, cfg->comm, "--set %s: the key is %d characters long, more than any key (at most %d)", echo, (int)(eq - assignment), RN_KEY_LEN - 1);
  memcpy(key, assignment, (size_t)(eq - assignment));
  key[eq - assignment] = 0;
  for (const char *c = key; *c; c++)
    RnInputCheck(isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-' || *c == '[' || *c == ']', cfg->comm, "--set %s: '%s' is not a key (letters, digits, _ and dots)", echo, key);
  {
    char literal[64];
    RnInputCheck(!RnConfig_WrappingIntegerLine(eq + 1, literal, sizeof literal), cfg->comm, "--set %s: the integer %s does not fit in 32 bits; check the value, or write %sL for a 64-bit one", echo, literal, literal);
  }
  RnInputCheck(!RnConfig_NulEscapeLine(eq + 1), cfg->comm, "--set %s: the string holds the escape \\x00 (a NUL byte), which would end it there: no key takes one", echo);
  /* parse the value with libconfig itself; a bare word (rk4, /data/cifar) is
   * a string: the getter of the key says whether a string is what it takes */
  {
    const size_t text_len = strlen(eq + 1) + 16;
    char *text, reason[256];
    int parsed;
    PetscCall(PetscMalloc1(text_len, &text));
    config_init(&tmp);
    snprintf(text, text_len, "v = %s;", eq + 1);
    parsed = config_read_string(&tmp, text) == CONFIG_TRUE;
    snprintf(reason, sizeof reason, "%s", parsed ? "" : config_error_text(&tmp));
    if (!parsed && BareWord(eq + 1)) {
      config_destroy(&tmp);
      config_init(&tmp);
      snprintf(text, text_len, "v = \"%s\";", eq + 1);
      parsed = config_read_string(&tmp, text) == CONFIG_TRUE;
    }
    PetscCall(PetscFree(text));
    if (!parsed) {
      const char first = eq[1];
      config_destroy(&tmp);
      /* the hint that fits what the value looks like (a quoted hint for a
       * list or a value with quotes would not parse either) */
      if (first == '[')
        RnInputError(cfg->comm, "--set %s: the array %s does not parse (libconfig: %s): an array [ ... ] holds numbers, or strings, or booleans, all of one kind", echo, value_echo, reason);
      if (first == '(' || first == '{') RnInputError(cfg->comm, "--set %s: the list %s does not parse (libconfig: %s)", echo, value_echo, reason);
      if (strchr(eq + 1, '"')) RnInputError(cfg->comm, "--set %s: the value %s does not parse (libconfig: %s); a string is one \"quoted string\"", echo, value_echo, reason);
      RnInputError(cfg->comm, "--set %s: the value '%s' is not a number, a \"quoted string\", true/false, [an array] or ( a list of groups ); for a string write --set '%s=\"%s\"'",
                   echo, value_echo, key, value_echo);
    }
  }
  /* one key a --set: "lr=0.5;seed=77" would set lr and drop seed */
  if (config_setting_length(config_root_setting(&tmp)) != 1) {
    config_destroy(&tmp);
    RnInputError(cfg->comm, "--set %s: one key=value a --set; give each of the others a --set of its own", echo);
  }
  value = config_lookup(&tmp, "v");
  type = config_setting_type(value);
  PetscCall(SetTarget(cfg, key, type, echo, &target));
  /* the parsed value, elements recursively; a --set names no file (an
   * integer into a number array's element is that number) */
  if (config_setting_type(target) == CONFIG_TYPE_FLOAT && type != CONFIG_TYPE_FLOAT) {
    const double v = type == CONFIG_TYPE_INT64 ? (double)config_setting_get_int64(value) : (double)config_setting_get_int(value);
    config_destroy(&tmp);
    RnInputCheck(config_setting_set_float(target, v) == CONFIG_TRUE, cfg->comm, "--set %s: cannot set the number", echo);
    RememberSet(cfg, key, echo);
    PetscFunctionReturn(0);
  }
  if (config_setting_type(target) != type && config_setting_is_number(target)) {
    config_destroy(&tmp);
    RnInputError(cfg->comm, "--set %s: %s holds integers, and the --set gives a number with a fraction", echo, key);
  }
  if (RnConfig_CopyValue(target, value, NULL)) {
    config_destroy(&tmp);
    RnInputError(cfg->comm, "--set %s: cannot copy the value (mixed types in an array?)", echo);
  }
  config_destroy(&tmp);
  (void)parent;
  RememberSet(cfg, key, echo);
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigSetString(RnConfig cfg, const char *key, const char *value)
{
  config_setting_t *target;
  char assignment[RN_KEY_LEN * 2];

  PetscFunctionBeginUser;
  PetscCall(RnConfig_CreateSetting(cfg, key, CONFIG_TYPE_STRING, &target));
  RnInputCheck(config_setting_set_string(target, value) == CONFIG_TRUE, cfg->comm, "%s: cannot set the string '%s'", key, value);
  snprintf(assignment, sizeof assignment, "%s=%s", key, value);
  RememberSet(cfg, key, assignment);
  PetscFunctionReturn(0);
}

