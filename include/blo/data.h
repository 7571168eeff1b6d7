/* blo/data.h — datasets and the loaders for IDX (MNIST family, plain or gzip), LIBSVM and CSV.
 *
 * Every loader reads the whole file (gzip-compressed or not: zlib reads both), checks it, and
 * either fills a blo_dataset or returns BLO_ERR_IO / BLO_ERR_FORMAT with a message that names
 * the file and the position: "train.svm: line 12, column 7: index 3 after index 5 (indices
 * must ascend)" or "train-images-idx3-ubyte.gz: offset 16: 47040000 bytes of data expected,
 * 1000 found". A malformed file never crashes a loader; the _parse variants take a memory
 * buffer (what the fuzz targets drive).
 */
#ifndef BLO_DATA_H
#define BLO_DATA_H

#include "blo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* n examples of d features, dense (x) or sparse (CSR: rowptr, col, val), with targets.
 * All arrays are owned by the dataset and released by blo_dataset_free. */
typedef struct blo_dataset {
    int64_t n, d;
    float *x;        /* dense [n, d] row-major, or NULL when sparse */
    int64_t nnz;     /* sparse: */
    int64_t *rowptr; /* [n + 1] */
    int64_t *col;    /* [nnz], 0-based, ascending within a row */
    float *val;      /* [nnz] */
    double *y;       /* [n] targets as read */
    int64_t *label;  /* [n] class index, when every target is one of num_classes values */
    int64_t num_classes;
    double *class_value; /* [num_classes] the target value of each class, ascending */
} blo_dataset;

void blo_dataset_free(blo_dataset *ds);

/* A generic IDX array (the MNIST container): type code 0x08 ubyte, 0x09 byte, 0x0B short,
 * 0x0C int, 0x0D float, 0x0E double; big-endian sizes; values converted to float. */
typedef struct blo_idx {
    int type;
    int ndim;
    int64_t dims[8];
    int64_t count; /* product of dims */
    float *data;   /* owned; free with blo_idx_free */
} blo_idx;
blo_status blo_idx_parse(const unsigned char *buf, size_t len, const char *name, blo_idx *out,
                         char *err, size_t errlen);
blo_status blo_idx_load(const char *path, blo_idx *out, char *err, size_t errlen);
void blo_idx_free(blo_idx *a);

/* The MNIST layout in dir: <split>-images-idx3-ubyte[.gz] and <split>-labels-idx1-ubyte[.gz],
 * split "train" or "t10k". Pixels scaled to [0, 1]; 10 classes. */
blo_status blo_mnist_load(const char *dir, const char *split, blo_dataset *ds, char *err,
                          size_t errlen);

/* LIBSVM text: "<target> <index>:<value> ..." per line, indices 1-based and strictly
 * ascending; '#' starts a comment; blank lines are skipped. d is the largest index (at least
 * min_features). dense = 1 also fills x. */
blo_status blo_libsvm_parse(const char *buf, size_t len, const char *name, int dense,
                            int64_t min_features, blo_dataset *ds, char *err, size_t errlen);
blo_status blo_libsvm_load(const char *path, int dense, int64_t min_features, blo_dataset *ds,
                           char *err, size_t errlen);

/* CSV with a header line; every field numeric. The target is the column named label_column,
 * or the last column when label_column is NULL; the others are the features (dense). */
blo_status blo_csv_parse(const char *buf, size_t len, const char *name, const char *label_column,
                         blo_dataset *ds, char *err, size_t errlen);
blo_status blo_csv_load(const char *path, const char *label_column, blo_dataset *ds, char *err,
                        size_t errlen);

/* Reads a whole file, gzip or plain, into a new buffer (blo_free it); *len gets its size. */
blo_status blo_read_file(const char *path, unsigned char **buf, size_t *len, char *err,
                         size_t errlen);

/* Rows `rows[0..k)` of the features as a dense [k, d] tensor in ctx (sparse data densified),
 * and their class labels as an i64 [k] tensor (needs ds->label). rows NULL: rows 0..k-1. */
blo_tensor *blo_dataset_features(blo_ctx *ctx, const blo_dataset *ds, blo_dtype dt,
                                 const int64_t *rows, int64_t k);
blo_tensor *blo_dataset_labels(blo_ctx *ctx, const blo_dataset *ds, const int64_t *rows,
                               int64_t k);

#ifdef __cplusplus
}
#endif
#endif
