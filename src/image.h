/* image.h: decoding, resizing and encoding the images stylefs serves.
 *
 * Decoding: libjpeg-turbo for JPEG (measured faster than stb_image, and it
 * handles CMYK and progressive), our own reader for binary PNM (8 and 16
 * bit, maxval scaled), stb_image for PNG (8 and 16 bit), BMP, GIF (first
 * frame), TGA and PSD; libwebp for WebP, libtiff for TIFF (8 and 16 bit),
 * libheif for HEIC and AVIF (codecs.h).  The format is found from the
 * bytes, never the name.
 * Encoding: libjpeg-turbo for JPEG, our own writer for PNG (a per-row
 * filter chosen by the smallest sum of residuals, libdeflate level 1),
 * stb_image_write for BMP and TGA, libwebp, libtiff and libheif for WebP,
 * TIFF, HEIC and AVIF.
 *
 * An sf_image is 8-bit RGB plus an optional alpha plane: grayscale becomes
 * RGB, and alpha is kept aside so that the RGB can be stylized and the
 * source alpha put back.  JPEGs are turned the way their EXIF orientation
 * says.
 *
 * The naming rules live here too, beside the formats they name: which
 * files are images, and the name and format each is served as
 * (sf_served_name); the mount, `warm`, `stylize` and the styles folder all
 * use them.  All functions return 0 or -errno and, where given,
 * write a one-line reason into `why`. */
#ifndef SF_IMAGE_H
#define SF_IMAGE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "pixels.h"

/* The decode limits: the largest file read as a source or painting, and
 * the default largest image (pixels, from the header) decoded. */
#define SF_MAX_SOURCE_BYTES (1ULL << 30)
#define SF_DEFAULT_MAX_PIXELS 50000000ULL

const char *sf_format_name(enum sf_format f);
/* Output format for a file name's extension (jpg jpeg png bmp tga webp tif
 * tiff heic heif avif, any case), or SF_FMT_UNKNOWN. */
enum sf_format sf_format_for_output(const char *path);
/* Whether a format is written lossily, at a quality (JPEG, WebP, HEIC,
 * AVIF): the quality is then part of its cache keys. */
int sf_format_lossy(enum sf_format f);
/* Whether a format can be written (JPEG, PNG, BMP, TGA, WebP, TIFF, HEIC,
 * AVIF). */
int sf_format_writable(enum sf_format f);

/* Identify the format and read the size from the header alone (as shown:
 * a JPEG's EXIF orientation 5..8 swaps width and height).
 * Returns 0 or -EINVAL (not an image stylefs reads; why says so). */
int sf_image_probe(const uint8_t *data, size_t len, enum sf_format *fmt, int *w, int *h,
                   char *why, size_t whylen);

/* Decode.  Refuses images of more than max_pixels pixels from the header,
 * before decoding anything.  A JPEG's EXIF orientation (2..8), a TIFF's
 * orientation tag and a HEIF's rotation and mirroring are applied, so the
 * image is the way viewers show it.  Returns 0, -EINVAL (corrupt, truncated or
 * unsupported), -EFBIG (too many pixels), -ENOMEM. */
int sf_image_decode(const uint8_t *data, size_t len, uint64_t max_pixels,
                    struct sf_image *img, char *why, size_t whylen);

/* Downscale so that the longer side is at most max_side (0: never), with
 * a Mitchell filter in linear light.  Returns 0 or -ENOMEM. */
int sf_image_fit(struct sf_image *img, int max_side);

/* Encode to fmt (any writable one).  quality applies to the lossy ones:
 * JPEG, WebP, HEIC and AVIF (1..100).
 * *out is malloc'd.  Returns 0, -EINVAL (format not writable), -ENOMEM, -EIO. */
int sf_image_encode(const struct sf_image *img, enum sf_format fmt, int quality,
                    uint8_t **out, size_t *outlen, char *why, size_t whylen);

void sf_image_free(struct sf_image *img);

/* The naming rules.  A source NAME is served in styled/STYLE/ as NAME
 * itself when stylefs writes its format (.jpg .jpeg .png .bmp .tga .webp
 * .tif .tiff .heic .heif .avif, any case), as NAME.png when it only reads
 * it (.gif .psd .ppm .pgm .pnm), and not at all otherwise.  sf_served_name writes that name into out (may be NULL)
 * and the output format into *fmt; returns 1, 0 (not an image), or
 * -ENAMETOOLONG. */
int sf_served_name(const char *src, char *out, size_t outlen, enum sf_format *fmt);
/* The other way: the source names that served name could come from, in
 * the order to try, with their output formats (at most 2: "a.png" is a.png,
 * or a.png's reader-only source "a"... only when that is one, such as
 * "b.gif.png" from b.gif).  Returns how many. */
int sf_source_names(const char *served, char names[2][PATH_MAX], enum sf_format fmts[2]);

#endif
