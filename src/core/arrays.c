/* arrays.c: the large arrays of a run directory in HDF5 (arrays.h). */
#include "resnode/core/arrays.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <string.h>

#define RN_ARRAYS_MAX_ITEMS    16    /* dimensions, variables and attributes of one file */
#define RN_ARRAYS_NAME_LEN     64
#define RN_ARRAYS_TEXT_LEN     1024
#define RN_ARRAYS_COORD_CHUNK  256   /* records of the record coordinate in a chunk */
#define RN_ARRAYS_MESSAGE_LEN  256
/* netCDF-4's mark of a dimension scale that is not a variable (its length follows) */
#define RN_NETCDF_DIM_ONLY "This is a netCDF dimension but not a netCDF variable."

const char *const RnArrayTypeNames[] = {"float64", "float32", NULL};

typedef struct {
  char name[RN_ARRAYS_NAME_LEN], long_name[RN_ARRAYS_TEXT_LEN];
  hsize_t length; /* 0: the record dimension */
  int *values;    /* the coordinate, or NULL */
} Dimension;

typedef struct {
  char name[RN_ARRAYS_NAME_LEN], long_name[RN_ARRAYS_TEXT_LEN];
  RnArrayType type;
  int ndims, dim[RN_ARRAYS_MAX_DIMS];
  hsize_t chunk[RN_ARRAYS_MAX_DIMS];
  hid_t dset; /* open between BeginRecord and EndRecord */
} Variable;

typedef enum { ATTR_STRING, ATTR_INTS, ATTR_DOUBLE } AttributeKind;
typedef struct {
  char name[RN_ARRAYS_NAME_LEN], text[RN_ARRAYS_TEXT_LEN];
  AttributeKind kind;
  int n, *ints;
  double value;
} Attribute;

struct RnArrays_s {
  MPI_Comm comm;
  int size, rank;
  char path[PETSC_MAX_PATH_LEN + 32], name[RN_ARRAYS_NAME_LEN];
  Dimension dims[RN_ARRAYS_MAX_ITEMS];
  Variable vars[RN_ARRAYS_MAX_ITEMS];
  Attribute attrs[RN_ARRAYS_MAX_ITEMS];
  int ndims, nvars, nattrs, record_dim; /* record_dim: its index in dims, or -1 */
  hid_t file, record_coord, dxpl;       /* open between BeginRecord and EndRecord */
  long long record;                     /* the record being written */
};

/* HDF5's innermost message (the walk goes downward: the last one seen), for
 * an error that says what HDF5 found */
static herr_t InnermostMessage(unsigned n, const H5E_error2_t *e, void *buf)
{
  if (e->desc && e->desc[0]) snprintf((char *)buf, RN_ARRAYS_MESSAGE_LEN, "%s", e->desc);
  return 0;
}

static const char *Hdf5Message(char *buf)
{
  buf[0] = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, InnermostMessage, buf);
  H5Eclear2(H5E_DEFAULT);
  if (!buf[0]) snprintf(buf, RN_ARRAYS_MESSAGE_LEN, "an HDF5 error");
  return buf;
}

/* an HDF5 call that fails is an error naming the file, what was done and what HDF5 said */
#define H5Check(a, call, code, ...) \
  do { \
    if ((call) < 0) { \
      char h5msg_[RN_ARRAYS_MESSAGE_LEN], what_[RN_ARRAYS_TEXT_LEN]; \
      snprintf(what_, sizeof what_, __VA_ARGS__); \
      SETERRQ(PETSC_COMM_SELF, (code), "%s: %s: %s", (a)->path, what_, Hdf5Message(h5msg_)); \
    } \
  } while (0)

static hid_t FileType(RnArrayType t) { return t == RN_ARRAY_FLOAT32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE; }

