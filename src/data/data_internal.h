/* data_internal.h — helpers shared by the loaders. */
#ifndef BLO_DATA_INTERNAL_H
#define BLO_DATA_INTERNAL_H

#include "../internal.h"
#include "blo/data.h"

/* Fills ds->label / num_classes / class_value from ds->y when every target is an integer
 * and there are at most 65536 distinct values; otherwise leaves label NULL. Returns false
 * only when memory runs out. */
bool blo__dataset_classes(blo_dataset *ds);
/* dir/file.gz when that file exists, dir/file otherwise (the loaders read both). */
void blo__data_path(char *path, size_t plen, const char *dir, const char *file);
/* The last path component, for messages. */
const char *blo__basename(const char *path);

/* A numeric CSV table: rows x cols finite numbers, row-major, each row's 1-based source line,
 * and with a header the column names (trimmed, quotes stripped; pointing into text). Blank
 * lines are skipped; every row must have the first line's field count. Errors name the line
 * and, for a field that is not a finite number, its column. */
typedef struct blo__table {
    int64_t rows;
    int cols;
    double *v;
    int64_t *line;
    char **names;        /* NULL without a header */
    int64_t header_line; /* its line number */
    char *text;
} blo__table;
blo_status blo__csv_table(const char *buf, size_t len, const char *name, bool header,
                          blo__table *t, char *err, size_t errlen);
void blo__table_free(blo__table *t);
/* The index of the header column named col, or -1. */
int blo__table_column(const blo__table *t, const char *col);

#endif
