/* fuzz_graph.c — libFuzzer target for the graph format's edge-list and node-index parsers.
 * The first byte sets the node count (1..256), so ids both in and out of range are reached. */
#include "blo/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size == 0) return 0;
    int64_t n_nodes = (int64_t)data[0] + 1, *ids = NULL, *lines = NULL, n = 0;
    char err[256];
    const char *text = (const char *)data + 1;
    if (blo_edges_parse(text, size - 1, "fuzz", n_nodes, &ids, &n, err, sizeof err) == BLO_OK)
        blo_free(ids);
    if (blo_node_index_parse(text, size - 1, "fuzz", n_nodes, &ids, &lines, &n, err,
                             sizeof err) == BLO_OK) {
        blo_free(ids);
        blo_free(lines);
    }
    return 0;
}