PetscErrorCode RnArraysCreate(MPI_Comm comm, RnRunDir rd, const char *name, RnArrays *arrays)
{
  RnArrays a;
  char file[RN_ARRAYS_NAME_LEN + 8];

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&a));
  a->comm = comm, a->record_dim = -1, a->file = a->record_coord = a->dxpl = H5I_INVALID_HID, a->record = -1;
  PetscCallMPI(MPI_Comm_size(comm, &a->size));
  PetscCallMPI(MPI_Comm_rank(comm, &a->rank));
  PetscCall(PetscStrncpy(a->name, name, sizeof a->name));
  PetscCall(PetscSNPrintf(file, sizeof file, "%s.h5", name));
  PetscCall(RnRunDirFile(rd, file, a->path, sizeof a->path));
  /* errors are reported by the calls (H5Check), not printed by HDF5 */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  *arrays = a;
  PetscFunctionReturn(0);
}

static PetscErrorCode AddDimension(RnArrays a, const char *name, hsize_t length, const int *values, const char *long_name)
{
  Dimension *d = &a->dims[a->ndims];

  PetscFunctionBeginUser;
  PetscCheck(a->ndims < RN_ARRAYS_MAX_ITEMS, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: more than %d dimensions", a->path, RN_ARRAYS_MAX_ITEMS);
  PetscCall(PetscStrncpy(d->name, name, sizeof d->name));
  PetscCall(PetscStrncpy(d->long_name, long_name, sizeof d->long_name));
  d->length = length;
  if (values) {
    PetscCall(PetscMalloc1(length, &d->values));
    PetscCall(PetscArraycpy(d->values, values, length));
  }
  a->ndims++;
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysRecordDimension(RnArrays a, const char *name, const char *long_name)
{
  PetscFunctionBeginUser;
  PetscCheck(a->record_dim < 0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: a second record dimension", a->path);
  a->record_dim = a->ndims;
  PetscCall(AddDimension(a, name, 0, NULL, long_name));
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysDimension(RnArrays a, const char *name, PetscInt length, const int *values, const char *long_name)
{
  PetscFunctionBeginUser;
  PetscCheck(length > 0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: dimension %s of length %d", a->path, name, (int)length);
  PetscCall(AddDimension(a, name, (hsize_t)length, values, long_name));
  PetscFunctionReturn(0);
}

static int DimensionIndex(RnArrays a, const char *name)
{
  for (int i = 0; i < a->ndims; i++)
    if (!strcmp(a->dims[i].name, name)) return i;
  return -1;
}

PetscErrorCode RnArraysVariable(RnArrays a, const char *name, RnArrayType type, int ndims, const char *const dims[], const PetscInt chunk[], const char *long_name)
{
  Variable *v = &a->vars[a->nvars];

  PetscFunctionBeginUser;
  PetscCheck(a->nvars < RN_ARRAYS_MAX_ITEMS && ndims >= 1 && ndims <= RN_ARRAYS_MAX_DIMS, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: variable %s: too many variables or dimensions", a->path, name);
  PetscCall(PetscStrncpy(v->name, name, sizeof v->name));
  PetscCall(PetscStrncpy(v->long_name, long_name, sizeof v->long_name));
  v->type = type, v->ndims = ndims, v->dset = H5I_INVALID_HID;
  for (int i = 0; i < ndims; i++) {
    v->dim[i] = DimensionIndex(a, dims[i]);
    PetscCheck(v->dim[i] >= 0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: variable %s: no dimension %s", a->path, name, dims[i]);
    PetscCheck(i == 0 || v->dim[i] != a->record_dim, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: variable %s: the record dimension comes first", a->path, name);
    PetscCheck(chunk[i] >= 1 && (v->dim[i] == a->record_dim || (hsize_t)chunk[i] <= a->dims[v->dim[i]].length), PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: variable %s: chunk %d in dimension %s", a->path, name,
               (int)chunk[i], dims[i]);
    v->chunk[i] = (hsize_t)chunk[i];
  }
  a->nvars++;
  PetscFunctionReturn(0);
}

static PetscErrorCode AddAttribute(RnArrays a, const char *name, Attribute **attr)
{
  PetscFunctionBeginUser;
  PetscCheck(a->nattrs < RN_ARRAYS_MAX_ITEMS, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: more than %d attributes", a->path, RN_ARRAYS_MAX_ITEMS);
  *attr = &a->attrs[a->nattrs++];
  PetscCall(PetscStrncpy((*attr)->name, name, sizeof(*attr)->name));
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysAttributeString(RnArrays a, const char *name, const char *value)
{
  Attribute *t;

  PetscFunctionBeginUser;
  PetscCall(AddAttribute(a, name, &t));
  t->kind = ATTR_STRING;
  PetscCall(PetscStrncpy(t->text, value, sizeof t->text));
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysAttributeInts(RnArrays a, const char *name, int n, const int values[])
{
  Attribute *t;

  PetscFunctionBeginUser;
  PetscCall(AddAttribute(a, name, &t));
  t->kind = ATTR_INTS, t->n = n;
  PetscCall(PetscMalloc1(PetscMax(n, 1), &t->ints));
  PetscCall(PetscArraycpy(t->ints, values, n));
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysAttributeDouble(RnArrays a, const char *name, double value)
{
  Attribute *t;

  PetscFunctionBeginUser;
  PetscCall(AddAttribute(a, name, &t));
  t->kind = ATTR_DOUBLE, t->value = value;
  PetscFunctionReturn(0);
}

/* the file, opened (create: truncated) with MPI-IO when more than one rank shares it */
static PetscErrorCode OpenFile(RnArrays a, PetscBool create)
{
  hid_t fapl;

  PetscFunctionBeginUser;
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Check(a, fapl, PETSC_ERR_LIB, "file access properties");
  if (a->size > 1) {
    H5Check(a, H5Pset_fapl_mpio(fapl, a->comm, MPI_INFO_NULL), PETSC_ERR_LIB, "MPI-IO access");
    H5Check(a, H5Pset_all_coll_metadata_ops(fapl, 1), PETSC_ERR_LIB, "collective metadata reads");
    H5Check(a, H5Pset_coll_metadata_write(fapl, 1), PETSC_ERR_LIB, "collective metadata writes");
  }
  if (create) a->file = H5Fcreate(a->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  else a->file = H5Fopen(a->path, H5F_ACC_RDWR, fapl);
  H5Pclose(fapl);
  H5Check(a, a->file, create ? PETSC_ERR_FILE_WRITE : RN_ERR_INPUT, create ? "cannot create the file" : "cannot open it (is it damaged, or not HDF5? the run's checkpoint expects its records)");
  a->dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Check(a, a->dxpl, PETSC_ERR_LIB, "transfer properties");
  if (a->size > 1) H5Check(a, H5Pset_dxpl_mpio(a->dxpl, H5FD_MPIO_COLLECTIVE), PETSC_ERR_LIB, "collective transfers");
  PetscFunctionReturn(0);
}

static PetscErrorCode CloseFile(RnArrays a)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < a->nvars; i++)
    if (a->vars[i].dset != H5I_INVALID_HID) {
      H5Check(a, H5Dclose(a->vars[i].dset), PETSC_ERR_FILE_WRITE, "closing %s", a->vars[i].name);
      a->vars[i].dset = H5I_INVALID_HID;
    }
  if (a->record_coord != H5I_INVALID_HID) {
    H5Check(a, H5Dclose(a->record_coord), PETSC_ERR_FILE_WRITE, "closing the record coordinate");
    a->record_coord = H5I_INVALID_HID;
  }
  if (a->dxpl != H5I_INVALID_HID) H5Pclose(a->dxpl), a->dxpl = H5I_INVALID_HID;
  if (a->file != H5I_INVALID_HID) {
    const herr_t closed = H5Fclose(a->file);
    a->file = H5I_INVALID_HID;
    H5Check(a, closed, PETSC_ERR_FILE_WRITE, "closing the file (is the disk full?)");
  }
  PetscFunctionReturn(0);
}

/* a chunked, checksummed dataset; maxdims: H5S_UNLIMITED in a record dimension */
static PetscErrorCode CreateDataset(RnArrays a, const char *name, hid_t type, int rank, const hsize_t *dims, const hsize_t *maxdims, const hsize_t *chunk, hid_t *dset)
{
  hid_t space, dcpl;

  PetscFunctionBeginUser;
  space = H5Screate_simple(rank, dims, maxdims);
  H5Check(a, space, PETSC_ERR_LIB, "the shape of %s", name);
  dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Check(a, dcpl, PETSC_ERR_LIB, "the properties of %s", name);
  H5Check(a, H5Pset_chunk(dcpl, rank, chunk), PETSC_ERR_LIB, "the chunks of %s", name);
  H5Check(a, H5Pset_fletcher32(dcpl), PETSC_ERR_LIB, "the checksum filter of %s", name);
  /* chunks are written whole as records arrive: no fill values first */
  H5Check(a, H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), PETSC_ERR_LIB, "the fill of %s", name);
  /* no modification times in the object headers: the same run writes the same bytes */
  H5Check(a, H5Pset_obj_track_times(dcpl, 0), PETSC_ERR_LIB, "the times of %s", name);
  *dset = H5Dcreate2(a->file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Check(a, *dset, PETSC_ERR_FILE_WRITE, "cannot create %s", name);
  PetscFunctionReturn(0);
}

static PetscErrorCode WriteStringAttribute(RnArrays a, hid_t obj, const char *name, const char *value)
{
  hid_t type, space, attr;

  PetscFunctionBeginUser;
  type = H5Tcopy(H5T_C_S1);
  H5Check(a, type, PETSC_ERR_LIB, "a string type");
  H5Check(a, H5Tset_size(type, PetscMax(strlen(value), 1)), PETSC_ERR_LIB, "a string type");
  space = H5Screate(H5S_SCALAR);
  attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Check(a, attr, PETSC_ERR_FILE_WRITE, "attribute %s", name);
  H5Check(a, H5Awrite(attr, type, value), PETSC_ERR_FILE_WRITE, "attribute %s", name);
  H5Aclose(attr), H5Sclose(space), H5Tclose(type);
  PetscFunctionReturn(0);
}

static PetscErrorCode WriteNumberAttribute(RnArrays a, hid_t obj, const char *name, hid_t file_type, hid_t mem_type, hsize_t n, const void *values)
{
  hid_t space, attr;

  PetscFunctionBeginUser;
  space = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR); /* n = 0: a scalar */
  attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Check(a, attr, PETSC_ERR_FILE_WRITE, "attribute %s", name);
  H5Check(a, H5Awrite(attr, mem_type, values), PETSC_ERR_FILE_WRITE, "attribute %s", name);
  H5Aclose(attr), H5Sclose(space);
  PetscFunctionReturn(0);
}

/* Collective write of a block of dset (count NULL: nothing from this rank). */
static PetscErrorCode WriteBlock(RnArrays a, hid_t dset, const char *name, hid_t mem_type, const hsize_t *start, const hsize_t *count, const void *values)
{
  hid_t file_space, mem_space;
  hsize_t n = 1;
  const hsize_t one = 1;

  PetscFunctionBeginUser;
  file_space = H5Dget_space(dset);
  H5Check(a, file_space, PETSC_ERR_LIB, "the shape of %s", name);
  if (count) {
    const int rank = H5Sget_simple_extent_ndims(file_space);
    for (int i = 0; i < rank; i++) n *= count[i];
  } else n = 0;
  if (n) {
    H5Check(a, H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL), PETSC_ERR_ARG_OUTOFRANGE, "a block outside %s", name);
    mem_space = H5Screate_simple(1, &n, NULL);
  } else {
    H5Check(a, H5Sselect_none(file_space), PETSC_ERR_LIB, "an empty block of %s", name);
    mem_space = H5Screate_simple(1, &one, NULL);
    H5Check(a, H5Sselect_none(mem_space), PETSC_ERR_LIB, "an empty block of %s", name);
  }
  H5Check(a, H5Dwrite(dset, mem_type, mem_space, file_space, a->dxpl, values), PETSC_ERR_FILE_WRITE, "cannot write %s (is the disk full?)", name);
  H5Sclose(mem_space), H5Sclose(file_space);
  PetscFunctionReturn(0);
}

static PetscErrorCode CreateLayout(RnArrays a)
{
  hid_t scales[RN_ARRAYS_MAX_ITEMS];

  PetscFunctionBeginUser;
  for (int i = 0; i < a->ndims; i++) {
    const Dimension *d = &a->dims[i];
    const hsize_t n = d->length, unlimited = H5S_UNLIMITED, zero = 0, coord_chunk = RN_ARRAYS_COORD_CHUNK, start = 0;
    if (i == a->record_dim) {
      PetscCall(CreateDataset(a, d->name, H5T_STD_I32LE, 1, &zero, &unlimited, &coord_chunk, &scales[i]));
      H5Check(a, H5DSset_scale(scales[i], d->name), PETSC_ERR_FILE_WRITE, "dimension %s", d->name);
    } else if (d->values) {
      PetscCall(CreateDataset(a, d->name, H5T_STD_I32LE, 1, &n, NULL, &n, &scales[i]));
      PetscCall(WriteBlock(a, scales[i], d->name, H5T_NATIVE_INT, &start, a->rank ? NULL : &n, d->values));
      H5Check(a, H5DSset_scale(scales[i], d->name), PETSC_ERR_FILE_WRITE, "dimension %s", d->name);
    } else {
      /* a dimension only: an empty dataset of its length, marked as netCDF marks it */
      char mark[sizeof RN_NETCDF_DIM_ONLY + 16];
      hid_t space = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Check(a, H5Pset_obj_track_times(dcpl, 0), PETSC_ERR_LIB, "the times of %s", d->name);
      scales[i] = H5Dcreate2(a->file, d->name, H5T_STD_I32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      H5Sclose(space), H5Pclose(dcpl);
      H5Check(a, scales[i], PETSC_ERR_FILE_WRITE, "dimension %s", d->name);
      PetscCall(PetscSNPrintf(mark, sizeof mark, "%s%10d", RN_NETCDF_DIM_ONLY, (int)n));
      H5Check(a, H5DSset_scale(scales[i], mark), PETSC_ERR_FILE_WRITE, "dimension %s", d->name);
    }
    PetscCall(WriteStringAttribute(a, scales[i], "long_name", d->long_name));
  }
  for (int i = 0; i < a->nvars; i++) {
    const Variable *v = &a->vars[i];
    hsize_t dims[RN_ARRAYS_MAX_DIMS], maxdims[RN_ARRAYS_MAX_DIMS];
    hid_t dset;
    for (int k = 0; k < v->ndims; k++) {
      dims[k] = maxdims[k] = a->dims[v->dim[k]].length;
      if (v->dim[k] == a->record_dim) maxdims[k] = H5S_UNLIMITED;
    }
    PetscCall(CreateDataset(a, v->name, FileType(v->type), v->ndims, dims, maxdims, v->chunk, &dset));
    for (int k = 0; k < v->ndims; k++) H5Check(a, H5DSattach_scale(dset, scales[v->dim[k]], (unsigned)k), PETSC_ERR_FILE_WRITE, "the dimensions of %s", v->name);
    PetscCall(WriteStringAttribute(a, dset, "long_name", v->long_name));
    H5Dclose(dset);
  }
  for (int i = 0; i < a->ndims; i++) H5Dclose(scales[i]);
  for (int i = 0; i < a->nattrs; i++) {
    const Attribute *t = &a->attrs[i];
    hid_t root = a->file;
    if (t->kind == ATTR_STRING) PetscCall(WriteStringAttribute(a, root, t->name, t->text));
    else if (t->kind == ATTR_INTS) PetscCall(WriteNumberAttribute(a, root, t->name, H5T_STD_I32LE, H5T_NATIVE_INT, (hsize_t)t->n, t->ints));
    else PetscCall(WriteNumberAttribute(a, root, t->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &t->value));
  }
  PetscFunctionReturn(0);
}

/* the existing file's shape against the declared one, and its records cut back to keep */
static PetscErrorCode ContinueLayout(RnArrays a, long long keep)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < a->nvars; i++) {
    const Variable *v = &a->vars[i];
    hid_t dset = H5Dopen2(a->file, v->name, H5P_DEFAULT), space;
    hsize_t dims[RN_ARRAYS_MAX_DIMS];
    int rank;
    H5Check(a, dset, RN_ERR_INPUT, "has no variable %s: it is not this run's file", v->name);
    space = H5Dget_space(dset);
    rank = H5Sget_simple_extent_ndims(space);
    PetscCheck(rank == v->ndims, PETSC_COMM_SELF, RN_ERR_INPUT, "%s: variable %s has %d dimensions, this run writes %d: the file is not this run's", a->path, v->name, rank, v->ndims);
    H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    for (int k = 0; k < v->ndims; k++) {
      const Dimension *d = &a->dims[v->dim[k]];
      if (v->dim[k] == a->record_dim) continue;
      PetscCheck(dims[k] == d->length, PETSC_COMM_SELF, RN_ERR_INPUT, "%s: variable %s has %llu along %s, this run %llu: the file is not this run's", a->path, v->name, (unsigned long long)dims[k], d->name,
                 (unsigned long long)d->length);
    }
    if (v->dim[0] == a->record_dim) {
      PetscCheck(dims[0] >= (hsize_t)keep, PETSC_COMM_SELF, RN_ERR_INPUT, "%s: variable %s holds %llu records, the checkpoint %lld: records were lost since (restore the file, or start the run again in a new directory)",
                 a->path, v->name, (unsigned long long)dims[0], keep);
      dims[0] = (hsize_t)keep;
      H5Check(a, H5Dset_extent(dset, dims), PETSC_ERR_FILE_WRITE, "cannot cut %s back to %lld records", v->name, keep);
    }
    H5Dclose(dset);
  }
  if (a->record_dim >= 0) {
    const Dimension *d = &a->dims[a->record_dim];
    hid_t dset = H5Dopen2(a->file, d->name, H5P_DEFAULT), space;
    hsize_t n;
    int *coords;
    H5Check(a, dset, RN_ERR_INPUT, "has no record coordinate %s: it is not this run's file", d->name);
    space = H5Dget_space(dset);
    H5Sget_simple_extent_dims(space, &n, NULL);
    H5Sclose(space);
    PetscCheck(n >= (hsize_t)keep, PETSC_COMM_SELF, RN_ERR_INPUT, "%s: %s holds %llu records, the checkpoint %lld: records were lost since (restore the file, or start the run again in a new directory)", a->path, d->name,
               (unsigned long long)n, keep);
    /* read back (its checksum checked) before it is cut */
    PetscCall(PetscMalloc1(PetscMax(n, 1), &coords));
    if (n) H5Check(a, H5Dread(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, a->dxpl, coords), RN_ERR_INPUT, "dataset %s is damaged", d->name);
    PetscCall(PetscFree(coords));
    n = (hsize_t)keep;
    H5Check(a, H5Dset_extent(dset, &n), PETSC_ERR_FILE_WRITE, "cannot cut %s back to %lld records", d->name, keep);
    H5Dclose(dset);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysSetUp(RnArrays a, long long keep)
{
  PetscFunctionBeginUser;
  PetscCall(OpenFile(a, keep < 0 ? PETSC_TRUE : PETSC_FALSE));
  if (keep < 0) PetscCall(CreateLayout(a));
  else PetscCall(ContinueLayout(a, keep));
  PetscCall(CloseFile(a));
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysBeginRecord(RnArrays a, long long index, int coordinate)
{
  const Dimension *d = &a->dims[a->record_dim];
  hsize_t n, start = (hsize_t)index, one = 1;

  PetscFunctionBeginUser;
  PetscCheck(a->record_dim >= 0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: no record dimension", a->path);
  PetscCall(OpenFile(a, PETSC_FALSE));
  a->record_coord = H5Dopen2(a->file, d->name, H5P_DEFAULT);
  H5Check(a, a->record_coord, RN_ERR_INPUT, "has no record coordinate %s", d->name);
  {
    hid_t space = H5Dget_space(a->record_coord);
    H5Sget_simple_extent_dims(space, &n, NULL);
    H5Sclose(space);
  }
  PetscCheck(n == (hsize_t)index, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: record %lld begins after %llu records", a->path, index, (unsigned long long)n);
  n = (hsize_t)index + 1;
  H5Check(a, H5Dset_extent(a->record_coord, &n), PETSC_ERR_FILE_WRITE, "cannot add record %lld", index);
  PetscCall(WriteBlock(a, a->record_coord, d->name, H5T_NATIVE_INT, &start, a->rank ? NULL : &one, &coordinate));
  for (int i = 0; i < a->nvars; i++) {
    Variable *v = &a->vars[i];
    v->dset = H5Dopen2(a->file, v->name, H5P_DEFAULT);
    H5Check(a, v->dset, RN_ERR_INPUT, "has no variable %s", v->name);
    if (v->dim[0] == a->record_dim) {
      hsize_t dims[RN_ARRAYS_MAX_DIMS];
      for (int k = 0; k < v->ndims; k++) dims[k] = a->dims[v->dim[k]].length;
      dims[0] = n;
      H5Check(a, H5Dset_extent(v->dset, dims), PETSC_ERR_FILE_WRITE, "cannot add record %lld to %s", index, v->name);
    }
  }
  a->record = index;
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysWrite(RnArrays a, const char *name, const PetscInt start[], const PetscInt count[], const double *values)
{
  Variable *v = NULL;
  hsize_t s[RN_ARRAYS_MAX_DIMS], c[RN_ARRAYS_MAX_DIMS];
  PetscBool empty = PETSC_FALSE;

  PetscFunctionBeginUser;
  for (int i = 0; i < a->nvars; i++)
    if (!strcmp(a->vars[i].name, name)) v = &a->vars[i];
  PetscCheck(v && v->dset != H5I_INVALID_HID, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: variable %s is not declared, or no record began", a->path, name);
  PetscCheck(v->type == RN_ARRAY_FLOAT64, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: %s: blocks are written to float64 variables (float32: RnArraysWriteRows)", a->path, name);
  for (int k = 0; k < v->ndims; k++) {
    s[k] = (hsize_t)start[k], c[k] = (hsize_t)count[k];
    if (!count[k]) empty = PETSC_TRUE;
  }
  PetscCheck(empty || v->dim[0] != a->record_dim || (start[0] == a->record && count[0] == 1), PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: %s written outside record %lld", a->path, name, a->record);
  PetscCall(WriteBlock(a, v->dset, v->name, H5T_NATIVE_DOUBLE, s, empty ? NULL : c, values));
  PetscFunctionReturn(0);
}

/* rows [first, first + nrows) of the (A, B) plane as at most three blocks:
 * the rest of a first partial A, whole As, a last partial A */
static PetscErrorCode SelectRows(RnArrays a, const Variable *v, hid_t file_space, long long first, long long nrows)
{
  const hsize_t B = v->ndims == 4 ? a->dims[v->dim[2]].length : 1, len = a->dims[v->dim[v->ndims - 1]].length;
  const long long end = first + nrows;
  long long r = first;
  H5S_seloper_t op = H5S_SELECT_SET;

  PetscFunctionBeginUser;
  while (r < end) {
    const hsize_t A0 = (hsize_t)r / B, B0 = (hsize_t)r % B;
    /* a partial A, or as many whole As as the range holds */
    const hsize_t nA = B0 == 0 && (hsize_t)(end - r) >= B ? (hsize_t)(end - r) / B : 1;
    const hsize_t nB = B0 == 0 && nA > 1 ? B : PetscMin(B - B0, (hsize_t)(end - r));
    hsize_t start[RN_ARRAYS_MAX_DIMS] = {(hsize_t)a->record, A0}, count[RN_ARRAYS_MAX_DIMS] = {1, nA};
    if (v->ndims == 4) start[2] = B0, count[2] = nB, start[3] = 0, count[3] = len;
    else start[2] = 0, count[2] = len;
    H5Check(a, H5Sselect_hyperslab(file_space, op, start, NULL, count, NULL), PETSC_ERR_ARG_OUTOFRANGE, "rows outside %s", v->name);
    op = H5S_SELECT_OR, r += (long long)(nA > 1 ? nA * B : nB);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysWriteRows(RnArrays a, const char *name, long long first, long long nrows, size_t stride, const double *values)
{
  Variable *v = NULL;
  hid_t file_space, mem_space, mem_type = H5T_NATIVE_DOUBLE;
  float *rounded = NULL;
  const void *buf = values;

  PetscFunctionBeginUser;
  for (int i = 0; i < a->nvars; i++)
    if (!strcmp(a->vars[i].name, name)) v = &a->vars[i];
  PetscCheck(v && v->dset != H5I_INVALID_HID && v->dim[0] == a->record_dim && (v->ndims == 3 || v->ndims == 4), PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: %s is no record variable of rows, or no record began", a->path, name);
  file_space = H5Dget_space(v->dset);
  H5Check(a, file_space, PETSC_ERR_LIB, "the shape of %s", name);
  if (nrows > 0) {
    const hsize_t len = a->dims[v->dim[v->ndims - 1]].length, mem_dims[2] = {(hsize_t)nrows, (hsize_t)stride}, mem_start[2] = {0, 0}, mem_count[2] = {(hsize_t)nrows, len};
    PetscCheck(stride >= len, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: rows of %llu values %zu apart", a->path, (unsigned long long)len, stride);
    PetscCall(SelectRows(a, v, file_space, first, nrows));
    if (v->type == RN_ARRAY_FLOAT32) {
      /* rounded here: parallel HDF5 writes filtered chunks collectively only without a type conversion */
      const hsize_t n = (hsize_t)nrows * len;
      PetscCall(PetscMalloc1(n, &rounded));
      for (long long r = 0; r < nrows; r++)
        for (hsize_t i = 0; i < len; i++) rounded[(size_t)r * len + i] = (float)values[(size_t)r * stride + i];
      mem_space = H5Screate_simple(1, &n, NULL), mem_type = H5T_NATIVE_FLOAT, buf = rounded;
    } else {
      /* the last row need not extend to a whole stride */
      mem_space = H5Screate_simple(2, mem_dims, NULL);
      H5Check(a, H5Sselect_hyperslab(mem_space, H5S_SELECT_SET, mem_start, NULL, mem_count, NULL), PETSC_ERR_LIB, "the rows in memory");
    }
  } else {
    const hsize_t one = 1;
    H5Check(a, H5Sselect_none(file_space), PETSC_ERR_LIB, "an empty block of %s", name);
    mem_space = H5Screate_simple(1, &one, NULL);
    H5Check(a, H5Sselect_none(mem_space), PETSC_ERR_LIB, "an empty block of %s", name);
  }
  if (v->type == RN_ARRAY_FLOAT32) mem_type = H5T_NATIVE_FLOAT;
  H5Check(a, H5Dwrite(v->dset, mem_type, mem_space, file_space, a->dxpl, buf), PETSC_ERR_FILE_WRITE, "cannot write %s (is the disk full?)", name);
  H5Sclose(mem_space), H5Sclose(file_space);
  PetscCall(PetscFree(rounded));
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysEndRecord(RnArrays a)
{
  PetscFunctionBeginUser;
  H5Check(a, H5Fflush(a->file, H5F_SCOPE_LOCAL), PETSC_ERR_FILE_WRITE, "cannot flush record %lld (is the disk full?)", a->record);
  PetscCall(CloseFile(a));
  a->record = -1;
  PetscFunctionReturn(0);
}

PetscErrorCode RnArraysDestroy(RnArrays *arrays)
{
  RnArrays a = *arrays;

  PetscFunctionBeginUser;
  if (!a) PetscFunctionReturn(0);
  /* after an error inside a record: the handles go, nothing more is written */
  for (int i = 0; i < a->nvars; i++)
    if (a->vars[i].dset != H5I_INVALID_HID) H5Dclose(a->vars[i].dset);
  if (a->record_coord != H5I_INVALID_HID) H5Dclose(a->record_coord);
  if (a->dxpl != H5I_INVALID_HID) H5Pclose(a->dxpl);
  if (a->file != H5I_INVALID_HID) H5Fclose(a->file);
  for (int i = 0; i < a->ndims; i++) PetscCall(PetscFree(a->dims[i].values));
  for (int i = 0; i < a->nattrs; i++) PetscCall(PetscFree(a->attrs[i].ints));
  PetscCall(PetscFree(*arrays));
  PetscFunctionReturn(0);
}
