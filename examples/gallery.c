/* gallery.c: a contact sheet of one photo in every style.
 *
 * usage: gallery OUT.png TILE_SIDE IMAGE... [-- IMAGE...]...
 * Each IMAGE (the original first, then its styled versions, e.g. read
 * from a mount's styled/<style>/ folders or written by `stylefs stylize`)
 * is fitted into a TILE_SIDE square tile; tiles go in rows of up to 5 on a
 * dark background with a 8-pixel gutter, and "--" starts a new row.  Decoding, downscaling and the PNG
 * (or JPEG, by OUT's name) encoding are stylefs's own (src/image.c).
 * `make gallery` builds it and writes build/gallery.png. */
#include "image.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int side, n = argc - 3, cols, rows, gut = 8;
    struct sf_image sheet = { 0 };
    enum sf_format fmt;
    uint8_t *out;
    size_t outlen;
    char why[256];

    if (argc < 4 || (side = atoi(argv[2])) < 16 || side > 4096) {
        fprintf(stderr, "usage: gallery OUT.png TILE_SIDE IMAGE...\n");
        return 2;
    }
    if ((fmt = sf_format_for_output(argv[1])) == SF_FMT_UNKNOWN) {
        fprintf(stderr, "gallery: %s: write .png or .jpg\n", argv[1]);
        return 2;
    }
    /* the grid: up to 5 a row, "--" starts a new one */
    int *col = calloc((size_t)n, sizeof *col), *row = calloc((size_t)n, sizeof *row), c = 0, r = 0, tiles = 0;
    if (!col || !row)
        return 1;
    cols = 1;
    for (int i = 0; i < n; i++) {
        if (!strcmp(argv[3 + i], "--")) {
            col[i] = -1;
            if (c) {
                c = 0;
                r++;
            }
            continue;
        }
        if (c == 5) {
            c = 0;
            r++;
        }
        col[i] = c++;
        row[i] = r;
        cols = c > cols ? c : cols;
        tiles++;
    }
    rows = r + (c > 0);
    sheet.w = cols * (side + gut) + gut;
    sheet.h = rows * (side + gut) + gut;
    sheet.rgb = malloc((size_t)sheet.w * sheet.h * 3);
    if (!sheet.rgb)
        return 1;
    memset(sheet.rgb, 32, (size_t)sheet.w * sheet.h * 3);
    for (int i = 0; i < n; i++) {
        struct sf_image t;
        uint8_t *d;
        size_t len;
        if (col[i] < 0)
            continue;
        if (sf_read_file(argv[3 + i], 1 << 30, &d, &len) ||
            sf_image_decode(d, len, 100000000, &t, why, sizeof why) || sf_image_fit(&t, side)) {
            fprintf(stderr, "gallery: %s: cannot read\n", argv[3 + i]);
            return 1;
        }
        free(d);
        int x0 = gut + col[i] * (side + gut) + (side - t.w) / 2;
        int y0 = gut + row[i] * (side + gut) + (side - t.h) / 2;
        for (int y = 0; y < t.h; y++)
            memcpy(sheet.rgb + ((size_t)(y0 + y) * sheet.w + x0) * 3, t.rgb + (size_t)y * t.w * 3,
                   (size_t)t.w * 3);
        sf_image_free(&t);
    }
    free(col);
    free(row);
    if (sf_image_encode(&sheet, fmt, 90, &out, &outlen, why, sizeof why) ||
        sf_write_file_atomic(argv[1], out, outlen)) {
        fprintf(stderr, "gallery: %s: %s\n", argv[1], why);
        return 1;
    }
    printf("%s: %dx%d, %d tiles\n", argv[1], sheet.w, sheet.h, tiles);
    free(out);
    free(sheet.rgb);
    return 0;
}
