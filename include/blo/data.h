/* blo/data.h — datasets and the loaders for IDX (MNIST family, plain or gzip), LIBSVM, CSV,
 * the CIFAR-10 binary batches, PNG images and class-per-folder PNG trees.
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
#pragma GCC visibility push(default)

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
    char **class_name;   /* [num_classes] class names (image folders: the folder names), or NULL */
    int64_t image[3];    /* image data: channels, height, width of each row (x is channel-major,
                            d = channels * height * width); all 0 for other data */
} blo_dataset;

void blo_dataset_free(blo_dataset *ds);

/* A generic IDX array (the MNIST container): type code 0x08 ubyte, 0x09 byte, 0x0B short,
 * 0x0C int, 0x0D float, 0x0E double; big-endian sizes; values converted to float. */
typedef struct blo_idx {
    int type;
    int ndim;
    int64_t dims[8];
    int64_t count;  /* product of dims */
    float *values;  /* [count] host memory, owned; free with blo_idx_free */
} blo_idx;
blo_status blo_idx_parse(const unsigned char *buf, size_t len, const char *name, blo_idx *out,
                         char *err, size_t errlen);
blo_status blo_idx_load(const char *path, blo_idx *out, char *err, size_t errlen);
void blo_idx_free(blo_idx *a);

/* The MNIST layout in dir: <split>-images-idx3-ubyte[.gz] and <split>-labels-idx1-ubyte[.gz],
 * split "train" or "t10k". Pixels scaled to [0, 1]; 10 classes; image = {1, h, w}. */
blo_status blo_mnist_load(const char *dir, const char *split, blo_dataset *ds, char *err,
                          size_t errlen);

/* CIFAR-10 binary batches: records of 3073 bytes, a label byte 0-9 then 3072 pixel bytes
 * (1024 red, 1024 green, 1024 blue, each plane 32 x 32 row-major). x is [n, 3072] in that
 * channel-major order (reshape to [n, 3, 32, 32]) scaled to [0, 1]; 10 classes; image = {3, 32,
 * 32}. Errors: a size that is not a multiple of 3073 (the offset of the trailing partial record
 * is named), a label above 9 (its offset named), an empty buffer. */
blo_status blo_cifar10_parse(const unsigned char *buf, size_t len, const char *name,
                             blo_dataset *ds, char *err, size_t errlen);
/* The files of the CIFAR-10 binary distribution in dir: split "train" reads data_batch_1.bin ...
 * data_batch_5.bin in that order, "test" reads test_batch.bin; each file may also be gzip'd
 * (<file>.gz is tried first). A missing file is named (BLO_ERR_IO). */
blo_status blo_cifar10_load(const char *dir, const char *split, blo_dataset *ds, char *err,
                            size_t errlen);

/* ---- PNG images ----------------------------------------------------------------------------------
 * A decoded image: channels x height x width floats in [0, 1], channel-major (CHW). */
typedef struct blo_image {
    int64_t channels, height, width;
    float *pixels; /* [channels * height * width] host memory, owned; free with blo_image_free */
} blo_image;

/* Decodes a PNG held in memory (libpng) to channels = 1 (gray) or 3 (RGB). Every PNG colour
 * type and depth is read: gray, gray + alpha, palette (with or without transparency), RGB,
 * RGBA; 1, 2, 4, 8 and 16 bits; interlaced or not. Values are sample / (2^depth - 1), with no
 * gamma or colour-profile correction. Conversions, in double precision:
 *   - alpha (or tRNS transparency) is composited over white: v = a c + (1 - a);
 *   - gray from RGB is the luma 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601);
 *   - RGB from gray repeats the gray value in the three planes.
 * Images wider or taller than 16384 pixels, or of more than 2^26 pixels, are refused before
 * anything is allocated for them. Errors (BLO_ERR_FORMAT) name the file (`name`) and carry
 * libpng's message, e.g. "cat.png: IDAT: CRC error" or "cat.png: offset 90: the file ends
 * early (truncated)". */
blo_status blo_png_parse(const unsigned char *buf, size_t len, const char *name, int channels,
                         blo_image *out, char *err, size_t errlen);
/* The same on a file (read with blo_read_file, so a gzip'd PNG also reads). */
blo_status blo_png_load(const char *path, int channels, blo_image *out, char *err, size_t errlen);
void blo_image_free(blo_image *im);

