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

#endif
