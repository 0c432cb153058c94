/* configimpl.h: the config component's private header (config.h is the
 * public one): the struct, and what its files share. */
#ifndef RESNODE_CONFIGIMPL_H
#define RESNODE_CONFIGIMPL_H

#include "resnode/core/config.h"

#include <libconfig.h>

#define RN_MAX_KEYS 1024
#define RN_KEY_LEN RN_CONFIG_KEY_LEN
/* a --set longer than this is echoed shortened in messages */
#define RN_SET_ECHO_MAX 200
#define RN_MAX_CONFIG_FILES 32 /* files in one composition (@include) */

struct RnConfig_s {
  MPI_Comm comm;
  config_t lc;
  char source[PETSC_MAX_PATH_LEN]; /* file name (or "<embedded default>") */
  char dir[PETSC_MAX_PATH_LEN];
  /* keys asked for by getters: the known keys for did-you-mean */
  char (*known)[RN_KEY_LEN];
  int nknown;
  PetscBool *defaulted; /* per known key: absent, its default taken */
  /* keys set from the command line, with the argument that set them */
  char (*set_keys)[RN_KEY_LEN];
  char (*set_args)[RN_KEY_LEN * 2];
  int nset;
  PetscBool reporting; /* an error is being reported: no typo scan inside it */
  /* the files read (the config and its @include bases), for the manifest; a
   * setting's source file points into this array */
  struct {
    char path[PETSC_MAX_PATH_LEN];
    uint64_t checksum;
  } files[RN_MAX_CONFIG_FILES];
  int nfiles;
  /* the keys read, described (RnConfigKeyDescribe) */
  struct RnConfigKeyDoc {
    char key[RN_KEY_LEN], type[24], def[200], range[400];
  } *docs;
  int ndocs;
  PetscBool describing; /* describe only: required keys and paths are not checked */
  RnKeyMeaningFn meaning; /* a key's meaning for messages, or NULL */
  void *meaning_ctx;
};

/* config.c: a string or comment starting at *p is skipped: *p is left on its
 * last character and its newlines counted into *line; returns 1, 0 when none
 * starts there, -1 when the text ends inside it */
int RnConfig_SkipStringOrComment(const char **p, int *line);
/* The line of the first string holding a \x00 escape (libconfig would cut the
 * string there, silently), or 0. */
int RnConfig_NulEscapeLine(const char *text);
/* config_include.c: the value of src into dst (of src's type), elements
 * recursively; a file given: the settings keep src's line and name the file.
 * 0, or -1 when an element cannot be added (mixed types in an array) */
int RnConfig_CopyValue(config_setting_t *dst, const config_setting_t *src, const char *file);
/* config.c: the line of an integer literal libconfig would wrap modulo 2^32, or 0 */
int RnConfig_WrappingIntegerLine(const char *text, char *literal, size_t len);
/* config.c: "FILE:LINE" or "--set k=v", where key comes from */
void RnConfig_Where(RnConfig cfg, const char *key, config_setting_t *s, char *buf, size_t len);
PetscBool RnConfig_SetFromCommandLine(RnConfig cfg, const char *key);
/* config.c: key was asked for (a known key, for did-you-mean); it took its default */
void RnConfig_Remember(RnConfig cfg, const char *key);
void RnConfig_MarkDefault(RnConfig cfg, const char *key);
/* config_set.c: key and its parent groups created with the type given */
PetscErrorCode RnConfig_CreateSetting(RnConfig cfg, const char *key, int type, config_setting_t **out);
/* config_get.c: record key's description (the last getter to read a key sets it) */
void RnConfig_Describe(RnConfig cfg, const char *key, const char *type, const char *def, const char *range);
/* config_get.c: " (key: its meaning)" for a message, or "" */
void RnConfig_MeaningNote(RnConfig cfg, const char *key, char *note, size_t len);
/* config_get.c: "an integer", "a string", ... */
const char *RnConfig_TypeName(int type);
/* config_suggest.c: did-you-mean for a key that is absent; unknown keys reported (typos_only: only near misses) */
void RnConfig_MissingHint(RnConfig cfg, const char *key, char *hint, size_t len);
PetscErrorCode RnConfig_CheckUnusedIn(RnConfig cfg, config_setting_t *group, PetscBool typos_only);

/* config_write.c: every scalar of a tree as "path = value" lines */
void RnConfig_Flatten(FILE *fp, config_setting_t *s, const char *path);

/* text, or its start and its length where it is longer than RN_SET_ECHO_MAX */
void RnConfig_Shorten(const char *text, char *out, size_t len);

/* An error where a group on key's path is a value ("data = 5;" when data.dir is asked for). */
PetscErrorCode RnConfig_CheckParents(RnConfig cfg, const char *key);

#endif
