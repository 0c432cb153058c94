/* arrays.h: the large arrays of a run directory in HDF5 (RUN_DIR/NAME.h5).
 *
 * Variables have named dimensions (HDF5 dimension scales, as netCDF-4 writes
 * them), so h5py and xarray (engine "h5netcdf") read them by name. A record
 * variable's first dimension is the record dimension, which grows by one
 * record at a time; its coordinate (an int: the SGD step) is written as the
 * record begins. Datasets are chunked by the caller's chunk (a record, or a
 * row of one) and every chunk carries HDF5's Fletcher32 checksum, so a
 * damaged chunk is found when it is read.
 *
 * The file is opened for each record and closed after it: between records
 * it is complete. A resumed run cuts it back to the records its checkpoint
 * holds (RnArraysSetUp with keep >= 0), as the CSV tables are cut back.
 *
 * Collective on the communicator of RnArraysCreate. With more than one rank
 * the file is written by MPI-IO and every write is collective: a rank with
 * nothing to write still calls RnArraysWrite, with a zero count. */
#ifndef RESNODE_ARRAYS_H
#define RESNODE_ARRAYS_H

#include "resnode/core/rundir.h"

typedef struct RnArrays_s *RnArrays;
typedef enum { RN_ARRAY_FLOAT64, RN_ARRAY_FLOAT32 } RnArrayType;
extern const char *const RnArrayTypeNames[]; /* "float64", "float32", NULL: a config choice */
#define RN_ARRAYS_MAX_DIMS 4                 /* dimensions of one variable */

/* Create: the file's name in the run directory (NAME.h5) and its layout, declared
 * by the calls below before RnArraysSetUp. */
PetscErrorCode RnArraysCreate(MPI_Comm comm, RnRunDir rd, const char *name, RnArrays *arrays);
/* The record dimension, whose int coordinate is given to RnArraysBeginRecord. */
PetscErrorCode RnArraysRecordDimension(RnArrays arrays, const char *name, const char *long_name);
/* A fixed dimension of the given length; values: its int coordinate (NULL: a
 * dimension without a coordinate, as netCDF has them). */
PetscErrorCode RnArraysDimension(RnArrays arrays, const char *name, PetscInt length, const int *values, const char *long_name);
/* A variable over the named dimensions (the record dimension first, if at
 * all); chunk: a chunk's extent in each dimension. Values are written from
 * doubles and stored as type. */
PetscErrorCode RnArraysVariable(RnArrays arrays, const char *name, RnArrayType type, int ndims, const char *const dims[], const PetscInt chunk[], const char *long_name);
/* Attributes of the file (what the arrays are: keys, depths, the experiment). */
PetscErrorCode RnArraysAttributeString(RnArrays arrays, const char *name, const char *value);
PetscErrorCode RnArraysAttributeInts(RnArrays arrays, const char *name, int n, const int values[]);
PetscErrorCode RnArraysAttributeDouble(RnArrays arrays, const char *name, double value);
/* Writes the layout: a new file (keep < 0), or, for a resumed run, the
 * existing file cut back to its first keep records. A file that holds fewer,
 * is not HDF5, or whose variables differ from the declared ones is an input
 * error naming the file and what is wrong. */
PetscErrorCode RnArraysSetUp(RnArrays arrays, long long keep);
/* Record `index` (the next one: the count of records so far) begins: the file
 * is opened, every record variable grows by one record, and the record's
 * coordinate is written. */
PetscErrorCode RnArraysBeginRecord(RnArrays arrays, long long index, int coordinate);
/* A block of a float64 variable: start and count in each of its dimensions
 * (for a record variable start[0] is the current record). A zero count writes
 * nothing (every rank calls: the write is collective). */
PetscErrorCode RnArraysWrite(RnArrays arrays, const char *name, const PetscInt start[], const PetscInt count[], const double *values);
/* Rows of a record variable (record, A, B, row) or (record, A, row): rows
 * [first, first + nrows) of the current record in the order of (A, B),
 * row-major, from memory that holds row i at values + i * stride. Zero rows
 * write nothing (collective, as RnArraysWrite). A float32 variable gets the
 * values rounded to nearest. */
PetscErrorCode RnArraysWriteRows(RnArrays arrays, const char *name, long long first, long long nrows, size_t stride, const double *values);
/* The record is complete: the file is flushed and closed. */
PetscErrorCode RnArraysEndRecord(RnArrays arrays);
PetscErrorCode RnArraysDestroy(RnArrays *arrays);

#endif
