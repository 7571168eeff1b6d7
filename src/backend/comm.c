/* comm.c — communicators and host collectives (blo/dist.h): MPI when the build has it and a
 * launcher started the process, one rank otherwise. The CPU backend's all-reduce kernel
 * (cpu_comm.c) sums host buffers through blo__comm_sum_host; a device backend would put its
 * own transport behind the same table entry.
 *
 * The sum is deterministic and the same bits reach every rank (see blo/dist.h): the vector is
 * cut into R chunks, chunk j of every rank goes to rank j (MPI_Alltoallv), rank j adds them in
 * rank order in double and rounds once, and the chunks are gathered back (MPI_Allgatherv).
 * Short vectors are all-gathered whole and every rank adds them in rank order. */
#include "comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BLO_HAVE_MPI
#include <mpi.h>
#endif

/* At most this many elements in total (n R) take the all-gather path. */
#define SHORT_ELEMS 4096

struct blo_comm {
    int rank, size;
    int owned; /* made by blo_comm_split: freed by blo_comm_free */
#ifdef BLO_HAVE_MPI
    MPI_Comm mpi;
#endif
    uint64_t bytes, calls;
    double seconds, cpu; /* wall and process CPU time inside the sums */
    void *scratch; /* receive buffer of the sum, grown by blo__comm_reserve */
    size_t scratch_bytes;
};

static blo_comm world = {0, 1, 0,
#ifdef BLO_HAVE_MPI
                         MPI_COMM_NULL,
#endif
                         0, 0, 0, 0, NULL, 0};
static blo_comm self = {0, 1, 0,
#ifdef BLO_HAVE_MPI
                        MPI_COMM_NULL,
#endif
                        0, 0, 0, 0, NULL, 0};
#ifdef BLO_HAVE_MPI
static int started; /* blo_dist_init called MPI_Init */
#endif

/* Whether an MPI launcher started this process (Open MPI, PMIx, PMI-1/2 environments). */
static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int blo_dist_built_with_mpi(void) {
#ifdef BLO_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

blo_status blo_dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!launched()) return BLO_OK;
#ifdef BLO_HAVE_MPI
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return blo__fail(err, errlen, BLO_ERR_IO, "blo_dist_init: MPI_Init failed");
        started = 1;
        atexit(blo_dist_finalize);
    }
    world.mpi = MPI_COMM_WORLD;
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    self.mpi = MPI_COMM_SELF;
    return BLO_OK;
#else
    (void)argc, (void)argv;
    const char *sz = getenv("OMPI_COMM_WORLD_SIZE");
    if (sz && atoi(sz) == 1) return BLO_OK;
    return blo__fail(err, errlen, BLO_ERR_UNSUPPORTED,
                     "blo was built without MPI, but an MPI launcher started this process: "
                     "rebuild with MPI (scripts/install-deps; cmake -DBLO_WITH_MPI=ON) or run "
                     "one process without mpirun");
#endif
}

void blo_dist_finalize(void) {
#ifdef BLO_HAVE_MPI
    if (!started) return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
    started = 0;
#endif
    blo_free(world.scratch);
    world.scratch = NULL;
    world.scratch_bytes = 0;
}

blo_comm *blo_comm_world(void) {
    return &world;
}
blo_comm *blo_comm_self(void) {
    return &self;
}
int blo_comm_rank(const blo_comm *c) {
    return c ? c->rank : 0;
}
int blo_comm_size(const blo_comm *c) {
    return c ? c->size : 1;
}

blo_comm *blo_comm_split(blo_comm *c, int color, int key) {
    if (!c || color < 0) return NULL;
    blo_comm *g = blo_calloc(1, sizeof *g);
    if (!g) return NULL;
    g->owned = 1;
    g->size = 1;
#ifdef BLO_HAVE_MPI
    g->mpi = MPI_COMM_NULL;
    if (c->size > 1) {
        if (MPI_Comm_split(c->mpi, color, key, &g->mpi) != MPI_SUCCESS) {
            blo_free(g);
            return NULL;
        }
        MPI_Comm_rank(g->mpi, &g->rank);
        MPI_Comm_size(g->mpi, &g->size);
    }
#else
    (void)key;
#endif
    return g;
}

void blo_comm_free(blo_comm *c) {
    if (!c || !c->owned) return;
#ifdef BLO_HAVE_MPI
    if (c->mpi != MPI_COMM_NULL) MPI_Comm_free(&c->mpi);
#endif
    blo_free(c->scratch);
    blo_free(c);
}

uint64_t blo_comm_bytes_sent(const blo_comm *c) {
    return c ? c->bytes : 0;
}
uint64_t blo_comm_calls(const blo_comm *c) {
    return c ? c->calls : 0;
}
double blo_comm_seconds(const blo_comm *c, double *cpu) {
    if (cpu) *cpu = c ? c->cpu : 0;
    return c ? c->seconds : 0;
}
void blo_comm_reset_counts(blo_comm *c) {
    if (c) c->bytes = c->calls = 0, c->seconds = c->cpu = 0;
}

