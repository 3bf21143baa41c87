/* image.h: decoding, resizing and encoding the images stylefs serves.
 *
 * Decoding: libjpeg-turbo for JPEG (measured faster than stb_image, and it
 * handles CMYK), our own reader for binary PNM (8 and 16 bit, maxval
 * scaled), stb_image for PNG (8 and 16 bit), BMP, GIF (first frame), TGA
 * and PSD.  The format is found from the bytes, never the name.
 * Encoding: libjpeg-turbo for JPEG, our own writer for PNG (a per-row
 * filter chosen by the smallest sum of residuals, libdeflate level 1),
 * stb_image_write for BMP and TGA.
 *
 * An sf_image is 8-bit RGB plus an optional alpha plane: grayscale becomes
 * RGB, and alpha is kept aside so that the RGB can be stylized and the
 * source alpha put back.  JPEGs are turned the way their EXIF orientation
 * says.  All functions return 0 or -errno and, where given,
 * write a one-line reason into `why`. */
#ifndef SF_IMAGE_H
#define SF_IMAGE_H

#include <stddef.h>
#include <stdint.h>

enum sf_format {
    SF_FMT_UNKNOWN = 0, SF_FMT_JPEG, SF_FMT_PNG, SF_FMT_BMP, SF_FMT_GIF,
    SF_FMT_TGA, SF_FMT_PSD, SF_FMT_PNM,
};

struct sf_image {
    int w, h;
    uint8_t *rgb;      /* [h][w][3] */
    uint8_t *alpha;    /* [h][w], or NULL when the source has none */
};

const char *sf_format_name(enum sf_format f);
/* Output format for a file name's extension (jpg, jpeg, png, bmp, tga), or
 * SF_FMT_UNKNOWN. */
enum sf_format sf_format_for_output(const char *path);
/* Whether a format can be written (JPEG, PNG, BMP, TGA). */
int sf_format_writable(enum sf_format f);

/* Identify the format and read the size from the header alone (as shown:
 * a JPEG's EXIF orientation 5..8 swaps width and height).
 * Returns 0 or -EINVAL (not an image stylefs reads; why says so). */
int sf_image_probe(const uint8_t *data, size_t len, enum sf_format *fmt, int *w, int *h,
                   char *why, size_t whylen);

/* Decode.  Refuses images of more than max_pixels pixels from the header,
 * before decoding anything.  A JPEG's EXIF orientation (2..8) is applied,
 * so the image is the way viewers show it.  Returns 0, -EINVAL (corrupt, truncated or
 * unsupported), -EFBIG (too many pixels), -ENOMEM. */
int sf_image_decode(const uint8_t *data, size_t len, uint64_t max_pixels,
                    struct sf_image *img, char *why, size_t whylen);

/* Downscale so that the longer side is at most max_side (0: never), with
 * a Mitchell filter in linear light.  Returns 0 or -ENOMEM. */
int sf_image_fit(struct sf_image *img, int max_side);

/* Encode to fmt (JPEG, PNG, BMP or TGA).  quality applies to JPEG (1..100).
 * *out is malloc'd.  Returns 0, -EINVAL (format not writable), -ENOMEM, -EIO. */
int sf_image_encode(const struct sf_image *img, enum sf_format fmt, int quality,
                    uint8_t **out, size_t *outlen, char *why, size_t whylen);

void sf_image_free(struct sf_image *img);

#endif
