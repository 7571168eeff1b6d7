/* ctx.c — contexts: arenas that own tensors and tape nodes, with mark/rewind, and the first
 * error recorded since the last clear. */
#include "../internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_CHUNK ((size_t)1 << 20)

blo_ctx *blo_ctx_new(size_t chunk_bytes) {
    blo_ctx *ctx = blo_calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->chunk_bytes = chunk_bytes ? (chunk_bytes + 63) & ~(size_t)63 : DEFAULT_CHUNK;
    ctx->recording = 1; /* ctx->be stays NULL until the tensor layer binds it */
    return ctx;
}

void blo_ctx_free(blo_ctx *ctx) {
    if (!ctx) return;
    for (size_t i = 0; i < ctx->nchunks; i++) blo_free(ctx->chunks[i]);
    for (size_t i = 0; i < ctx->nbig; i++) blo_free(ctx->big[i]);
    for (size_t i = 0; i < ctx->ncache; i++) blo_free(ctx->cache[i]);
    blo_free(ctx->cache);
    blo_free(ctx->cache_size);
    blo_free(ctx->chunks);
    blo_free(ctx->big);
    blo_free(ctx->big_size);
    blo_free(ctx);
}

static void note_bytes(blo_ctx *ctx, size_t add) {
    ctx->bytes += add;
    if (ctx->bytes > ctx->peak) ctx->peak = ctx->bytes;
    if (ctx->bytes > ctx->high) ctx->high = ctx->bytes;
}

/* Grows an array of pointers / sizes held by blo_malloc. */
static bool grow(void **arr, size_t elem, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *p = blo_malloc(nc * elem);
    if (!p) return false;
    if (*arr) memcpy(p, *arr, *cap * elem);
    blo_free(*arr);
    *arr = p;
    *cap = nc;
    return true;
}

void *blo__ctx_alloc(blo_ctx *ctx, size_t bytes) {
    size_t need = (bytes + 63) & ~(size_t)63;
    if (need < bytes) goto nomem;
    if (need == 0) need = 64;
    if (need > ctx->chunk_bytes / 4) {
        if (!grow((void **)&ctx->big, sizeof(void *), &ctx->cap_big, ctx->nbig + 1))
            goto nomem;
        if (!grow((void **)&ctx->big_size, sizeof(size_t), &ctx->cap_big_size, ctx->nbig + 1))
            goto nomem;
        /* Room in the cache for every big block there is, so that a rewind never allocates. */
        size_t blocks = ctx->nbig + ctx->ncache + 1;
        if (!grow((void **)&ctx->cache, sizeof(void *), &ctx->cap_cache, blocks) ||
            !grow((void **)&ctx->cache_size, sizeof(size_t), &ctx->cap_cache_size, blocks))
            goto nomem;
        /* The smallest cached block that fits without wasting more than half of it. */
        size_t best = ctx->ncache;
        for (size_t i = 0; i < ctx->ncache; i++)
            if (ctx->cache_size[i] >= need && ctx->cache_size[i] / 2 <= need &&
                (best == ctx->ncache || ctx->cache_size[i] < ctx->cache_size[best]))
                best = i;
        void *p;
        if (best < ctx->ncache) {
            p = ctx->cache[best];
            need = ctx->cache_size[best];
            ctx->cache_bytes -= need;
            ctx->ncache--;
            ctx->cache[best] = ctx->cache[ctx->ncache];
            ctx->cache_size[best] = ctx->cache_size[ctx->ncache];
        } else {
            p = blo_malloc(need);
        }
        if (!p) goto nomem;
        ctx->big[ctx->nbig] = p;
        ctx->big_size[ctx->nbig++] = need;
        note_bytes(ctx, need);
        return p;
    }
    if (ctx->nchunks == 0 || ctx->used + need > ctx->chunk_bytes) {
        size_t next = ctx->nchunks == 0 ? 0 : ctx->cur + 1;
        if (next >= ctx->nchunks) {
            if (!grow((void **)&ctx->chunks, sizeof(char *), &ctx->cap_chunks, ctx->nchunks + 1))
                goto nomem;
            char *c = blo_malloc(ctx->chunk_bytes);
            if (!c) goto nomem;
            ctx->chunks[ctx->nchunks++] = c;
        }
        /* The tail of the chunk left behind counts as used until a rewind past it. */
        if (ctx->nchunks > 1 && next > 0) note_bytes(ctx, ctx->chunk_bytes - ctx->used);
        ctx->cur = next;
        ctx->used = 0;
    }
    void *p = ctx->chunks[ctx->cur] + ctx->used;
    ctx->used += need;
    note_bytes(ctx, need);
    return p;
nomem:
    blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return NULL;
}

blo_mark blo_ctx_mark(const blo_ctx *ctx) {
    blo_mark m = {ctx->cur, ctx->used, ctx->nbig, ctx->bytes};
    return m;
}

void blo_ctx_rewind(blo_ctx *ctx, blo_mark m) {
    if (!ctx) return;
    while (ctx->nbig > m.nbig) {
        ctx->nbig--;
        void *b = ctx->big[ctx->nbig];
        size_t sz = ctx->big_size[ctx->nbig];
        if (ctx->cache_bytes + sz <= ctx->high && ctx->ncache < ctx->cap_cache &&
            ctx->ncache < ctx->cap_cache_size) {
            ctx->cache[ctx->ncache] = b;
            ctx->cache_size[ctx->ncache++] = sz;
            ctx->cache_bytes += sz;
        } else {
            blo_free(b);
        }
    }
    if (ctx->nchunks > 0) {
        ctx->cur = m.chunk;
        ctx->used = m.used;
    }
    ctx->bytes = m.bytes;
}

size_t blo_ctx_bytes(const blo_ctx *ctx) {
    return ctx ? ctx->bytes : 0;
}

size_t blo_ctx_peak_bytes(const blo_ctx *ctx) {
    return ctx ? ctx->peak : 0;
}

blo_status blo_ctx_status(const blo_ctx *ctx) {
    return ctx ? ctx->status : BLO_ERR_INVALID;
}

const char *blo_ctx_error(const blo_ctx *ctx) {
    return ctx ? ctx->msg : "no context";
}

void blo_ctx_clear_error(blo_ctx *ctx) {
    if (!ctx) return;
    ctx->status = BLO_OK;
    ctx->msg[0] = 0;
}

blo_status blo_ctx_set_error(blo_ctx *ctx, blo_status s, const char *fmt, ...) {
    if (!ctx || ctx->status != BLO_OK || s == BLO_OK) return s;
    ctx->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    return s;
}

int blo_ctx_set_recording(blo_ctx *ctx, int on) {
    if (!ctx) return 0;
    int old = ctx->recording;
    ctx->recording = on ? 1 : 0;
    return old;
}

int blo_ctx_recording(const blo_ctx *ctx) {
    return ctx ? ctx->recording : 0;
}
