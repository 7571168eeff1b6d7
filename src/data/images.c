/* images.c — PNG decoding (libpng, from memory), area-averaging resize, and the
 * class-per-folder image tree loader.
 *
 * Decoding: libpng's transforms bring every PNG to 8 or 16 bits per sample with 1 (gray),
 * 2 (gray + alpha), 3 (RGB) or 4 (RGBA) samples per pixel — palettes expanded to RGB, low-depth
 * gray to 8 bits, tRNS transparency to an alpha channel, interlaced passes merged — and then
 * the samples are converted here in double precision (alpha over white, BT.601 luma for gray).
 * libpng reports errors by calling our error function, which keeps the message and longjmps
 * back to the setjmp in decode(); everything decode() allocates lives in a job struct owned by
 * its caller, so nothing is lost on that jump.
 *
 * Resize: a box filter. Along one axis of n source pixels resized to m, put source pixel p on
 * [p m, (p + 1) m) and output pixel i on [i n, (i + 1) n) (both in units of 1 / (n m) of the
 * image); the weight of p in i is the integer length of the overlap, and the weights of one
 * output pixel sum to n. Output (i, j) = Σ_p Σ_q wy(i, p) wx(j, q) src(p, q) / (h w). */
#include "data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PNG_MAX_SIDE 16384
#define PNG_MAX_PIXELS ((int64_t)1 << 26)

void blo_image_free(blo_image *im) {
    if (!im) return;
    blo_free(im->pixels);
    memset(im, 0, sizeof *im);
}

/* ---- decoding -------------------------------------------------------------------------------- */
typedef struct png_job {
    const unsigned char *buf;
    size_t len, pos;
    png_structp png;
    png_infop info;
    unsigned char *pix;  /* h rows of rowbytes */
    png_bytep *rows;
    uint32_t w, h;
    int samples, depth;  /* per pixel after the transforms: 1-4; 8 or 16 */
    size_t rowbytes;
    int nomem;
    char msg[200], warning[120]; /* libpng's error; its last warning, which may explain it */
} png_job;

static void job_read(png_structp png, png_bytep out, size_t n) {
    png_job *j = png_get_io_ptr(png);
    if (n > j->len - j->pos) {
        snprintf(j->msg, sizeof j->msg, "offset %zu: the file ends early (truncated)", j->len);
        j->pos = j->len;
        png_longjmp(png, 1);
    }
    memcpy(out, j->buf + j->pos, n);
    j->pos += n;
}

