/* plot.c — convergence plots of run logs, to SVG or PNG.
 *
 * One drawing routine lays out the panels (a grid of at most 2 columns), the axes with
 * "nice" ticks, one polyline per log and a legend, through a tiny canvas interface with two
 * back ends: SVG text, and an RGB raster written with libpng (lines by Bresenham with a
 * 2-pixel pen, text in a built-in 5x7 font scaled 2x, so no font library is needed).
 */
#include "runlog.h"

#include "blo/core.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#define W_PANEL 480
#define H_PANEL 320
#define MARGIN_L 92
#define MARGIN_R 18
#define MARGIN_T 34
#define MARGIN_B 46

static const unsigned PALETTE[8] = {0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e,
                                    0x9467bd, 0x8c564b, 0xe377c2, 0x17becf};

/* ---- Canvas -------------------------------------------------------------------------------- */
typedef struct canvas {
    int w, h;
    FILE *svg;          /* SVG back end */
    unsigned char *rgb; /* PNG back end: w * h * 3 */
} canvas;

static void put(canvas *c, int x, int y, unsigned col) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    unsigned char *p = c->rgb + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    p[0] = (unsigned char)(col >> 16);
    p[1] = (unsigned char)(col >> 8);
    p[2] = (unsigned char)col;
}

static void line(canvas *c, double x0, double y0, double x1, double y1, unsigned col, int width) {
    if (c->svg) {
        fprintf(c->svg,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#%06x\" "
                "stroke-width=\"%d\"/>\n",
                x0, y0, x1, y1, col, width);
        return;
    }
    int ax = (int)lround(x0), ay = (int)lround(y0), bx = (int)lround(x1), by = (int)lround(y1);
    int dx = abs(bx - ax), dy = -abs(by - ay), sx = ax < bx ? 1 : -1, sy = ay < by ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        for (int i = 0; i < width; i++)
            for (int j = 0; j < width; j++) put(c, ax + i, ay + j, col);
        if (ax == bx && ay == by) break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            ax += sx;
        }
        if (e2 <= dx) {
            e += dx;
            ay += sy;
        }
    }
}

/* 5x7 glyphs, rows top to bottom, bit 4 = leftmost column. Lower case draws as upper case. */
static const char GLYPH_CHARS[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,-+:/%()_=";
static const unsigned char GLYPHS[][7] = {
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
    {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}, {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}, {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}, {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}, {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}, {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}, {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08},
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}, {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00},
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}, {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00},
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}, {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},
};
#define GLYPH_SCALE 2
#define GLYPH_W (6 * GLYPH_SCALE) /* advance, with one column of spacing */

/* Text with its baseline at y; anchor 0 left, 1 centre, 2 right. */
static void text(canvas *c, double x, double y, const char *s, unsigned col, int anchor) {
    if (c->svg) {
        static const char *const A[3] = {"start", "middle", "end"};
        fprintf(c->svg,
                "<text x=\"%.1f\" y=\"%.1f\" fill=\"#%06x\" font-family=\"sans-serif\" "
                "font-size=\"13\" text-anchor=\"%s\">",
                x, y, col, A[anchor]);
        for (; *s; s++) {
            if (*s == '<') fputs("&lt;", c->svg);
            else if (*s == '&') fputs("&amp;", c->svg);
            else fputc(*s, c->svg);
        }
        fputs("</text>\n", c->svg);
        return;
    }
    int w = (int)strlen(s) * GLYPH_W;
    int x0 = (int)x - (anchor == 1 ? w / 2 : anchor == 2 ? w : 0);
    int y0 = (int)y - 7 * GLYPH_SCALE;
    for (int k = 0; s[k]; k++) {
        char ch = s[k] >= 'a' && s[k] <= 'z' ? (char)(s[k] - 32) : s[k];
        const char *pos = ch ? strchr(GLYPH_CHARS, ch) : NULL;
        if (!pos) continue; /* space and unknown characters: blank */
        const unsigned char *g = GLYPHS[pos - GLYPH_CHARS];
        for (int r = 0; r < 7; r++)
            for (int b = 0; b < 5; b++)
                if (g[r] & (0x10 >> b))
                    for (int i = 0; i < GLYPH_SCALE; i++)
                        for (int j = 0; j < GLYPH_SCALE; j++)
                            put(c, x0 + k * GLYPH_W + b * GLYPH_SCALE + i, y0 + r * GLYPH_SCALE + j, col);
    }
}

/* ---- Axes ------------------------------------------------------------------------------------ */