void blo_comm_abort(blo_comm *c, int code, const char *message) {
    if (!c || c->size <= 1) return;
    fprintf(stderr, "rank %d of %d: %s\n", c->rank, c->size, message ? message : "");
    fflush(stderr);
#ifdef BLO_HAVE_MPI
    MPI_Abort(c->mpi, code);
#else
    (void)code;
#endif
}

size_t blo__comm_scratch_bytes(const blo_comm *c, int64_t n, size_t esize) {
    if (!c || c->size <= 1) return 0;
    if (n * c->size <= SHORT_ELEMS) return (size_t)(n * c->size) * esize;
    return (size_t)((n / c->size + 1) * c->size) * esize;
}

blo_status blo__comm_reserve(blo_comm *c, size_t bytes) {
    if (!c || bytes <= c->scratch_bytes) return BLO_OK;
    void *p = blo_malloc(bytes);
    if (!p) return BLO_ERR_NOMEM;
    blo_free(c->scratch);
    c->scratch = p;
    c->scratch_bytes = bytes;
    return BLO_OK;
}

#ifdef BLO_HAVE_MPI
static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The chunk of rank j: count and first element. */
static void chunk(int64_t n, int size, int j, int64_t *count, int64_t *first) {
    int64_t q = n / size, r = n % size;
    *count = q + (j < r);
    *first = j * q + (j < r ? j : r);
}

/* dst[k] = Σ_j parts[j][k] over j = 0 .. R−1 in that order, in double, rounded once. */
static void add_parts(blo_dtype dt, const void *parts, int R, int64_t stride, int64_t m,
                      void *dst) {
    for (int64_t k = 0; k < m; k++) {
        double acc = 0;
        for (int j = 0; j < R; j++)
            acc += dt == BLO_F32 ? (double)((const float *)parts)[j * stride + k]
                                 : ((const double *)parts)[j * stride + k];
        if (dt == BLO_F32)
            ((float *)dst)[k] = (float)acc;
        else
            ((double *)dst)[k] = acc;
    }
}
#endif

void blo__comm_sum_host(blo_comm *c, blo_dtype dt, void *buf, int64_t n) {
    if (!c || c->size <= 1 || n <= 0) return;
#ifdef BLO_HAVE_MPI
    int R = c->size, me = c->rank;
    size_t es = dt == BLO_F32 ? 4 : 8;
    MPI_Datatype t = dt == BLO_F32 ? MPI_FLOAT : MPI_DOUBLE;
    c->calls++;
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (n * R <= SHORT_ELEMS) {
        MPI_Allgather(buf, (int)n, t, c->scratch, (int)n, t, c->mpi);
        add_parts(dt, c->scratch, R, n, n, buf);
        c->bytes += (uint64_t)(R - 1) * (uint64_t)n * es;
        c->seconds += clock_s(CLOCK_MONOTONIC) - t0;
        c->cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        return;
    }
    int sc[R], sd[R], rc[R], rd[R];
    int64_t mine, myfirst;
    chunk(n, R, me, &mine, &myfirst);
    for (int j = 0; j < R; j++) {
        int64_t cnt, first;
        chunk(n, R, j, &cnt, &first);
        sc[j] = (int)cnt;
        sd[j] = (int)first;
        rc[j] = (int)mine;
        rd[j] = (int)(j * mine);
    }
    MPI_Alltoallv(buf, sc, sd, t, c->scratch, rc, rd, t, c->mpi);
    add_parts(dt, c->scratch, R, mine, mine, (char *)buf + (size_t)myfirst * es);
    MPI_Allgatherv(MPI_IN_PLACE, 0, t, buf, sc, sd, t, c->mpi);
    c->bytes += ((uint64_t)(n - mine) + (uint64_t)(R - 1) * (uint64_t)mine) * es;
    c->seconds += clock_s(CLOCK_MONOTONIC) - t0;
    c->cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
#else
    (void)dt, (void)buf;
#endif
}

void blo_comm_sum_f64(blo_comm *c, double *buf, int64_t n) {
    if (!c || c->size <= 1 || !buf || n <= 0) return;
    if (blo__comm_reserve(c, blo__comm_scratch_bytes(c, n, sizeof(double)))) {
        blo_comm_abort(c, 1, "blo_comm_sum_f64: out of memory");
        return;
    }
    blo__comm_sum_host(c, BLO_F64, buf, n);
}

void blo_comm_bcast_bytes(blo_comm *c, void *buf, int64_t n, int root) {
    if (!c || c->size <= 1 || !buf || n <= 0) return;
#ifdef BLO_HAVE_MPI
    c->calls++;
    if (c->rank == root) c->bytes += (uint64_t)n * (uint64_t)(c->size - 1);
    MPI_Bcast(buf, (int)n, MPI_BYTE, root, c->mpi);
#else
    (void)root;
#endif
}

void blo_comm_barrier(blo_comm *c) {
    if (!c || c->size <= 1) return;
#ifdef BLO_HAVE_MPI
    MPI_Barrier(c->mpi);
#endif
}