static void job_error(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    if (j->warning[0])
        snprintf(j->msg, sizeof j->msg, "%s (%s)", msg, j->warning);
    else
        snprintf(j->msg, sizeof j->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* A warning alone does not stop the decoding (an ancillary chunk ignored, say); it is kept for
 * the message of an error that follows: "Invalid IHDR data (Image width exceeds user limit)". */
static void job_warning(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    snprintf(j->warning, sizeof j->warning, "%s", msg);
}

/* Reads the whole image into j->pix; returns false with j->msg set on any error. */
static bool decode(png_job *j) {
    if (setjmp(png_jmpbuf(j->png))) return false;
    png_set_read_fn(j->png, j, job_read);
    png_set_user_limits(j->png, PNG_MAX_SIDE, PNG_MAX_SIDE);
    png_read_info(j->png, j->info);
    int color = png_get_color_type(j->png, j->info), depth = png_get_bit_depth(j->png, j->info);
    j->w = png_get_image_width(j->png, j->info);
    j->h = png_get_image_height(j->png, j->info);
    if ((int64_t)j->w * j->h > PNG_MAX_PIXELS) {
        snprintf(j->msg, sizeof j->msg, "%u x %u pixels, more than the 2^26 accepted", j->w, j->h);
        return false;
    }
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(j->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(j->png);
    if (png_get_valid(j->png, j->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(j->png);
    png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);
    j->samples = png_get_channels(j->png, j->info);
    j->depth = png_get_bit_depth(j->png, j->info);
    j->rowbytes = png_get_rowbytes(j->png, j->info);
    if (j->samples < 1 || j->samples > 4 || (j->depth != 8 && j->depth != 16) ||
        j->rowbytes != (size_t)j->w * (size_t)j->samples * (size_t)(j->depth / 8)) {
        snprintf(j->msg, sizeof j->msg, "unexpected layout after expansion (%d samples of %d bits)",
                 j->samples, j->depth);
        return false;
    }
    j->pix = blo_malloc(j->rowbytes * j->h); /* w, h >= 1: libpng refuses zero sizes */
    j->rows = blo_malloc(sizeof(png_bytep) * j->h);
    if (!j->pix || !j->rows) {
        j->nomem = 1;
        snprintf(j->msg, sizeof j->msg, "out of memory");
        return false;
    }
    for (uint32_t r = 0; r < j->h; r++) j->rows[r] = j->pix + (size_t)r * j->rowbytes;
    png_read_image(j->png, j->rows);
    png_read_end(j->png, NULL);
    return true;
}

/* Sample k (0-based) of pixel p, scaled to [0, 1]. */
static double sample(const png_job *j, size_t p, int k) {
    size_t at = p * (size_t)j->samples + (size_t)k;
    if (j->depth == 8) return j->pix[at] / 255.0;
    return (j->pix[2 * at] << 8 | j->pix[2 * at + 1]) / 65535.0;
}

blo_status blo_png_parse(const unsigned char *buf, size_t len, const char *name, int channels,
                         blo_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "%s: %d channels asked for (1 or 3)", name,
                         channels);
    if (len < 8 || png_sig_cmp(buf, 0, 8))
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                         "%s: offset 0: not a PNG file (no PNG signature)", name);
    png_job j;
    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.len = len;
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, job_error, job_warning);
    j.info = j.png ? png_create_info_struct(j.png) : NULL;
    blo_status st = BLO_OK;
    if (!j.info) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
    } else if (!decode(&j)) {
        st = blo__fail(err, errlen, j.nomem ? BLO_ERR_NOMEM : BLO_ERR_FORMAT, "%s: %s", name,
                       j.msg);
    } else {
        size_t np = (size_t)j.w * j.h;
        out->pixels = blo_malloc(sizeof(float) * (size_t)channels * np);
        if (!out->pixels) st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
    }
    if (!st) {
        size_t np = (size_t)j.w * j.h;
        int color = j.samples >= 3, alpha = j.samples == 2 || j.samples == 4;
        for (size_t p = 0; p < np; p++) {
            double v[3], a = alpha ? sample(&j, p, j.samples - 1) : 1.0;
            for (int k = 0; k < 3; k++) {
                double c = sample(&j, p, color ? k : 0);
                v[k] = alpha ? a * c + (1 - a) : c;
            }
            if (channels == 1)
                out->pixels[p] = (float)(color ? 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2] : v[0]);
            else
                for (int k = 0; k < 3; k++) out->pixels[(size_t)k * np + p] = (float)v[k];
        }
        out->channels = channels;
        out->height = j.h;
        out->width = j.w;
    }
    png_destroy_read_struct(j.png ? &j.png : NULL, j.info ? &j.info : NULL, NULL);
    blo_free(j.pix);
    blo_free(j.rows);
    return st;
}

blo_status blo_png_load(const char *path, int channels, blo_image *out, char *err, size_t errlen) {
    unsigned char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    blo_status st = blo_read_file(path, &buf, &len, err, errlen);
    if (st) return st;
    st = blo_png_parse(buf, len, path, channels, out, err, errlen);
    blo_free(buf);
    return st;
}

/* ---- resize ---------------------------------------------------------------------------------- */
/* The source pixels [*p0, *p1) that output pixel i of m overlaps along an axis of n. */
static void box_span(int64_t i, int64_t n, int64_t m, int64_t *p0, int64_t *p1) {
    *p0 = i * n / m;
    *p1 = ((i + 1) * n + m - 1) / m;
}

