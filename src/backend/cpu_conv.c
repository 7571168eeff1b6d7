/* cpu_conv.c — TEMPORARY placeholder while the convolution kernels are written. */
#include "cpu.h"
void blo__cpu_im2col(const blo_tensor *x, const blo_conv2d_params *p, int kh, int kw, int oh,
                     int ow, blo_tensor *cols) {
    (void)x, (void)p, (void)kh, (void)kw, (void)oh, (void)ow, (void)cols;
}
void blo__cpu_col2im(const blo_tensor *cols, const blo_conv2d_params *p, int kh, int kw, int oh,
                     int ow, blo_tensor *x) {
    (void)x, (void)p, (void)kh, (void)kw, (void)oh, (void)ow, (void)cols;
}
void blo__cpu_max_pool2d(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out,
                         blo_tensor *argmax) {
    (void)x, (void)p, (void)out, (void)argmax;
}
void blo__cpu_avg_pool2d(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out) {
    (void)x, (void)p, (void)out;
}
void blo__cpu_avg_pool2d_adjoint(const blo_tensor *gout, const blo_pool2d_params *p,
                                 blo_tensor *gx) {
    (void)gout, (void)p, (void)gx;
}