/* A tick step of 1, 2 or 5 times a power of ten giving about n ticks over [lo, hi]. */
static double nice_step(double lo, double hi, int n) {
    double raw = (hi - lo) / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(char *buf, size_t n, double v) {
    if (fabs(v) < 1e-12) v = 0;
    if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3))
        snprintf(buf, n, "%.0e", v);
    else
        snprintf(buf, n, "%.4g", v);
}

static void panel(canvas *c, int px, int py, const cli_table *tables, int nt,
                  const cli_plot_panel *p) {
    if (!p->y) return;
    if (p->tables) {
        tables = p->tables;
        nt = p->ntables;
    }
    double x0 = px + MARGIN_L, x1 = px + W_PANEL - MARGIN_R;
    double y0 = py + MARGIN_T, y1 = py + H_PANEL - MARGIN_B;
    double xl = INFINITY, xh = -INFINITY, yl = INFINITY, yh = -INFINITY;
    for (int t = 0; t < nt; t++) {
        int cx = cli_table_col(&tables[t], p->x), cy = cli_table_col(&tables[t], p->y);
        if (cx < 0 || cy < 0) continue;
        for (int64_t r = 0; r < tables[t].nrows; r++) {
            double xv = tables[t].v[r * tables[t].ncols + cx], yv = tables[t].v[r * tables[t].ncols + cy];
            if (!isfinite(xv) || !isfinite(yv) || (p->log_y && yv <= 0)) continue;
            if (p->log_y) yv = log10(yv);
            xl = fmin(xl, xv);
            xh = fmax(xh, xv);
            yl = fmin(yl, yv);
            yh = fmax(yh, yv);
        }
    }
    line(c, x0, y1, x1, y1, 0x000000, 1);
    line(c, x0, y0, x0, y1, 0x000000, 1);
    char title[160];
    snprintf(title, sizeof title, "%s%s", p->title ? p->title : p->y, p->log_y ? " (log)" : "");
    text(c, (x0 + x1) / 2, py + 22, title, 0x000000, 1);
    text(c, (x0 + x1) / 2, y1 + 40, p->x, 0x333333, 1);
    if (!isfinite(xl)) {
        text(c, (x0 + x1) / 2, (y0 + y1) / 2, "no data", 0x888888, 1);
        return;
    }
    if (xh == xl) xh = xl + 1;
    if (yh == yl) {
        yh += 0.5 * (fabs(yl) + 1e-12);
        yl -= 0.5 * (fabs(yl) + 1e-12);
    }
    double pad = 0.05 * (yh - yl);
    yl -= pad;
    yh += pad;
#define SX(v) (x0 + ((v) - xl) / (xh - xl) * (x1 - x0))
#define SY(v) (y1 - ((v) - yl) / (yh - yl) * (y1 - y0))
    char buf[32];
    double st = nice_step(xl, xh, 5);
    for (double v = ceil(xl / st) * st; v <= xh + 1e-9 * st; v += st) {
        line(c, SX(v), y1, SX(v), y1 + 5, 0x000000, 1);
        fmt_tick(buf, sizeof buf, v);
        text(c, SX(v), y1 + 20, buf, 0x333333, 1);
    }
    /* y ticks: nice values; on a log axis whole decades when the range spans one or more,
     * else nice values of the quantity itself placed at their logarithms. */
    double tv[64];
    int ntv = 0;
    if (p->log_y && yh - yl >= 1) {
        int step = (int)ceil((yh - yl) / 6);
        for (double e = ceil(yl); e <= yh && ntv < 64; e += step) tv[ntv++] = pow(10, e);
    } else {
        double lo = p->log_y ? pow(10, yl) : yl, hi = p->log_y ? pow(10, yh) : yh;
        st = nice_step(lo, hi, 5);
        for (double v = ceil(lo / st) * st; v <= hi + 1e-9 * st && ntv < 64; v += st) tv[ntv++] = v;
    }
    for (int i = 0; i < ntv; i++) {
        double v = p->log_y ? log10(tv[i]) : tv[i];
        if (!isfinite(v)) continue;
        line(c, x0 - 5, SY(v), x0, SY(v), 0x000000, 1);
        line(c, x0, SY(v), x1, SY(v), 0xe8e8e8, 1);
        fmt_tick(buf, sizeof buf, tv[i]);
        text(c, x0 - 8, SY(v) + 5, buf, 0x333333, 2);
    }
    for (int t = 0; t < nt; t++) {
        int cx = cli_table_col(&tables[t], p->x), cy = cli_table_col(&tables[t], p->y);
        if (cx < 0 || cy < 0) continue;
        unsigned col = PALETTE[t % 8];
        double lx = NAN, ly = NAN;
        /* SVG: one polyline per curve (a file of one element per point grows to megabytes). */
        if (c->svg) fprintf(c->svg, "<polyline fill=\"none\" stroke=\"#%06x\" stroke-width=\"2\" points=\"", col);
        for (int64_t r = 0; r < tables[t].nrows; r++) {
            double xv = tables[t].v[r * tables[t].ncols + cx], yv = tables[t].v[r * tables[t].ncols + cy];
            if (!isfinite(xv) || !isfinite(yv) || (p->log_y && yv <= 0)) continue;
            if (p->log_y) yv = log10(yv);
            if (c->svg)
                fprintf(c->svg, "%.1f,%.1f ", SX(xv), SY(yv));
            else if (isfinite(lx))
                line(c, SX(lx), SY(ly), SX(xv), SY(yv), col, 2);
            lx = xv;
            ly = yv;
        }
        if (c->svg) fputs("\"/>\n", c->svg);
    }
#undef SX
#undef SY
}