/* The overlap of source pixel p with output pixel i (units of 1 / (n m) of the axis). */
static int64_t box_weight(int64_t i, int64_t p, int64_t n, int64_t m) {
    int64_t lo = i * n > p * m ? i * n : p * m;
    int64_t hi = (i + 1) * n < (p + 1) * m ? (i + 1) * n : (p + 1) * m;
    return hi > lo ? hi - lo : 0;
}

void blo_image_resize_area(const float *src, int64_t channels, int64_t h, int64_t w, float *dst,
                           int64_t oh, int64_t ow) {
    if (oh == h && ow == w) {
        memcpy(dst, src, sizeof(float) * (size_t)(channels * h * w));
        return;
    }
    double area = (double)h * (double)w;
    for (int64_t c = 0; c < channels; c++) {
        const float *s = src + c * h * w;
        float *o = dst + c * oh * ow;
        for (int64_t i = 0; i < oh; i++) {
            int64_t p0, p1;
            box_span(i, h, oh, &p0, &p1);
            for (int64_t jx = 0; jx < ow; jx++) {
                int64_t q0, q1;
                box_span(jx, w, ow, &q0, &q1);
                double sum = 0;
                for (int64_t p = p0; p < p1; p++) {
                    double row = 0;
                    for (int64_t q = q0; q < q1; q++)
                        row += (double)box_weight(jx, q, w, ow) * s[p * w + q];
                    sum += (double)box_weight(i, p, h, oh) * row;
                }
                o[i * ow + jx] = (float)(sum / area);
            }
        }
    }
}

/* ---- the class-per-folder tree --------------------------------------------------------------- */
typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void names_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) blo_free(l->v[i]);
    blo_free(l->v);
    memset(l, 0, sizeof *l);
}

static bool names_push(name_list *l, const char *s) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        char **nv = blo_malloc(sizeof(char *) * nc);
        if (!nv) return false;
        if (l->n) memcpy(nv, l->v, sizeof(char *) * l->n);
        blo_free(l->v);
        l->v = nv;
        l->cap = nc;
    }
    size_t k = strlen(s);
    char *c = blo_malloc(k + 1);
    if (!c) return false;
    memcpy(c, s, k + 1);
    l->v[l->n++] = c;
    return true;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_png_name(const char *s) {
    size_t k = strlen(s);
    if (k < 4) return false;
    const char *e = s + k - 4, *want = ".png";
    for (int i = 0; i < 4; i++) {
        char c = e[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != want[i]) return false;
    }
    return true;
}

/* The non-hidden entries of dir that are folders (dirs = 1) or .png files (dirs = 0), sorted. */
static blo_status list_dir(const char *dir, int dirs, name_list *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return blo__fail(err, errlen, BLO_ERR_IO, "%s: cannot open the folder: %s", dir,
                         strerror(errno));
    char path[4096];
    struct dirent *e;
    blo_status st = BLO_OK;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (!dirs && !is_png_name(e->d_name)) continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            st = blo__fail(err, errlen, BLO_ERR_IO, "%s/%s: path too long", dir, e->d_name);
            break;
        }
        struct stat sb;
        if (stat(path, &sb)) continue; /* a dangling link */
        if (dirs ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)) continue;
        if (!names_push(out, e->d_name))
            st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", dir);
    }
    closedir(d);
    if (st) {
        names_free(out);
        return st;
    }
    if (out->n) qsort(out->v, out->n, sizeof(char *), cmp_name);
    return BLO_OK;
}

