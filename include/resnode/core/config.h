/* config.h: configuration files (libconfig syntax) with every key validated.
 *
 * A program reads all its keys through the getters below (each names the
 * key, its default, and its range); a key missing from the file gets its
 * default, which is also written into the tree, so RnConfigWrite produces the
 * resolved configuration of the run. After the last getter,
 * RnConfigCheckUnused reports any key in the file that nobody asked for (with
 * a did-you-mean). Every error is an input error (RN_ERR_INPUT, raised on the
 * config's communicator, where every rank parses the same file) and reads
 *     FILE:LINE: key: what is wrong; what was expected
 * or, for a command-line override, "--set key=value: key: ...". */
#ifndef RESNODE_CONFIG_H
#define RESNODE_CONFIG_H

#include "resnode/core/core.h"

typedef struct RnConfig_s *RnConfig;

/* The longest key (with its dots and list indices). */
#define RN_CONFIG_KEY_LEN 160

/* Marker for "no default: the key is required". */
#define RN_REQUIRED NULL

PetscErrorCode RnConfigCreate(MPI_Comm comm, RnConfig *cfg);
/* Parse a file (syntax errors: FILE:LINE: message). Its top-level
 * `@include "PATH"` lines name bases (PATH absolute or relative to the
 * including file): their keys come first, then the file's own override them
 * key by key (groups merge member by member; other values replace), then
 * --set (RnConfigSet). */
PetscErrorCode RnConfigLoadFile(RnConfig cfg, const char *path);
/* The files RnConfigLoadFile read (the config and its bases, in the order
 * read), each with its FNV-1a checksum (checksum.h): the manifest lists them. */
int RnConfigFileCount(RnConfig cfg);
const char *RnConfigFile(RnConfig cfg, int i, uint64_t *checksum);
/* Parse text compiled into the binary (embedded defaults); name is used in messages. */
PetscErrorCode RnConfigLoadString(RnConfig cfg, const char *name, const char *text);
/* Apply "key=value" (value in libconfig syntax: 1, 1.5, "text", true, [1,2], (..)).
 * Creates the key, or replaces its value. */
PetscErrorCode RnConfigSet(RnConfig cfg, const char *assignment);
/* Set key to the string value as it is (no parsing: any bytes but NUL, such
 * as a path with quotes); recorded as a --set. */
PetscErrorCode RnConfigSetString(RnConfig cfg, const char *key, const char *value);
/* The directory of the loaded file ("." for strings): relative paths in the
 * config are resolved against it. */
const char *RnConfigDirectory(RnConfig cfg);
const char *RnConfigSourceName(RnConfig cfg);
/* The communicator whose ranks all read this config (errors are raised on it). */
MPI_Comm RnConfigComm(RnConfig cfg);

/* Getters. `def` is used when the key is absent; pass RN_REQUIRED (for
 * pointers) or use the *Required variants to make a key mandatory. Ranges are
 * inclusive. */
PetscErrorCode RnConfigGetInt(RnConfig cfg, const char *key, int def, int min, int max, int *value);
PetscErrorCode RnConfigGetInt64(RnConfig cfg, const char *key, long long def, long long min, long long max, long long *value);
PetscErrorCode RnConfigGetReal(RnConfig cfg, const char *key, double def, double min, double max, double *value);
PetscErrorCode RnConfigGetBool(RnConfig cfg, const char *key, PetscBool def, PetscBool *value);
PetscErrorCode RnConfigGetString(RnConfig cfg, const char *key, const char *def, char *value, size_t len);
/* A string out of a NULL-terminated list of choices; *index is its position. */
PetscErrorCode RnConfigGetChoice(RnConfig cfg, const char *key, const char *def, const char *const choices[], int *index);
/* A path; relative paths are taken relative to the config file's directory.
 * must_exist: 0 no check, 1 a readable file, 2 a directory. */
PetscErrorCode RnConfigGetPath(RnConfig cfg, const char *key, const char *def, int must_exist, char *value, size_t len);
/* Arrays/lists of numbers: [1, 2, 3]. At most maxn entries; n returns the count. */
PetscErrorCode RnConfigGetIntArray(RnConfig cfg, const char *key, int ndef, const int *def, int min, int max, int minn, int maxn, int *n, int *values);
PetscErrorCode RnConfigGetRealArray(RnConfig cfg, const char *key, int ndef, const double *def, double min, double max, int minn, int maxn, int *n, double *values);
/* Number of elements of a list or group (0 when absent). For lists of groups
 * such as model.layers = ({...}, {...}); elements are then addressed as
 * "model.layers.[0].type". */