static void draw(canvas *c, const cli_table *tables, int nt, const cli_plot_panel *panels, int np,
                 int cols, int legend_h) {
    if (c->svg)
        fprintf(c->svg, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", c->w, c->h);
    for (int i = 0; i < np; i++)
        panel(c, (i % cols) * W_PANEL, (i / cols) * H_PANEL, tables, nt, &panels[i]);
    int ly = c->h - legend_h + 18;
    for (int t = 0; t < nt; t++) {
        int x = 20 + (t % 2) * (c->w / 2), y = ly + (t / 2) * 20;
        line(c, x, y - 5, x + 24, y - 5, PALETTE[t % 8], 3);
        const char *name = strrchr(tables[t].name, '/');
        text(c, x + 32, y, name ? name + 1 : tables[t].name, 0x000000, 0);
    }
}

bool cli_plot_write(const char *path, const cli_table *tables, int nt,
                    const cli_plot_panel *panels, int np, char *err, size_t errlen) {
    return cli_plot_write_grid(path, tables, nt, panels, np, np > 1 ? 2 : 1, err, errlen);
}

bool cli_plot_write_grid(const char *path, const cli_table *tables, int nt,
                         const cli_plot_panel *panels, int np, int cols, char *err,
                         size_t errlen) {
    if (cols < 1) cols = 1;
    int rows = (np + cols - 1) / cols;
    int legend_h = 12 + 20 * ((nt + 1) / 2);
    canvas c = {cols * W_PANEL, rows * H_PANEL + legend_h, NULL, NULL};
    size_t n = strlen(path);
    bool png = n >= 4 && !strcmp(path + n - 4, ".png");
    bool svg = n >= 4 && !strcmp(path + n - 4, ".svg");
    if (!png && !svg) {
        snprintf(err, errlen, "%s: the plot file must end in .svg or .png", path);
        return false;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write", path);
        return false;
    }
    if (svg) {
        c.svg = f;
        fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                   "viewBox=\"0 0 %d %d\">\n", c.w, c.h, c.w, c.h);
        draw(&c, tables, nt, panels, np, cols, legend_h);
        fputs("</svg>\n", f);
        bool ok = fclose(f) == 0;
        if (!ok) snprintf(err, errlen, "%s: writing failed", path);
        return ok;
    }
    c.rgb = blo_malloc((size_t)c.w * (size_t)c.h * 3);
    png_structp ps = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop pi = ps ? png_create_info_struct(ps) : NULL;
    if (!c.rgb || !ps || !pi) {
        png_destroy_write_struct(&ps, pi ? &pi : NULL);
        blo_free(c.rgb);
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return false;
    }
    memset(c.rgb, 0xff, (size_t)c.w * (size_t)c.h * 3);
    draw(&c, tables, nt, panels, np, cols, legend_h);
    if (setjmp(png_jmpbuf(ps))) {
        png_destroy_write_struct(&ps, &pi);
        blo_free(c.rgb);
        fclose(f);
        snprintf(err, errlen, "%s: writing the PNG failed", path);
        return false;
    }
    png_init_io(ps, f);
    png_set_IHDR(ps, pi, (png_uint_32)c.w, (png_uint_32)c.h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(ps, pi);
    for (int y = 0; y < c.h; y++) png_write_row(ps, c.rgb + (size_t)y * (size_t)c.w * 3);
    png_write_end(ps, pi);
    png_destroy_write_struct(&ps, &pi);
    blo_free(c.rgb);
    bool ok = fclose(f) == 0;
    if (!ok) snprintf(err, errlen, "%s: writing failed", path);
    return ok;
}