blo_status blo_image_folder_load(const char *dir, int64_t side, int channels, blo_dataset *ds,
                                 char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (channels != 1 && channels != 3)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "%s: %d channels asked for (1 or 3)", dir,
                         channels);
    if (side < 0 || side > PNG_MAX_SIDE)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "%s: image side %lld (0 keeps the images' size, at most %d)", dir,
                         (long long)side, PNG_MAX_SIDE);
    struct stat sb;
    if (stat(dir, &sb))
        return blo__fail(err, errlen, BLO_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return blo__fail(err, errlen, BLO_ERR_IO,
                         "%s: not a directory (a folder with one subfolder of PNG images per "
                         "class expected)", dir);
    name_list classes, *files = NULL;
    blo_status st = list_dir(dir, 1, &classes, err, errlen);
    if (st) return st;
    int64_t C = (int64_t)classes.n, n = 0;
    char path[4096];
    blo_image im;
    memset(&im, 0, sizeof im);
    if (C == 0) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                       "%s: no class folders (one subfolder of PNG images per class expected)",
                       dir);
        goto out;
    }
    files = blo_calloc((size_t)C, sizeof *files);
    if (!files) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", dir);
        goto out;
    }
    for (int64_t c = 0; c < C && !st; c++) {
        snprintf(path, sizeof path, "%s/%s", dir, classes.v[c]);
        st = list_dir(path, 0, &files[c], err, errlen);
        if (!st && files[c].n == 0)
            st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                           "%s: a class folder without .png images", path);
        n += (int64_t)files[c].n;
    }
    if (st) goto out;
    ds->n = n;
    ds->num_classes = C;
    ds->y = blo_malloc(sizeof(double) * (size_t)n);
    ds->label = blo_malloc(sizeof(int64_t) * (size_t)n);
    ds->class_value = blo_malloc(sizeof(double) * (size_t)C);
    ds->class_name = blo_calloc((size_t)C, sizeof(char *));
    if (!ds->y || !ds->label || !ds->class_value || !ds->class_name) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", dir);
        goto out;
    }
    for (int64_t c = 0; c < C; c++) { /* the names move to the dataset */
        ds->class_value[c] = (double)c;
        ds->class_name[c] = classes.v[c];
        classes.v[c] = NULL;
    }
    for (int64_t c = 0, i = 0; c < C; c++)
        for (size_t f = 0; f < files[c].n; f++, i++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, ds->class_name[c], files[c].v[f]);
            if ((st = blo_png_load(path, channels, &im, err, errlen))) goto out;
            if (!ds->x) { /* the first image fixes the row size */
                int64_t oh = side ? side : im.height, ow = side ? side : im.width;
                if (oh * ow * channels > ((int64_t)1 << 40) / n) {
                    st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                                   "%s: %lld images of %lld x %lld pixels are too many", dir,
                                   (long long)n, (long long)oh, (long long)ow);
                    goto out;
                }
                ds->image[0] = channels;
                ds->image[1] = oh;
                ds->image[2] = ow;
                ds->d = oh * ow * channels;
                ds->x = blo_malloc(sizeof(float) * (size_t)(n * ds->d));
                if (!ds->x) {
                    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", dir);
                    goto out;
                }
            }
            if (!side && (im.height != ds->image[1] || im.width != ds->image[2])) {
                st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                               "%s: %lld x %lld pixels, but %s/%s is %lld x %lld (all images "
                               "must have one size, or give a side to resize them to)",
                               path, (long long)im.height, (long long)im.width,
                               ds->class_name[0], files[0].v[0], (long long)ds->image[1],
                               (long long)ds->image[2]);
                goto out;
            }
            blo_image_resize_area(im.pixels, channels, im.height, im.width, ds->x + i * ds->d,
                                  ds->image[1], ds->image[2]);
            blo_image_free(&im);
            ds->label[i] = c;
            ds->y[i] = (double)c;
        }
out:
    blo_image_free(&im);
    if (files)
        for (int64_t c = 0; c < C; c++) names_free(&files[c]);
    blo_free(files);
    names_free(&classes);
    if (st) blo_dataset_free(ds);
    return st;
}