PetscErrorCode RnConfigGetLength(RnConfig cfg, const char *key, int *n);
PetscBool RnConfigHas(RnConfig cfg, const char *key);
/* Whether key is set to a string (a key that takes a number or a word, such as parallel.groups = "auto"). */
PetscBool RnConfigIsString(RnConfig cfg, const char *key);
/* An input error at a key ("FILE:LINE: key: <message>"), for checks that
 * involve several keys. */
PetscErrorCode RnConfigError(RnConfig cfg, const char *key, const char *fmt, ...) PETSC_ATTRIBUTE_FORMAT(3, 4);

/* The keys the getters read, described: each getter records its key's type,
 * default and range as it validates it, so a reference made from these
 * records (resnode-mpi --keys) cannot disagree with the validator. In
 * describing mode the getters only describe: a required key is not an error
 * (it reads as empty, or as the first choice) and paths are not checked, so
 * an experiment's options can be read from an empty config. List indices are
 * written "[i]" (model.field.[i].type). */
void RnConfigSetDescribing(RnConfig cfg, PetscBool describing);
/* Whether the getters only describe (then no input, such as a data file, is checked). */
PetscBool RnConfigDescribing(RnConfig cfg);
/* The one-line meaning of a key (NULL: none), shown in the messages about
 * it: a did-you-mean, a missing key. The app layer holds the meanings. */
typedef const char *(*RnKeyMeaningFn)(const char *key, void *ctx);
void RnConfigSetMeanings(RnConfig cfg, RnKeyMeaningFn meaning, void *ctx);
int RnConfigKeyCount(RnConfig cfg);
/* The i-th key read (in the order first read): its type ("integer", "number",
 * "bool", "string", "choice", "path", "integer array", "number array",
 * "list"), default as config text ("required" when it has none) and range
 * ("[1, 1000]", the choices, or ""). */
void RnConfigKeyDescribe(RnConfig cfg, int i, const char **key, const char **type, const char **def, const char **range);

/* Error if the file holds keys no getter asked for. */
PetscErrorCode RnConfigCheckUnused(RnConfig cfg);
/* Write the resolved configuration (rank 0 of the communicator). */
PetscErrorCode RnConfigWrite(RnConfig cfg, const char *path);
/* The same text on fp (rank 0). */
PetscErrorCode RnConfigPrint(RnConfig cfg, FILE *fp);
/* The value of key as config text on one line ("" when absent). */
PetscErrorCode RnConfigValueText(RnConfig cfg, const char *key, char *text, size_t len);
/* Compares the config with one RnConfigWrite wrote to path, ignoring the keys
 * (and groups) of may_change (NULL-terminated): *ndiff differences, listed
 * in diff ("train.lr was 0.01, now 0.02; ..."); *ndiff = -1 with the reason
 * when path cannot be read. Not collective. */
PetscErrorCode RnConfigCompareFile(RnConfig cfg, const char *path, const char *const *may_change, char *diff, size_t len, int *ndiff);
PetscErrorCode RnConfigDestroy(RnConfig *cfg);

/* Walking a config's tree (a study's axes: app/study.c). The kind of the
 * value at key; its element or member count; a group's i-th member's name. */
typedef enum { RN_CONFIG_ABSENT, RN_CONFIG_SCALAR, RN_CONFIG_ARRAY, RN_CONFIG_LIST, RN_CONFIG_GROUP } RnConfigKind;
RnConfigKind RnConfigKindOf(RnConfig cfg, const char *key);
int RnConfigCount(RnConfig cfg, const char *key);
const char *RnConfigMemberName(RnConfig cfg, const char *key, int i);
/* "FILE:LINE" of key's setting (or of the group that would hold it). */
void RnConfigWhere(RnConfig cfg, const char *key, char *buf, size_t len);
/* Removes key (and all it holds); nothing when absent. */
PetscErrorCode RnConfigRemove(RnConfig cfg, const char *key);
/* key set to the value of from_key in `from` (another config read from the
 * same files), keeping its file and line: the getters' messages about key
 * name where the value was written, as for a value in the config itself. */
PetscErrorCode RnConfigSetFrom(RnConfig cfg, const char *key, RnConfig from, const char *from_key);
/* FNV-1a of the resolved configuration as "key = value" lines, leaving out
 * the keys (and groups) of exclude (NULL-terminated): the identity of a run's
 * configuration, whatever the file's layout or comments. */
PetscErrorCode RnConfigHash(RnConfig cfg, const char *const *exclude, uint64_t *hash);

/* The edit distance of two strings (did-you-mean); large for long ones. */
int RnEditDistance(const char *a, const char *b);

#endif
