/* imgcmp.c: compares two images' RGB, as the engine tests need.
 *
 * usage: imgcmp A B [--within1 FRAC] [--within2 FRAC] [--psnr DB]
 *        imgcmp --info FILE     prints "WxH FORMAT alpha=0|1"
 * Prints one line: size, share of 8-bit values within +-1 and +-2, PSNR,
 * largest difference.  Exits 0 when every given threshold holds, 1 when one
 * fails, 2 on a usage or decode error.  Sizes must match. */
#include "image.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load(const char *path, struct sf_image *img)
{
    uint8_t *d;
    size_t n;
    char why[256];

    if (sf_read_file(path, 1 << 30, &d, &n) ||
        sf_image_decode(d, n, 1ULL << 32, img, why, sizeof why)) {
        fprintf(stderr, "imgcmp: %s: cannot read (%s)\n", path, why);
        return -1;
    }
    free(d);
    return 0;
}

int main(int argc, char **argv)
{
    struct sf_image a, b;
    double within1 = -1, within2 = -1, psnr_min = -1;
    size_t n1 = 0, n2 = 0, total;
    double se = 0, psnr;
    int maxd = 0;

    if (argc == 3 && !strcmp(argv[1], "--info")) {
        uint8_t *d;
        size_t n;
        enum sf_format f;
        int w, h;
        char why[256];
        if (load(argv[2], &a) || sf_read_file(argv[2], 1 << 30, &d, &n) ||
            sf_image_probe(d, n, &f, &w, &h, why, sizeof why))
            return 2;
        printf("%dx%d %s alpha=%d\n", a.w, a.h, sf_format_name(f), a.alpha != NULL);
        return 0;
    }
    if (argc < 3)
        return fprintf(stderr, "usage: imgcmp A B [--within1 F] [--within2 F] [--psnr DB]\n"), 2;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--within1")) within1 = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--within2")) within2 = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--psnr")) psnr_min = atof(argv[i + 1]);
        else return fprintf(stderr, "imgcmp: bad option %s\n", argv[i]), 2;
    }
    if (load(argv[1], &a) || load(argv[2], &b))
        return 2;
    if (a.w != b.w || a.h != b.h) {
        printf("size differs: %dx%d vs %dx%d\n", a.w, a.h, b.w, b.h);
        return 1;
    }
    total = (size_t)a.w * a.h * 3;
    for (size_t i = 0; i < total; i++) {
        int d = abs((int)a.rgb[i] - (int)b.rgb[i]);
        n1 += d <= 1;
        n2 += d <= 2;
        se += (double)d * d;
        if (d > maxd)
            maxd = d;
    }
    psnr = se == 0 ? 99.0 : 10 * log10(255.0 * 255.0 / (se / total));
    printf("%dx%d within1=%.5f within2=%.5f psnr=%.2f maxdiff=%d\n", a.w, a.h,
           (double)n1 / total, (double)n2 / total, psnr, maxd);
    if ((within1 >= 0 && (double)n1 / total < within1) ||
        (within2 >= 0 && (double)n2 / total < within2) || (psnr_min >= 0 && psnr < psnr_min))
        return 1;
    return 0;
}
