/* fuzz_png.c — libFuzzer target: any byte string given to the PNG decoder gives an image or a
 * clean error, never a crash, a leak or undefined behaviour. The first byte picks gray or RGB
 * output, so both conversions are driven. */
#include "blo/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    blo_image im;
    char err[256];
    int channels = size > 0 && (data[0] & 1) ? 3 : 1;
    if (blo_png_parse(data, size, "fuzz", channels, &im, err, sizeof err) == BLO_OK) {
        /* A decoded image also goes through the resize, to a size that is not a divisor. */
        float out[3 * 5 * 7];
        blo_image_resize_area(im.pixels, im.channels, im.height, im.width, out, 5, 7);
        blo_image_free(&im);
    }
    return 0;
}