/* Resizes channels planes of h x w pixels (src, channel-major) to oh x ow (dst) by area
 * averaging (a box filter): each output pixel is the mean of the source image over the
 * rectangle it covers, source pixels cut by its edges weighing by the part inside. When oh
 * divides h and ow divides w this is the plain mean of k x k blocks (average pooling); it
 * also enlarges (each output pixel then lies in one or two source pixels per axis). */
void blo_image_resize_area(const float *src, int64_t channels, int64_t h, int64_t w, float *dst,
                           int64_t oh, int64_t ow);

/* A class-per-folder image tree, as Omniglot or miniImageNet are distributed (after converting
 * their images to PNG):
 *     dir/<class A>/<image>.png ...
 *     dir/<class B>/<image>.png ...
 * Every non-hidden subfolder of dir is a class; classes in byte order of their names (strcmp,
 * as `LC_ALL=C ls`) get labels 0..C-1, and ds->class_name keeps the names (class_value[c] = c,
 * y = the label). In a class folder, every non-hidden file whose name ends in .png (any case)
 * is an image, taken in byte order of the names; other files, hidden files and deeper folders
 * are skipped; files directly in dir are skipped. Rows follow class order, then name order.
 *
 * Each image is decoded as blo_png_parse with `channels` (1 or 3) and, when side > 0, resized
 * to side x side by blo_image_resize_area (non-square images are stretched); with side == 0
 * every image must have the size of the first. ds->x is [n, channels * S * S] channel-major,
 * i.e. [n, channels, S, S] images for a conv net, values in [0, 1]; ds->image = {channels, S,
 * S}.
 *
 * Errors name the path: dir not a folder (BLO_ERR_IO), no class folders, a class folder with
 * no .png file, an image that does not decode (libpng's message: truncated, corrupt, not a
 * PNG), an image whose size differs from the first's when side == 0 (all BLO_ERR_FORMAT), a
 * bad side or channels (BLO_ERR_INVALID). */
blo_status blo_image_folder_load(const char *dir, int64_t side, int channels, blo_dataset *ds,
                                 char *err, size_t errlen);

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

/* ---- Graphs: the three-part format (Planetoid layout) ----------------------------------------
 * A folder holding
 *   features.libsvm  one line per node, in node order: "label idx:value ..." (LIBSVM); the label
 *                    is a class 0..65535, or -1 for a node without one (never in a split)
 *   edges.txt        one undirected edge per line, "i j", 0-based node ids; no self-loops, no
 *                    pair twice (i j and j i are the same pair)
 *   train.txt, val.txt, test.txt   one 0-based node id per line; the three do not overlap
 * '#' starts a comment and blank lines are skipped in the last four. */
typedef struct blo_graph_data {
    int64_t n, d, classes;  /* nodes, features, classes (largest label + 1) */
    blo_dataset features;   /* sparse CSR rows = nodes; features.y holds the labels as read */
    int64_t *label;         /* [n] class, or -1 */
    int64_t n_edges;
    int64_t *edges;         /* [2 n_edges]: pairs (i, j) with i < j, sorted */
    int64_t split_n[3];     /* train, validation, test */
    int64_t *split[3];      /* node ids in file order */
} blo_graph_data;
/* Loads dir (each file may be gzip'd: <file>.gz is tried first). Errors (BLO_ERR_IO /
 * BLO_ERR_FORMAT) name the file and line: a node id out of range, a self-loop, a duplicate
 * edge (and the line it repeats), an id twice in a split or in two splits, a split node with
 * no label, a label out of range (named by node). Free with blo_graph_data_free. */
blo_status blo_graph_load(const char *dir, blo_graph_data *g, char *err, size_t errlen);
void blo_graph_data_free(blo_graph_data *g);
/* The edge list of a graph of n_nodes nodes: *edges gets 2 * *n_edges ids, pairs (i, j) with
 * i < j in ascending order (blo_free it). */
blo_status blo_edges_parse(const char *buf, size_t len, const char *name, int64_t n_nodes,
                           int64_t **edges, int64_t *n_edges, char *err, size_t errlen);
/* A node-index file: *ids gets *count ids in file order and, when lines is not NULL, *lines
 * their line numbers (blo_free both). An id twice is an error. */
blo_status blo_node_index_parse(const char *buf, size_t len, const char *name, int64_t n_nodes,
                                int64_t **ids, int64_t **lines, int64_t *count, char *err,
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
#pragma GCC visibility pop
#endif
